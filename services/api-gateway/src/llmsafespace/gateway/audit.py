"""`/api/v1/audit`: the audit trail, answered by audit-svc (which applies the caller's scope)."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmsafespace.contracts import AuditQuery, Caller, commands

from .auth import authenticated
from .state import state_of
from .validation import validated

_PARAMS = ("sandboxId", "userId", "since", "limit")


@authenticated
async def query(request: Request, caller: Caller) -> Response:
    params = request.query_params
    command = validated(
        AuditQuery,
        {"caller": caller, **{name: params[name] for name in _PARAMS if params.get(name)}},
        "query parameters",
    )
    page = await state_of(request)["bus"].request(commands.AUDIT_QUERY, command)
    return JSONResponse(page.wire())


ROUTES: list[BaseRoute] = [Route("/audit", query, methods=["GET"])]
