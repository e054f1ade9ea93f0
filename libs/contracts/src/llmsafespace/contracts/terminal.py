"""Interactive terminals: what crosses the WebSocket and the bus.

`GET /sandboxes/{id}/terminal` (WebSocket) speaks the `Terminal*` messages below. One
exec-svc instance owns each terminal (it holds the PTY's agent request): it answers
`TerminalControl` requests on `llmsafespace.term.ctl.<sandbox>.<terminal>` and publishes
`TerminalOutput` / `TerminalExit` on `llmsafespace.term.out.<sandbox>.<terminal>`, so any
gateway replica can serve a terminal's socket.
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .base import Contract, Request
from .caller import Caller
from .ids import SandboxId, random_token

TERMINAL_ID_PATTERN = r"^term-[a-z0-9]{12,32}$"
TerminalId = Annotated[str, StringConstraints(pattern=TERMINAL_ID_PATTERN)]
MAX_TERMINAL_INPUT_CHARS = 16 * 1024  # per `input` message
MAX_TERMINAL_SIZE = 1000  # columns or rows
TerminalSize = Annotated[int, Field(ge=1, le=MAX_TERMINAL_SIZE, strict=True)]


def new_terminal_id() -> str:
    return f"term-{random_token()}"


class TerminalInput(Request):
    """Keystrokes (UTF-8 text; `\\u0003` is Ctrl-C) for the terminal."""

    type: Literal["input"]
    data: str = Field(max_length=MAX_TERMINAL_INPUT_CHARS)


class TerminalResize(Request):
    type: Literal["resize"]
    cols: TerminalSize
    rows: TerminalSize


class TerminalPing(Request):
    type: Literal["ping"]


TerminalClientMessage = Annotated[
    TerminalInput | TerminalResize | TerminalPing, Field(discriminator="type")
]
TERMINAL_CLIENT_MESSAGE_TYPES = ("input", "resize", "ping")


class TerminalReady(Contract):
    """The first server message: the terminal to re-attach to later (`?terminalId=`)."""

    type: Literal["ready"] = "ready"
    terminal_id: TerminalId


class TerminalOutput(Contract):
    """What the terminal displayed; `seq` increases by one per chunk (a re-attach's
    replayed scrollback carries the seq of its last chunk)."""

    type: Literal["output"] = "output"
    data: str
    seq: int


class TerminalExit(Contract):
    """The shell ended (or the terminal was closed); nothing follows."""

    type: Literal["exit"] = "exit"
    exit_code: int


class TerminalError(Contract):
    """A message refused (`invalid_message`: not JSON, no string `type`, invalid fields;
    `unknown_message_type`: a type not known, as on `/stream`), a request the owner
    refused, or the credential lost (`unauthorized`, then close code 4401); the terminal
    carries on unless the socket closes."""

    type: Literal["error"] = "error"
    code: str
    message: str


class TerminalPong(Contract):
    """The answer to a `ping`."""

    type: Literal["pong"] = "pong"


TerminalServerMessage = Annotated[
    TerminalReady | TerminalOutput | TerminalExit | TerminalError | TerminalPong,
    Field(discriminator="type"),
]


class OpenTerminal(Contract):
    """`term.open`: start a shell on a PTY in the sandbox, owned by the answering
    exec-svc instance, under the id the gateway chose (it listens before it opens)."""

    caller: Caller
    sandbox_id: SandboxId
    terminal_id: TerminalId
    cols: TerminalSize = 80
    rows: TerminalSize = 24


class TerminalOpened(Contract):
    terminal_id: TerminalId


class TerminalControl(Contract):
    """A request to the terminal's owner: `attach` (answered with the scrollback),
    `input`, `resize`, `keepalive` (a socket is still attached) or `close`."""

    caller: Caller
    action: Literal["attach", "input", "resize", "keepalive", "close"]
    data: str = Field(default="", max_length=MAX_TERMINAL_INPUT_CHARS)
    cols: TerminalSize | None = None
    rows: TerminalSize | None = None


class TerminalAttached(Contract):
    """The owner's answer to a control request; for `attach`, the bounded scrollback and
    the seq of its last chunk (live output with a greater seq follows)."""

    scrollback: str = ""
    seq: int = 0
