"""What the sync `Sandbox` offers beside `AsyncSandbox`'s own: terminals, followed
installs, and per-call env and working directory for code."""

import pytest

from llmsafespace.sdk import AsyncSandbox, ConflictError, Sandbox

pytestmark = pytest.mark.stack


def test_a_sync_terminal_runs_and_ends_with_its_shell(client_env, shared: AsyncSandbox) -> None:
    sandbox = Sandbox.connect(shared.id)
    with sandbox.terminal(cols=90, rows=20) as terminal:
        assert terminal.terminal_id is not None
        terminal.send("stty size; exit 3\n")
        screen = "".join(terminal)
    sandbox.close()
    assert "20 90" in screen
    assert terminal.exit_code == 3


def test_a_sync_followed_install_is_refused_without_network_as_install_is(
    client_env, shared: AsyncSandbox
) -> None:
    sandbox = Sandbox.connect(shared.id)
    with pytest.raises(ConflictError) as caught:
        sandbox.stream_install(["tabulate"])
    sandbox.close()
    assert caught.value.code == "network_disabled"


def test_code_takes_env_and_a_working_directory_for_one_call(
    client_env, shared: AsyncSandbox
) -> None:
    sandbox = Sandbox.connect(shared.id)
    look = "import os; os.environ.get('WHO'), os.getcwd()"
    assert sandbox.run_code(look, env={"WHO": "me"}, cwd="/tmp").result == "('me', '/tmp')"
    assert sandbox.run_code(look).result == "(None, '/workspace')"
    streamed = sandbox.stream_code(look, env={"WHO": "you"}, cwd="/tmp").wait()
    assert streamed.result == "('you', '/tmp')"
    sandbox.close()


async def test_async_code_takes_env_and_a_working_directory(shared: AsyncSandbox) -> None:
    result = await shared.run_code(
        "import os; os.environ['N'], os.getcwd()", env={"N": "1"}, cwd="/tmp"
    )
    assert result.result == "('1', '/tmp')"
