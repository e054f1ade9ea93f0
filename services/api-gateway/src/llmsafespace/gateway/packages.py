"""`POST /api/v1/sandboxes/{id}/packages`: pip or npm installs, run by exec-svc as an
execution (waited for, or followed on the WebSocket)."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    Caller,
    ExecutionResult,
    InstallPackages,
    InstallPackagesRequest,
    commands,
    new_execution_id,
)

from .auth import authenticated
from .bodies import parse_body
from .files import STEP_TIMEOUT
from .operation import ApiRoute, Operation, Ref, obj
from .paths import sandbox_ref
from .state import state_of


@authenticated
async def install_packages(request: Request, caller: Caller) -> Response:
    settings = state_of(request)["settings"]
    ref = sandbox_ref(request, caller)
    body = await parse_body(request, InstallPackagesRequest, settings.max_body_bytes)
    command = InstallPackages(
        caller=caller, sandbox_id=ref.sandbox_id, execution_id=new_execution_id(), request=body
    )
    if not body.wait:  # follow it on the WebSocket: `resume` with this id from seq 0
        accepted = await state_of(request)["bus"].request(commands.EXEC_PACKAGES_START, command)
        return JSONResponse(
            {"executionId": accepted.execution_id, "status": "running"}, status_code=202
        )
    result = await state_of(request)["bus"].request(
        commands.EXEC_PACKAGES_INSTALL,
        command,
        timeout=body.timeout + settings.execute_grace + STEP_TIMEOUT,
    )
    return JSONResponse(result.wire())


ROUTES: list[BaseRoute] = [
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/packages",
        install_packages,
        Operation(
            "Install packages (pip or npm) into the sandbox",
            "files",
            Ref(ExecutionResult),
            body=InstallPackagesRequest,
            errors=(404, 409, 503),
            other_successes=(
                (202, obj(executionId={"type": "string"}, status={"type": "string"})),
            ),
            description="pip installs into /workspace/.packages (importable by the next run),"
            " npm into /workspace/node_modules. The install is an execution: its output is"
            " published like a streamed execution's. With `wait: false` the answer is `202"
            " {executionId}` as soon as it has started; send `resume {executionId, lastSeq: 0}`"
            " on the WebSocket (`/sandboxes/{id}/stream`) to see pip's or npm's output live"
            " and the result as `execution_complete`. Packages come from the mirror configured"
            " for the installation when there is one (`PACKAGE_INDEX_URL` for pip,"
            " `NPM_REGISTRY_URL` for npm; it serves sandboxes without network too), else from"
            " the public index when the sandbox can reach it; otherwise `409"
            " network_disabled`, before anything runs. A package the mirror lacks is `404`; an"
            " unreachable mirror `503`.",
        ),
    ),
]
