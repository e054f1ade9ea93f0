"""`llmsafespace shell SB`: an interactive shell in a sandbox. The local terminal is put in
raw mode (every key, Ctrl-C included, goes to the sandbox) and restored on exit; its size
is sent at the start and whenever it changes (SIGWINCH)."""

import asyncio
import codecs
import os
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import click

from ..async_sandbox import AsyncSandbox
from ..terminal import AsyncTerminal
from .settings import CliSettings, pass_settings

CHUNK = 4096


@contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Raw mode on a TTY for the duration (nothing to do when `fd` is not a TTY)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSADRAIN)  # keep what was typed ahead
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _attach(terminal: AsyncTerminal, stdin: int, stdout: int) -> None:
    loop = asyncio.get_running_loop()
    keys: asyncio.Queue[str | tuple[int, int] | None] = asyncio.Queue()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def on_keys() -> None:
        data = os.read(stdin, CHUNK)
        keys.put_nowait(decoder.decode(data) if data else None)

    def on_resize() -> None:
        size = shutil.get_terminal_size()
        keys.put_nowait((size.columns, size.lines))

    async def forward_keys() -> None:
        while (item := await keys.get()) is not None:
            if isinstance(item, tuple):
                await terminal.resize(*item)
            else:
                await terminal.send(item)

    loop.add_reader(stdin, on_keys)
    with suppress(ValueError, RuntimeError):  # no signals off the main thread
        loop.add_signal_handler(signal.SIGWINCH, on_resize)
    sender = asyncio.create_task(forward_keys())
    try:
        async for text in terminal:
            os.write(stdout, text.encode())
    finally:
        sender.cancel()
        loop.remove_reader(stdin)
        with suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signal.SIGWINCH)


async def _shell(settings: CliSettings, sandbox_id: str) -> int:
    size = shutil.get_terminal_size()
    sandbox = await AsyncSandbox.connect(sandbox_id, **settings.client())
    try:
        async with sandbox.terminal(cols=size.columns, rows=size.lines) as terminal:
            with raw_mode(sys.stdin.fileno()):
                await _attach(terminal, sys.stdin.fileno(), sys.stdout.fileno())
        return terminal.exit_code or 0
    finally:
        await sandbox.close()


@click.command("shell")
@click.argument("sandbox_id")
@pass_settings
def shell(settings: CliSettings, sandbox_id: str) -> None:
    """An interactive shell in SANDBOX_ID (exit the shell to leave)."""
    sys.exit(asyncio.run(_shell(settings, sandbox_id)))
