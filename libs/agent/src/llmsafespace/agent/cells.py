"""What few cells ask of the worker beyond running: their own environment variables and
working directory, and an event loop for `await` at their top level. Imported by the
worker on the first cell that needs it, so an idle worker stays without it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import CodeType
from typing import TYPE_CHECKING, Any

from .worker import CO_COROUTINE

if TYPE_CHECKING:
    import asyncio

# The event loop of the cells that await, IPython's way: one for the worker's life, so a
# task one cell starts runs on while a later cell awaits.
_loop: list[asyncio.AbstractEventLoop] = []


@contextlib.contextmanager
def within(env: dict[str, str] | None, cwd: str | None) -> Iterator[None]:
    """A cell's own environment variables and working directory, as they were after it."""
    env = env or {}
    saved = {name: os.environ.get(name) for name in env}
    previous = None
    try:
        os.environ.update(env)
        if cwd:
            with contextlib.suppress(OSError):  # where the last cell left it, gone since
                previous = os.getcwd()
            os.chdir(cwd)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if previous is not None:
            with contextlib.suppress(OSError):
                os.chdir(previous)


def run_awaiting(body: CodeType, last: CodeType | None, namespace: dict[str, Any]) -> Any:
    """Run a cell that awaits, whole (what comes before its first `await` included), on
    the worker's loop: its body, then its trailing expression, whose value is returned."""
    if not _loop:
        import asyncio  # on the first cell that awaits (a cell's env alone does without)

        _loop.append(asyncio.new_event_loop())
    return _loop[0].run_until_complete(_awaiting(body, last, namespace))


async def _awaiting(body: CodeType, last: CodeType | None, namespace: dict[str, Any]) -> Any:
    value = None
    for code in (body,) if last is None else (body, last):
        value = eval(code, namespace)
        if code.co_flags & CO_COROUTINE:
            value = await value
    return value
