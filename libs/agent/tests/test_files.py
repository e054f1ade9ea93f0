"""File operations of the agent, in-process, with the roots moved to a temp directory."""

from __future__ import annotations

import hashlib
import os
import queue
from pathlib import Path

import pytest

from llmsafespace.agent import files, paths
from llmsafespace.agent.paths import FileError
from llmsafespace.agent.protocol import Frame


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.setattr(paths, "ROOTS", (str(workspace),))
    return workspace


def write(path: str, data: bytes, *, sha256: str | None = None) -> Frame:
    inbound: files.Inbound = queue.SimpleQueue()
    sent: list[Frame] = []

    def send(frame: Frame, body: bytes) -> None:
        sent.append(frame)

    for start in range(0, len(data), files.CHUNK):
        inbound.put_nowait(({}, data[start : start + files.CHUNK]))
    expected = sha256 or hashlib.sha256(data).hexdigest()
    inbound.put_nowait(({"end": True, "sha256": expected}, b""))
    return files.write_file({"path": path}, send, inbound)


def test_a_write_is_renamed_into_place_only_when_its_checksum_matches(root: Path) -> None:
    written = write(f"{root}/a/b.bin", b"x" * 600_000)
    assert written["size"] == 600_000
    assert (root / "a" / "b.bin").read_bytes() == b"x" * 600_000
    with pytest.raises(FileError) as corrupted:
        write(f"{root}/a/c.bin", b"data", sha256="0" * 64)
    assert corrupted.value.code == "invalid_request"
    assert sorted(os.listdir(root / "a")) == ["b.bin"]


@pytest.mark.parametrize("path", ["relative", "/etc/passwd", "/x/../etc", "/tmp/a\x00b"])
def test_paths_outside_the_roots_are_invalid(root: Path, path: str) -> None:
    with pytest.raises(FileError) as refused:
        paths.resolve(path)
    assert refused.value.code == "invalid_path"


def test_symlinks_that_lead_out_are_refused_even_below_a_directory(root: Path) -> None:
    (root / "out").symlink_to("/etc")
    (root / "passwd").symlink_to("/etc/passwd")
    for path in (f"{root}/out/passwd", f"{root}/passwd", f"{root}/out"):
        with pytest.raises(FileError) as refused:
            paths.resolve(path)
        assert refused.value.code == "invalid_path"


def test_a_directory_swapped_for_a_symlink_after_resolving_is_not_followed(
    root: Path,
) -> None:
    (root / "dir").mkdir()
    resolved = paths.resolve(f"{root}/dir/file")
    (root / "dir").rmdir()
    (root / "dir").symlink_to("/etc")  # the race: swapped between resolve and open
    with pytest.raises(NotADirectoryError):  # ENOTDIR (O_NOFOLLOW|O_DIRECTORY on a link)
        resolved.open_parent()
