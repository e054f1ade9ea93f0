"""How the CLI reports what went wrong: one line and a hint that fits, never a
traceback, for the API's errors and for local files alike."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk.cli import main, not_found_hint

CLI = str(Path(sys.executable).with_name("llmsafespace"))


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("sandbox sb-x not found", "`llmsafespace sandbox ls` lists your sandboxes"),
        ("warm pool 'p' not found", "`llmsafespace pool ls` lists the warm pools"),
        ("template 't' not found", "`llmsafespace templates ls` lists the templates"),
        ("snapshot snap-x not found", "`llmsafespace snapshot ls` lists your snapshots"),
        ("API key key-x not found", "`llmsafespace keys ls` lists your keys"),
        (
            "/workspace/my dir/x.bin: No such file or directory",
            "`llmsafespace exec SANDBOX -- ls -la '/workspace/my dir'` lists its directory",
        ),
        ("something else not found", None),
    ],
)
def test_a_not_found_hint_names_the_listing_of_what_was_missing(
    message: str, hint: str | None
) -> None:
    assert not_found_hint(message) == hint


def test_a_local_os_error_is_one_line_and_a_failing_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_text("")
    images = tmp_path / "plain" / "images"  # under a file: mkdir fails before any request
    with pytest.raises(SystemExit) as exited:
        main(["--api-key", "lsp_unused", "run", "sb-x", "-c", "1", "--images", str(images)])
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"error: {images}: Not a directory\n"


@pytest.mark.stack
def test_copying_a_missing_file_either_way_is_one_line(client_env, tmp_path: Path) -> None:
    env = {**os.environ, **client_env}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )

    sandbox_id = cli("sandbox", "create").stdout.strip()
    try:
        up = cli("cp", "-q", "nonexist.bin", f"{sandbox_id}:/workspace/x")
        down = cli("cp", "-q", f"{sandbox_id}:/workspace/nofile", "here")
    finally:
        cli("sandbox", "rm", sandbox_id)
    assert (up.returncode, up.stderr) == (1, "error: nonexist.bin: No such file or directory\n")
    assert (down.returncode, down.stderr) == (
        1,
        "error: /workspace/nofile: No such file or directory\n"
        "hint: `llmsafespace exec SANDBOX -- ls -la /workspace` lists its directory\n",
    )
