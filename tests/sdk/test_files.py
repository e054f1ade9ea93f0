"""Files and packages through the SDK (async and sync) and `llmsafespace cp`."""

import asyncio
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk import (
    AsyncSandbox,
    ConflictError,
    FileWritten,
    NotFoundError,
    Sandbox,
    ValidationError,
)

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))


async def test_async_files_write_read_list_and_remove(shared: AsyncSandbox) -> None:
    data = os.urandom(700_000)
    seen: list[int] = []
    written = await shared.files.write("/workspace/sdk/blob.bin", data, progress=seen.append)
    assert isinstance(written, FileWritten)
    assert (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert seen[-1] == len(data)
    assert await shared.files.read("/workspace/sdk/blob.bin") == data
    await shared.files.write("/workspace/sdk/note.txt", "hello")
    assert await shared.files.read_text("/workspace/sdk/note.txt") == "hello"
    names = {entry.name for entry in await shared.files.list("/workspace/sdk")}
    assert names == {"blob.bin", "note.txt"}
    await shared.files.remove("/workspace/sdk", recursive=True)
    with pytest.raises(NotFoundError):
        await shared.files.read("/workspace/sdk/note.txt")
    with pytest.raises(ValidationError) as refused:
        await shared.files.read("/etc/passwd")
    assert refused.value.code == "invalid_path"


async def test_a_listing_too_large_for_one_reply_says_it_was_cut_short(
    shared: AsyncSandbox,
) -> None:
    """It failed 504 after 10 s; and the SDK dropped `truncated`, so a cut listing looked
    whole."""
    await shared.run_command(
        "mkdir -p /workspace/many && cd /workspace/many && seq 1 5000 | xargs touch"
    )
    entries = await shared.files.list("/workspace/many")
    assert isinstance(entries, list)
    assert entries.truncated
    assert 1000 < len(entries) < 5000
    assert not (await shared.files.list("/workspace")).truncated


async def test_a_file_path_with_a_trailing_slash_is_refused(shared: AsyncSandbox) -> None:
    """It wrote a file named `newdir`, and read `a.txt` through `a.txt/`."""
    await shared.files.write("/workspace/slashed/a.txt", "a")
    for call in (
        lambda: shared.files.write("/workspace/slashed/newdir/", "x"),
        lambda: shared.files.read("/workspace/slashed/a.txt/"),
    ):
        with pytest.raises(ValidationError) as refused:
            await call()
        assert refused.value.code == "invalid_request"
        assert "/workspace/slashed/" in refused.value.message
    with pytest.raises(NotFoundError):
        await shared.files.read("/workspace/slashed/newdir")
    assert [entry.name for entry in await shared.files.list("/workspace/slashed/")] == ["a.txt"]


def _cp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "cp", "-q", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_cp_copies_a_file_into_a_directory_as_cp_does(
    shared: AsyncSandbox, client_env: dict[str, str], tmp_path: Path
) -> None:
    """Into a remote directory it failed `Is a directory`; to `dir/` it wrote a file `dir`."""
    env = {**os.environ, **client_env}
    local = tmp_path / "r.bin"
    local.write_bytes(b"r")
    await shared.files.write("/workspace/cp/there/keep.txt", "k")
    for destination in ("/workspace/cp/there", "/workspace/cp/new/"):
        copied = await asyncio.to_thread(_cp, env, str(local), f"{shared.id}:{destination}")
        assert copied.returncode == 0, copied.stderr
        assert await shared.files.read(destination.rstrip("/") + "/r.bin") == b"r"
    down = tmp_path / "down"
    missing = await asyncio.to_thread(
        _cp, env, f"{shared.id}:/workspace/cp/there/r.bin", f"{down}/"
    )
    assert missing.returncode != 0  # into a local directory that is not there: as cp
    down.mkdir()
    copied = await asyncio.to_thread(_cp, env, f"{shared.id}:/workspace/cp/there/r.bin", f"{down}/")
    assert copied.returncode == 0, copied.stderr
    assert (down / "r.bin").read_bytes() == b"r"
    tree = await asyncio.to_thread(
        _cp, env, "-r", f"{shared.id}:/workspace/cp/", str(tmp_path / "t")
    )
    assert tree.returncode == 0, tree.stderr
    copied_tree = sorted(path.name for path in (tmp_path / "t").rglob("*") if path.is_file())
    assert copied_tree == ["keep.txt", "r.bin", "r.bin"]


async def test_directories_round_trip(shared: AsyncSandbox, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (source / "data.bin").write_bytes(os.urandom(10_000))
    uploaded = await shared.files.upload_dir(source, "/workspace/tree")
    assert uploaded.files == 3
    back = tmp_path / "back"
    await shared.files.download_dir("/workspace/tree", back)
    assert (back / "pkg" / "mod.py").read_text() == "VALUE = 1\n"
    assert (back / "data.bin").read_bytes() == (source / "data.bin").read_bytes()


async def test_install_without_network_says_how_to_enable_it(shared: AsyncSandbox) -> None:
    with pytest.raises(ConflictError) as refused:
        await shared.install(["requests"])
    assert refused.value.code == "network_disabled"
    lines: list[str] = []
    with pytest.raises(ConflictError) as streamed:  # refused before it starts, streamed or not
        await shared.install(["left-pad"], manager="npm", on_stdout=lines.append)
    assert streamed.value.code == "network_disabled"
    assert "NPM_REGISTRY_URL" in str(streamed.value)
    assert lines == []
    with pytest.raises(ValidationError):
        await shared.install(["requests; rm -rf /"])


def test_sync_files_and_cp(client_env, tmp_path: Path) -> None:
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(1_500_000))
    with Sandbox(timeout=300) as sandbox:
        sandbox.files.upload(local, "/workspace/in.bin")
        assert sandbox.files.read("/workspace/in.bin") == local.read_bytes()
        env = {**os.environ, **client_env}
        up = subprocess.run(
            [CLI, "cp", str(local), f"{sandbox.id}:/workspace/cp.bin"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 0, up.stderr
        down = subprocess.run(
            [CLI, "cp", f"{sandbox.id}:/workspace/cp.bin", str(tmp_path / "out.bin")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert down.returncode == 0, down.stderr
        assert (tmp_path / "out.bin").read_bytes() == local.read_bytes()
        both_local = subprocess.run(
            [CLI, "cp", str(local), str(tmp_path / "x")], env=env, capture_output=True, text=True
        )
        assert both_local.returncode != 0
