"""`sandbox.terminal()` and `llmsafespace shell`, against the stack."""

import asyncio
import os
import select
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from llmsafespace.sdk import AsyncSandbox, AsyncTerminal, ClientConfig, NotFoundError

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))
WAIT = 60.0  # a bound on waiting for an expected screen (a hang fails, never a slow run)


async def test_a_terminal_runs_resizes_and_ends_with_its_shell(shared: AsyncSandbox) -> None:
    screen = ""
    async with shared.terminal(cols=90, rows=20) as terminal:
        assert terminal.terminal_id is not None
        await terminal.send("stty size; echo sdk-$((6 * 7))\n")
        async with asyncio.timeout(WAIT):
            async for text in terminal:
                screen += text
                if "sdk-42" in screen:
                    break
        assert "20 90" in screen
        await terminal.resize(100, 33)
        await terminal.send("stty size; exit 4\n")
        async with asyncio.timeout(WAIT):
            async for text in terminal:
                screen += text
    assert "33 100" in screen
    assert terminal.exit_code == 4


async def test_a_terminal_of_an_unknown_sandbox_is_not_found(stack) -> None:
    config = ClientConfig(stack.api_url, stack.admin_key)
    with pytest.raises(NotFoundError):
        async with AsyncTerminal(config, "sb-doesnotexist0000"):
            pass


def _read_until(fd: int, text: bytes) -> bytes:
    seen = b""
    while text not in seen:
        ready, _, _ = select.select([fd], [], [], WAIT)
        assert ready, f"never saw {text!r}; the screen: {seen!r}"
        seen += os.read(fd, 4096)
    return seen


def test_shell_makes_the_local_tty_raw_and_restores_it(
    client_env: dict[str, str], shared: AsyncSandbox
) -> None:
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    shell = subprocess.Popen(
        [CLI, "shell", shared.id],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **client_env},
        start_new_session=True,
    )
    try:
        _read_until(master, b"$")  # the sandbox's prompt: the shell is attached, raw
        os.write(master, b"echo cli-$((40 + 2))\n")
        _read_until(master, b"cli-42")
        raw = termios.tcgetattr(slave)
        assert not raw[3] & termios.ICANON  # lflag: keys go through one by one
        assert not raw[3] & termios.ECHO
        os.write(master, b"exit 0\n")
        assert shell.wait(timeout=WAIT) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        shell.kill()
        shell.wait()
        os.close(master)
        os.close(slave)
