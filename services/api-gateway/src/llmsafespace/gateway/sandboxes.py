"""`/api/v1/sandboxes…`: each request becomes one command on the bus."""

from typing import Any

from pydantic import RootModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    MAX_CODE_BYTES,
    Caller,
    Command,
    CreateSandbox,
    CreateSandboxRequest,
    ErrorCode,
    ExecuteRequest,
    ExecutionResult,
    ListSandboxes,
    Pagination,
    RunExecution,
    Sandbox,
    SandboxRef,
    SandboxStatusReport,
    SandboxTimeoutRequest,
    ServiceError,
    SetSandboxTimeout,
    commands,
    new_execution_id,
)

from .auth import Endpoint, authenticated
from .bodies import parse_body
from .operation import ApiRoute, Operation, Ref, array, merged, obj
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
        timeout=settings.create_timeout if body.snapshot is None else settings.workspace_timeout,
    )
    return JSONResponse(_public(request, sandbox), status_code=201)


def _on_sandbox(
    command: Command[SandboxRef, Sandbox], *, moves_workspace: bool = False
) -> Endpoint:
    """`command` on the path's sandbox (get, terminate, pause, resume), answered with the
    sandbox as it then is. One that may move the whole workspace (pause and resume, on
    Kubernetes) waits `workspace_timeout`, not the bus's default."""

    @authenticated
    async def endpoint(request: Request, caller: Caller) -> Response:
        settings = state_of(request)["settings"]
        timeout = settings.workspace_timeout if moves_workspace else None
        sandbox = await state_of(request)["bus"].request(
            command, sandbox_ref(request, caller), timeout=timeout
        )
        return JSONResponse(_public(request, sandbox))

    return endpoint


get = _on_sandbox(commands.SANDBOX_GET)
terminate = _on_sandbox(commands.SANDBOX_TERMINATE)
pause = _on_sandbox(commands.SANDBOX_PAUSE, moves_workspace=True)
resume = _on_sandbox(commands.SANDBOX_RESUME, moves_workspace=True)


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


_ENDPOINTS = obj(
    execute={"type": "string", "format": "uri"},
    files={"type": "string", "format": "uri"},
    websocket={"type": "string", "format": "uri"},
)
_PUBLIC_SANDBOX = merged(Sandbox, endpoints=_ENDPOINTS)
_EVENTS = {
    "type": "string",
    "description": "With `stream: true`: Server-Sent Events as the execution runs, each"
    " `event:` a message type and `data:` that message's JSON, as the WebSocket sends it:"
    " `execution_start`, `output {stream, content, seq, timestamp}`, `display` (a rich"
    " result), then exactly one `execution_complete` or `execution_cancelled`, or an"
    " `error` (`execution_failed` when it stops reporting). The `X-Execution-Id` header"
    " names the execution (`resume` it on the WebSocket).",
}
_EXECUTE = Operation(
    "Run code or a command and wait for the result",
    "executions",
    Ref(ExecutionResult),
    body=ExecuteRequest,
    alternatives=(("text/event-stream", _EVENTS),),
    errors=(404, 409),
    description="With `stream: true` the answer is `text/event-stream`. `content` over"
    " 512 KiB is `413 payload_too_large`. Code's rich results (`display(...)`,"
    " matplotlib figures, the trailing expression) are `results`: MIME bundles"
    " `{data: {mime: content}, isMainResult, truncated}`, binary types base64; `result`"
    " is the main result's text/plain. Streamed, each is a `display` event.",
)

ROUTES: list[BaseRoute] = [
    ApiRoute(
        "POST",
        "/sandboxes",
        create,
        Operation(
            "Create a sandbox (from a warm pool when one matches)",
            "sandboxes",
            _PUBLIC_SANDBOX,
            201,
            body=CreateSandboxRequest,
            errors=(404, 409, 429, 503),
            description="A user's live sandboxes (creating or running) are limited in number"
            " and in total `resources.memory`: beyond either, `429 quota_exceeded` with"
            " `details: {resource, limit, current, requested}` (memory in bytes). Admins are"
            " exempt. A `snapshot` that does not exist (or is another user's) is a 404.",
        ),
    ),
    ApiRoute(
        "GET",
        "/sandboxes",
        list_sandboxes,
        Operation(
            "List your sandboxes (admins: all)",
            "sandboxes",
            obj(sandboxes=array(_PUBLIC_SANDBOX), pagination=Ref(Pagination)),
            query=ListSandboxes,
            query_fields=("limit", "offset", "status"),
            description="Filter by metadata with `metadata.<key>=<value>` parameters.",
        ),
    ),
    ApiRoute(
        "GET",
        "/sandboxes/{sandbox_id}/status",
        status,
        Operation(
            "A sandbox's status and resource use",
            "sandboxes",
            Ref(SandboxStatusReport),
            errors=(404,),
        ),
    ),
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/timeout",
        set_timeout,
        Operation(
            "Extend a sandbox's timeout",
            "sandboxes",
            _PUBLIC_SANDBOX,
            body=SandboxTimeoutRequest,
            errors=(404, 409),
        ),
    ),
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/pause",
        pause,
        Operation(
            "Pause a sandbox (its processes frozen, memory kept)",
            "sandboxes",
            _PUBLIC_SANDBOX,
            errors=(404, 409, 429, 501, 503),
            description="Status `paused`: no CPU, every process and the interpreter's memory"
            " kept, the lifetime clock stopped. Executions, file calls and terminals on it are"
            " `409 sandbox_paused`, unless it was created with `autoResume: true` (then they"
            " resume it). It counts against the paused quota (429), not the running one, and"
            " is terminated once paused longer than its `pausedTimeout`. Pausing a paused"
            " sandbox answers it as it is. On Kubernetes (no freezer) the workspace is"
            " snapshotted and the Pod removed: files kept, memory not (the resume says"
            " `memoryKept: false`).",
        ),
    ),
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/resume",
        resume,
        Operation(
            "Resume a paused sandbox",
            "sandboxes",
            _PUBLIC_SANDBOX,
            errors=(404, 409, 429, 501, 503),
            description="Its processes run again where they stopped; `expiresAt` moves by the"
            " time it spent paused. It must fit the running quota again (429). Resuming a"
            " running sandbox answers it as it is. `memoryKept` says whether the interpreter's"
            " memory survived: false on Kubernetes, where a new Pod gets the workspace restored"
            " (503 if it cannot be: the sandbox stays paused).",
        ),
    ),
    ApiRoute(
        "GET",
        "/sandboxes/{sandbox_id}",
        get,
        Operation("Get a sandbox", "sandboxes", _PUBLIC_SANDBOX, errors=(404,)),
        name="sandbox",
    ),
    ApiRoute(
        "DELETE",
        "/sandboxes/{sandbox_id}",
        terminate,
        Operation("Terminate a sandbox", "sandboxes", _PUBLIC_SANDBOX, errors=(404, 409)),
    ),
    ApiRoute("POST", "/sandboxes/{sandbox_id}/execute", execute, _EXECUTE),
]
