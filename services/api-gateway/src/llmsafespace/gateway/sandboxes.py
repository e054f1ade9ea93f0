"""`/api/v1/sandboxes…`: each request becomes one command on the bus."""

from typing import Any

from pydantic import RootModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmsafespace.contracts import (
    MAX_CODE_BYTES,
    Caller,
    CreateSandbox,
    CreateSandboxRequest,
    ErrorCode,
    ExecuteRequest,
    ListSandboxes,
    RunExecution,
    Sandbox,
    SandboxTimeoutRequest,
    ServiceError,
    SetSandboxTimeout,
    commands,
    new_execution_id,
)

from .auth import authenticated
from .bodies import parse_body
from .paths import sandbox_ref
from .sse import stream_execution
from .state import state_of
from .validation import validated


class _JSONObject(RootModel[dict[str, Any]]):
    """A body read as a plain JSON object, before its contract validates it."""


def check_code_size(content: object) -> None:
    """Code (`content`) over `MAX_CODE_BYTES` is 413 `payload_too_large`. Checked before the
    contract's own validation, which would call it a 400; REST and WebSocket both use it."""
    if isinstance(content, str) and (size := len(content.encode())) > MAX_CODE_BYTES:
        raise ServiceError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"code larger than {MAX_CODE_BYTES} bytes",
            {"limit": MAX_CODE_BYTES, "size": size},
        )


def _public(request: Request, sandbox: Sandbox) -> dict[str, object]:
    base = str(request.url_for("sandbox", sandbox_id=sandbox.id))
    websocket = "ws" + base.removeprefix("http") + "/stream"
    body = sandbox.wire()
    body["endpoints"] = {
        "execute": f"{base}/execute",
        "files": f"{base}/files",
        "websocket": websocket,
    }
    return body


@authenticated
async def create(request: Request, caller: Caller) -> Response:
    settings = state_of(request)["settings"]
    body = await parse_body(request, CreateSandboxRequest, settings.max_body_bytes)
    sandbox = await state_of(request)["bus"].request(
        commands.SANDBOX_CREATE,
        CreateSandbox(caller=caller, request=body),
        timeout=settings.create_timeout,
    )
    return JSONResponse(_public(request, sandbox), status_code=201)


@authenticated
async def get(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    sandbox = await state_of(request)["bus"].request(commands.SANDBOX_GET, ref)
    return JSONResponse(_public(request, sandbox))


@authenticated
async def terminate(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    sandbox = await state_of(request)["bus"].request(commands.SANDBOX_TERMINATE, ref)
    return JSONResponse(_public(request, sandbox))


@authenticated
async def pause(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    sandbox = await state_of(request)["bus"].request(commands.SANDBOX_PAUSE, ref)
    return JSONResponse(_public(request, sandbox))


@authenticated
async def resume(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    sandbox = await state_of(request)["bus"].request(commands.SANDBOX_RESUME, ref)
    return JSONResponse(_public(request, sandbox))


async def _execute_body(request: Request, limit: int) -> ExecuteRequest:
    raw = (await parse_body(request, _JSONObject, limit)).root
    check_code_size(raw.get("content"))
    return validated(ExecuteRequest, raw, "request body")


@authenticated
async def execute(request: Request, caller: Caller) -> Response:
    settings = state_of(request)["settings"]
    ref = sandbox_ref(request, caller)
    body = await _execute_body(request, settings.max_body_bytes)
    if body.stream:
        return await stream_execution(request, caller, ref.sandbox_id, body)
    command = RunExecution(
        caller=caller,
        sandbox_id=ref.sandbox_id,
        execution_id=new_execution_id(),
        request=body,
    )
    result = await state_of(request)["bus"].request(
        commands.EXEC_RUN, command, timeout=body.timeout + settings.execute_grace
    )
    # The hot path: the reply's JSON straight from the model, no intermediate dict.
    body_json = result.model_dump_json(by_alias=True, exclude_none=True)
    return Response(body_json, media_type="application/json")


METADATA_PARAM = "metadata."


@authenticated
async def list_sandboxes(request: Request, caller: Caller) -> Response:
    params = request.query_params
    query = validated(
        ListSandboxes,
        {
            "caller": caller,
            "limit": params.get("limit", 20),
            "offset": params.get("offset", 0),
            "status": params.get("status") or None,
            "metadata": {
                key.removeprefix(METADATA_PARAM): value
                for key, value in params.multi_items()
                if key.startswith(METADATA_PARAM)
            },
        },
        "query parameters",
    )
    page = await state_of(request)["bus"].request(commands.SANDBOX_LIST, query)
    return JSONResponse(
        {
            "sandboxes": [_public(request, sandbox) for sandbox in page.sandboxes],
            "pagination": page.pagination.wire(),
        }
    )


@authenticated
async def status(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    report = await state_of(request)["bus"].request(commands.SANDBOX_STATUS, ref)
    return JSONResponse(report.wire())


@authenticated
async def set_timeout(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    body = await parse_body(
        request, SandboxTimeoutRequest, state_of(request)["settings"].max_body_bytes
    )
    command = SetSandboxTimeout(caller=caller, sandbox_id=ref.sandbox_id, timeout=body.timeout)
    sandbox = await state_of(request)["bus"].request(commands.SANDBOX_TIMEOUT, command)
    return JSONResponse(_public(request, sandbox))


ROUTES: list[BaseRoute] = [
    Route("/sandboxes", create, methods=["POST"]),
    Route("/sandboxes", list_sandboxes, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/status", status, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/timeout", set_timeout, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/pause", pause, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/resume", resume, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}", get, methods=["GET"], name="sandbox"),
    Route("/sandboxes/{sandbox_id}", terminate, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/execute", execute, methods=["POST"]),
]
