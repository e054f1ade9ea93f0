"""`POST /sandboxes/{id}/execute` with `"stream": true`: the WebSocket's execution messages
as Server-Sent Events, for clients that cannot open a WebSocket."""

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llmsafespace.contracts import (
    Caller,
    ExecuteRequest,
    StartExecution,
    commands,
    new_execution_id,
)

from .relay import Follower, encode
from .state import state_of

START_WAIT = 10.0


async def stream_execution(
    request: Request, caller: Caller, sandbox_id: str, body: ExecuteRequest
) -> Response:
    """Subscribe first, then start, so no early output is missed; errors before the start
    are ordinary JSON error responses."""
    execution_id = new_execution_id()
    grace = state_of(request)["settings"].stream_grace
    follower = await Follower.live(state_of(request)["nats"], sandbox_id, execution_id, grace)
    command = StartExecution(
        caller=caller, sandbox_id=sandbox_id, execution_id=execution_id, request=body
    )
    try:
        await state_of(request)["bus"].request(commands.EXEC_START, command)
    except BaseException:
        await follower.close()
        raise

    async def events() -> AsyncIterator[str]:
        try:
            async for message in follower.messages(0, START_WAIT):
                yield f"event: {message.type}\ndata: {encode(message)}\n\n"
        finally:
            await follower.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Execution-Id": execution_id},
    )
