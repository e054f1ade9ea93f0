"""An endpoint's OpenAPI operation, declared with its route: `ApiRoute` and
`ApiWebSocketRoute` carry the `Operation` that describes them, and `openapi.py` builds
the document by walking the app's routes.

Schemas are JSON Schema dicts in which a contract model stands as `Ref(Model)`; the
document replaces each by its `$ref` into `components.schemas`."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode
from starlette.routing import BaseRoute, Route, WebSocketRoute

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Ref:
    """A contract model in a schema, replaced by its `$ref` when the document is built."""

    model: type[BaseModel]
    mode: JsonSchemaMode = "serialization"


def obj(**properties: Any) -> dict[str, Any]:
    """An object schema whose every property is required."""
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def merged(model: type[BaseModel], **extra: Any) -> dict[str, Any]:
    """`model`'s schema with more properties, each always sent."""
    return {"allOf": [Ref(model), obj(**extra)]}


BINARY = {"type": "string", "format": "binary"}


@dataclass(frozen=True)
class RawBody:
    """A request body taken as bytes (streamed, never parsed), in one of `media`; always
    sent (an empty one is zero bytes of it)."""

    media: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Operation:
    """What one method on one path takes and answers. `errors` are the statuses beyond
    those every operation may answer (the document adds 400, 401, 413, 429, 500, 503 and
    504 where they apply); `public` operations need no credential.

    A JSON `body` is required when `{}` is not a valid one (an empty body reads as `{}`).
    The successes are answered in `media`, one type or several (`response` the schema of
    each); `other_successes` are (status, schema) answered in the same media types, a
    None schema for one with no body; `alternatives` are (media type, schema) the main
    success may come in instead, as the request asks."""

    summary: str
    tag: str
    response: Any = None
    status: int = 200
    body: type[BaseModel] | RawBody | None = None
    query: type[BaseModel] | None = None
    query_fields: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    description: str = ""
    media: str | tuple[str, ...] = "application/json"
    extra_params: tuple[dict[str, Any], ...] = field(default=())
    other_successes: tuple[tuple[int, Any], ...] = field(default=())  # (status, schema)
    alternatives: tuple[tuple[str, Any], ...] = field(default=())  # (media type, schema)


class ApiRoute(Route):
    """A route serving one HTTP method, described by `operation`."""

    def __init__(
        self,
        method: Method,
        path: str,
        endpoint: Callable[..., Any],
        operation: Operation,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(path, endpoint, methods=[method], name=name)
        self.operation = operation


class ApiWebSocketRoute(WebSocketRoute):
    """A WebSocket route (a GET with an upgrade), described by `operation`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], operation: Operation) -> None:
        super().__init__(path, endpoint)
        self.operation = operation


def described(route: BaseRoute, operation: Operation) -> BaseRoute:
    """`route`, declared where its operation is not (servicekit's routes, the stream
    socket), as the same route carrying `operation`."""
    if isinstance(route, WebSocketRoute):
        return ApiWebSocketRoute(route.path, route.endpoint, operation)
    if not isinstance(route, Route):
        raise TypeError(f"only a Route or a WebSocketRoute carries an operation: {route!r}")
    (method,) = (route.methods or {"GET"}) - {"HEAD"}
    return ApiRoute(cast(Method, method), route.path, route.endpoint, operation, name=route.name)
