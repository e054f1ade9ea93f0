"""The agent's command line (read without argparse)."""

from __future__ import annotations

import pytest

from llmsafespace.agent.arguments import parse


def test_the_driver_command_line_is_read_with_its_defaults() -> None:
    args = parse(
        ["--socket", "/run/a.sock", "--token-file=/run/t", "--landlock", "--tcp-ports", "80"],
        "python",
    )
    assert (args.socket, args.listen, args.token_file) == ("/run/a.sock", None, "/run/t")
    assert (args.workspace, args.language, args.landlock, args.tcp_ports) == (
        "/workspace",
        "python",
        True,
        "80",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token-file", "t"], "exactly one of --socket and --listen"),
        (["--socket", "s", "--listen", "h:1", "--token-file", "t"], "exactly one"),
        (["--socket", "s"], "--token-file is required"),
        (["--socket", "s", "--token-file"], "--token-file needs a value"),
        (["--socket", "s", "--token-file", "t", "--language", "ruby"], "--language must be"),
        (["--socket", "s", "--token-file", "t", "--verbose"], "unrecognized argument"),
    ],
)
def test_a_wrong_command_line_exits_with_the_usage_and_the_mistake(
    argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv, "python")
    assert "usage:" in str(exited.value.code)
    assert message in str(exited.value.code)
