"""The `llmsafespace` console script, run as a subprocess with the client's env."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_sandbox_create_get_ls_exec_run_and_rm(client_env, tmp_path: Path, requires) -> None:
    created = cli(client_env, "sandbox", "create", "--timeout", "600", "-m", "cli=yes")
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    try:
        got = cli(client_env, "sandbox", "get", sandbox_id, "--json")
        assert json.loads(got.stdout)["metadata"] == {"cli": "yes"}
        assert sandbox_id in cli(client_env, "sandbox", "get", sandbox_id).stdout

        executed = cli(client_env, "exec", sandbox_id, "--", "echo out; echo err >&2; exit 3")
        assert (executed.returncode, executed.stdout, executed.stderr) == (3, "out\n", "err\n")

        ran = cli(client_env, "run", sandbox_id, "--code", "print(6 * 7)")
        assert (ran.returncode, ran.stdout) == (0, "42\n")
        script = tmp_path / "script.py"
        script.write_text("import sys\nprint('from file')\nsys.exit(4)\n")
        from_file = cli(client_env, "run", sandbox_id, "--file", str(script))
        assert "from file" in from_file.stdout
        assert from_file.returncode != 0

        requires("GET", "/sandboxes")
        listed = cli(client_env, "sandbox", "ls", "--json", "-m", "cli=yes")
        assert sandbox_id in [item["id"] for item in json.loads(listed.stdout)["sandboxes"]]
        assert sandbox_id in cli(client_env, "sandbox", "ls", "-m", "cli=yes").stdout
    finally:
        removed = cli(client_env, "sandbox", "rm", sandbox_id)
    assert removed.returncode == 0, removed.stderr


def test_exec_forwards_piped_stdin_unless_told_not_to(client_env) -> None:
    created = cli(client_env, "sandbox", "create", "--timeout", "600")
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    text = "line one\nligne deux é\n" + "z" * 200_000 + "\n"
    try:
        piped = run_cli(client_env, text, "exec", sandbox_id, "--", "cat")
        counted = run_cli(client_env, text, "exec", sandbox_id, "--", "wc -l")
        refused = run_cli(client_env, text, "exec", sandbox_id, "--no-stdin", "--", "cat")
    finally:
        cli(client_env, "sandbox", "rm", sandbox_id)
    assert (piped.returncode, piped.stdout) == (0, text), piped.stderr
    assert counted.stdout.strip() == "3"
    assert (refused.returncode, refused.stdout) == (0, "")


def run_cli(env: dict[str, str], stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`cli` with `stdin` piped in."""
    return subprocess.run(
        [CLI, *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_pool_create_ls_scale_rm(client_env, requires) -> None:
    requires("GET", "/warmpools")
    created = cli(client_env, "pool", "create", "sdk-cli-pool", "--min", "0", "--max", "2")
    assert created.returncode == 0, created.stderr
    try:
        pools = json.loads(cli(client_env, "pool", "ls", "--json").stdout)
        assert "sdk-cli-pool" in [pool["name"] for pool in pools]
        scaled = cli(client_env, "pool", "scale", "sdk-cli-pool", "--max", "4", "--json")
        assert json.loads(scaled.stdout)["spec"]["maxSize"] == 4
        assert "sdk-cli-pool" in cli(client_env, "pool", "ls").stdout
    finally:
        removed = cli(client_env, "pool", "rm", "sdk-cli-pool")
    assert removed.returncode == 0, removed.stderr


def test_errors_are_one_line_messages_not_tracebacks(client_env) -> None:
    bad_key = cli({**client_env, "LLMSAFESPACE_API_KEY": "lsp_wrong"}, "sandbox", "get", "sb-x")
    missing = cli(client_env, "sandbox", "get", "sb-doesnotexist00")
    refused = cli(
        {**client_env, "LLMSAFESPACE_API_URL": "http://127.0.0.1:1/api/v1"}, "sandbox", "ls"
    )
    for result, word in ((bad_key, "API_KEY"), (missing, "not found"), (refused, "reach")):
        assert result.returncode == 1
        assert word in result.stderr
        assert "Traceback" not in result.stderr
