"""`POST /sandboxes/{id}/execute` with `"stream": true`: the WebSocket's execution messages
as Server-Sent Events, for clients that cannot open a WebSocket."""

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from llmsafespace.contracts import (
    Caller,
    ExecuteRequest,
    ExecutionAccepted,
    StartExecution,
    new_execution_id,
    subjects,
)

from .relay import Follower

START_WAIT = 10.0


async def stream_execution(
    request: Request, caller: Caller, sandbox_id: str, body: ExecuteRequest
) -> Response:
    """Subscribe first, then start, so no early output is missed; errors before the start
    are ordinary JSON error responses."""
    execution_id = new_execution_id()
    grace = request.state.settings.stream_grace
    follower = await Follower.live(request.state.nats, sandbox_id, execution_id, grace)
    command = StartExecution(
        caller=caller, sandbox_id=sandbox_id, execution_id=execution_id, request=body
    )
    try:
        await request.state.bus.request(subjects.EXEC_START, command, ExecutionAccepted)
    except BaseException:
        await follower.close()
        raise

    async def events() -> AsyncIterator[str]:
        try:
            async for message in follower.messages(0, START_WAIT):
                yield f"event: {message['type']}\ndata: {json.dumps(message)}\n\n"
        finally:
            await follower.close()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Execution-Id": execution_id},
    )
