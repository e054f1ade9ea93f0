"""The API's router: no trailing-slash redirects, and a 405 that names every method.

Starlette's router answers a path it does not know but would with a slash added or
removed by a redirect whose `Location` is built from the request's `Host` header (a
client's to choose); here such a path is simply not found. Each `ApiRoute` serves one
method, so Starlette's 405 would name the methods of the first route on the path only;
here `Allow` names those of every route on it."""

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

NO_TRAILING_SLASH = "Not Found (the API's paths have no trailing slash)"


class ApiRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        super().__init__(routes=routes, redirect_slashes=False)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().app(scope, receive, send)
        except HTTPException as exc:
            if exc.status_code != 405 or scope["type"] != "http":
                raise
            allowed = allowed_methods(self.routes, scope)
            raise HTTPException(
                405,
                f"{scope['method']} is not allowed here: {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            ) from None

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/"):
            raise HTTPException(404, NO_TRAILING_SLASH)
        await super().not_found(scope, receive, send)


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method the routes serve on the scope's path, sorted."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def redirect_to_slash(path: str) -> Route:
    """`path` → `path/` (a mounted directory's bare name), with a `Location` of the path
    alone: never a host taken from the request."""

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.scope.get("root_path", "") + path + "/")

    return Route(path, redirect, methods=["GET"], include_in_schema=False)
