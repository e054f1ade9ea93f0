"""`sandbox.terminal()`: an interactive shell on a PTY in the sandbox, over
`GET /sandboxes/{id}/terminal` (WebSocket).

    async with sandbox.terminal(cols=100, rows=30) as term:
        await term.send("ls\\n")
        async for text in term:          # what the terminal displays, until the shell exits
            print(text, end="")
"""

import json
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .config import ClientConfig
from .errors import LLMSafeSpaceError, error_from_envelope
from .portal import Portal
from .streaming import open_socket


class AsyncTerminal:
    """One terminal. Iterate it for output text; `exit_code` is set once the shell ended.
    Leaving it (or a dropped connection) does not end the shell at once: within the
    server's grace period `sandbox.terminal(terminal_id=...)` re-attaches, replaying the
    scrollback first."""

    def __init__(
        self,
        config: ClientConfig,
        sandbox_id: str,
        *,
        cols: int = 80,
        rows: int = 24,
        terminal_id: str | None = None,
    ) -> None:
        query: dict[str, Any] = {"cols": cols, "rows": rows}
        if terminal_id is not None:
            query["terminalId"] = terminal_id
        self._url = (
            f"{config.websocket_url}/sandboxes/{quote(sandbox_id, safe='')}/terminal?"
            + urlencode(query)
        )
        self._config = config
        self._socket: ClientConnection | None = None
        self.terminal_id = terminal_id
        self.exit_code: int | None = None

    async def open(self) -> Self:
        """Connect and wait for the terminal to be ready (raises the mapped API error)."""
        self._socket = await open_socket(self._config, self._url)
        ready = json.loads(await self._socket.recv())
        if ready.get("type") != "ready":
            await self._socket.close()
            raise LLMSafeSpaceError(f"unexpected first terminal message {ready!r}")
        self.terminal_id = str(ready["terminalId"])
        return self

    async def send(self, data: str) -> None:
        """Type `data` (`"\\x03"` is Ctrl-C, `"\\x04"` Ctrl-D)."""
        await self._send({"type": "input", "data": data})

    async def resize(self, cols: int, rows: int) -> None:
        await self._send({"type": "resize", "cols": cols, "rows": rows})

    def __aiter__(self) -> AsyncIterator[str]:
        return self._output()

    async def _output(self) -> AsyncIterator[str]:
        socket = self._connected()
        try:
            async for raw in socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "output":
                    yield str(message.get("data", ""))
                elif kind == "exit":
                    self.exit_code = int(message.get("exitCode", -1))
                    return
                elif kind == "error":
                    raise error_from_envelope({"error": message})
        except ConnectionClosed:
            return

    async def close(self) -> None:
        """Detach (the shell lives on for the server's grace period)."""
        if self._socket is not None:
            await self._socket.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._connected().send(json.dumps(message))

    def _connected(self) -> ClientConnection:
        if self._socket is None:
            raise LLMSafeSpaceError("the terminal is not open: use `async with` or open()")
        return self._socket


class Terminal:
    """`Sandbox.terminal()`: an `AsyncTerminal` for synchronous code. `with
    sandbox.terminal() as term:`, then `term.send("ls\\n")`, `term.resize(cols, rows)` and
    `for text in term`."""

    def __init__(self, portal: Portal, terminal: AsyncTerminal) -> None:
        self._portal = portal
        self._terminal = terminal

    @property
    def terminal_id(self) -> str | None:
        return self._terminal.terminal_id

    @property
    def exit_code(self) -> int | None:
        """The shell's exit code once it ended."""
        return self._terminal.exit_code

    def open(self) -> Self:
        """Connect and wait for the terminal to be ready."""
        self._portal.call(self._terminal.open())
        return self

    def send(self, data: str) -> None:
        """Type `data` (`"\\x03"` is Ctrl-C, `"\\x04"` Ctrl-D)."""
        self._portal.call(self._terminal.send(data))

    def resize(self, cols: int, rows: int) -> None:
        self._portal.call(self._terminal.resize(cols, rows))

    def __iter__(self) -> Iterator[str]:
        return self._portal.iterate(aiter(self._terminal))

    def close(self) -> None:
        """Detach (the shell lives on for the server's grace period)."""
        self._portal.call(self._terminal.close())

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
