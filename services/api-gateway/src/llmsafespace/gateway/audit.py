"""`/api/v1/audit`: the audit trail, answered by audit-svc (which applies the caller's scope)."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import AuditPage, AuditQuery, Caller, commands

from .auth import authenticated
from .operation import ApiRoute, Operation, Ref
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


ROUTES: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/audit",
        query,
        Operation(
            "The audit trail (admins: everyone's; users: their own), oldest first",
            "audit",
            Ref(AuditPage),
            query=AuditQuery,
            query_fields=_PARAMS,
        ),
    )
]
