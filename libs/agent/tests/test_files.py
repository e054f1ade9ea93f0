"""File operations of the agent, in-process, with the roots moved to a temp directory."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import queue
import resource
import socket
import tarfile
import threading
from collections.abc import Iterator
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


def write(path: str, data: bytes, *, sha256: str | None = None, archive: bool = False) -> Frame:
    inbound: files.Inbound = queue.SimpleQueue()
    sent: list[Frame] = []

    def send(frame: Frame, body: bytes) -> None:
        sent.append(frame)

    for start in range(0, len(data), files.CHUNK):
        inbound.put_nowait(({}, data[start : start + files.CHUNK]))
    expected = sha256 or hashlib.sha256(data).hexdigest()
    inbound.put_nowait(({"end": True, "sha256": expected}, b""))
    return files.write_file({"path": path, "archive": archive}, send, inbound)


def read_archive(path: str) -> bytes:
    """A directory downloaded as a tar.gz, with all the credit it asks for; the sha256
    sent at the end is checked."""
    inbound: files.Inbound = queue.SimpleQueue()
    inbound.put_nowait(({"credit": 1 << 30}, b""))
    chunks: list[bytes] = []

    def send(frame: Frame, body: bytes) -> None:
        assert len(body) <= files.CHUNK
        chunks.append(body)

    result = files.read_file({"path": path, "archive": True}, send, inbound)
    data = b"".join(chunks)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()
    return data


FILE_LIMIT = 1 << 20


@pytest.fixture
def small_files() -> Iterator[None]:
    """No file larger than FILE_LIMIT may be written (EFBIG), as with a sandbox whose
    memory-backed /tmp is smaller than the archive: staging the archive whole anywhere fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_an_archive_larger_than_any_file_it_may_write_downloads_and_uploads(
    root: Path, request: pytest.FixtureRequest
) -> None:
    contents = {f"d{index % 2}/f{index}.bin": os.urandom(FILE_LIMIT // 2) for index in range(6)}
    for name, data in contents.items():
        (root / "source" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "source" / name).write_bytes(data)
    request.getfixturevalue("small_files")
    archive = read_archive(f"{root}/source")
    assert len(archive) > 2 * FILE_LIMIT  # random data: it does not compress
    written = write(f"{root}/copy", archive, archive=True)
    assert (written["files"], written["size"]) == (8, len(archive))
    for name, data in contents.items():
        assert (root / "copy" / name).read_bytes() == data
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        assert sorted(unpacked.getnames()) == sorted(["d0", "d1", *contents])


def test_a_download_aborted_mid_archive_sends_and_reads_nothing_more(root: Path) -> None:
    (root / "source").mkdir()
    for index in range(4):
        (root / "source" / f"f{index}.bin").write_bytes(os.urandom(files.CHUNK * 4))
    inbound: files.Inbound = queue.SimpleQueue()
    inbound.put_nowait(({"abort": True}, b""))
    later = ({"credit": 100}, b"")
    inbound.put_nowait(later)  # credit that a stuck or careless sender would go on to use
    sent: list[Frame] = []

    def send(frame: Frame, body: bytes) -> None:
        sent.append(frame)

    with pytest.raises(FileError) as aborted:
        files.read_file({"path": f"{root}/source", "archive": True}, send, inbound)
    assert aborted.value.code == "cancelled"
    assert [frame["type"] for frame in sent] == ["info", *["data"] * files.WINDOW]
    assert inbound.get_nowait() == later


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


def test_a_templates_layer_is_a_root_and_a_read_only_one_refuses_writes_as_forbidden() -> None:
    """/opt/template: the Kubernetes driver writes a template's layer there; the local
    driver binds it read-only, so a write there is a refusal, not an internal error."""
    assert paths.resolve("/opt/template/.packages/x.py").root == "/opt/template"
    with pytest.raises(FileError) as refused:
        paths.resolve("/opt/runtime/bin/pip")
    assert refused.value.code == "invalid_path"
    read_only = OSError(errno.EROFS, os.strerror(errno.EROFS))
    assert paths.failure(read_only, "/opt/template/x").code == "forbidden"


def test_deleting_a_symlink_removes_the_link_and_leaves_its_target(root: Path) -> None:
    (root / "project" / "src").mkdir(parents=True)
    (root / "project" / "src" / "main.py").write_text("code")
    (root / "target.txt").write_text("kept")
    (root / "shortcut").symlink_to("project")
    (root / "link.txt").symlink_to("target.txt")
    assert files.delete({"path": f"{root}/shortcut", "recursive": True}) == {
        "path": f"{root}/shortcut"
    }
    files.delete({"path": f"{root}/link.txt"})
    assert sorted(os.listdir(root)) == ["project", "target.txt"]
    assert (root / "project" / "src" / "main.py").read_text() == "code"
    assert (root / "target.txt").read_text() == "kept"


def test_a_symlink_that_leads_out_can_be_deleted_but_not_followed(root: Path) -> None:
    (root / "pw").symlink_to("/etc/passwd")
    (root / "out").symlink_to("/etc")
    with pytest.raises(FileError) as refused:
        files.delete({"path": f"{root}/out/passwd"})  # the parent is outside: refused
    assert refused.value.code == "invalid_path"
    files.delete({"path": f"{root}/pw"})
    files.delete({"path": f"{root}/out", "recursive": True})
    assert os.listdir(root) == []
    assert os.path.exists("/etc/passwd")


def test_deleting_below_a_linked_directory_deletes_in_the_directory(root: Path) -> None:
    (root / "project").mkdir()
    (root / "project" / "a.txt").write_text("a")
    (root / "shortcut").symlink_to("project")
    assert files.delete({"path": f"{root}/shortcut/a.txt"}) == {"path": f"{root}/project/a.txt"}
    assert os.listdir(root / "project") == []


def test_a_root_itself_cannot_be_deleted(root: Path) -> None:
    with pytest.raises(FileError) as refused:
        files.delete({"path": str(root), "recursive": True})
    assert refused.value.code == "invalid_path"
    assert root.is_dir()


def test_a_link_the_agent_may_not_read_is_outside_like_any_link_that_leads_out(
    root: Path,
) -> None:
    try:
        os.readlink("/proc/1/root")
    except PermissionError:
        pass  # as in a sandbox (and, without CAP_SYS_PTRACE, as root)
    else:
        pytest.skip("pid 1's root is readable here: the link cannot be made unreadable")
    (root / "root1").symlink_to("/proc/1/root")
    for path in (f"{root}/root1/etc/passwd", f"{root}/root1"):
        with pytest.raises(FileError) as refused:
            paths.resolve(path)
        assert refused.value.code == "invalid_path"
        assert "is not inside" in str(refused.value)


def test_a_listing_shows_a_symlink_as_a_link_with_its_target(root: Path) -> None:
    (root / "project").mkdir()
    (root / "a.txt").write_text("a")
    (root / "shortcut").symlink_to("project")
    (root / "pw").symlink_to("/etc/passwd")
    (root / "dangling").symlink_to("nowhere")
    for recursive in (False, True):
        listing = files.list_files({"path": str(root), "recursive": recursive})
        entries = {entry["name"]: entry for entry in listing["files"]}
        assert sorted(entries) == ["a.txt", "dangling", "project", "pw", "shortcut"]
        links = {name: entry.get("symlinkTarget") for name, entry in entries.items()}
        assert links == {
            "a.txt": None,
            "dangling": "nowhere",
            "project": None,
            "pw": "/etc/passwd",
            "shortcut": "project",
        }
        assert [name for name, entry in entries.items() if entry["isSymlink"]] == [
            "dangling",
            "pw",
            "shortcut",
        ]
        assert not entries["shortcut"]["isDirectory"]
        assert entries["project"]["isDirectory"]


def _json_bytes(entries: list[Frame]) -> int:
    """What ``entries`` count against a listing's bound: their JSON, a comma after each."""
    return len(json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode()) - 1


def test_a_listing_of_long_names_stops_at_its_byte_bound_first_names_first(root: Path) -> None:
    """2,000 names of 200 characters: under the count bound, the entries' JSON was past
    the 1 MiB NATS carries in a reply, which was never sent."""
    names = [f"{n:04d}" + "x" * 196 for n in range(2000)]
    for name in names:
        (root / name).touch()
    listing = files.list_files({"path": str(root)})
    kept = [entry["name"] for entry in listing["files"]]
    assert listing["truncated"]
    assert kept == names[: len(kept)]
    # Full but for less than one more entry (some 650 bytes).
    assert files.MAX_LISTING_BYTES - 1000 < _json_bytes(listing["files"]) <= files.MAX_LISTING_BYTES


def test_a_recursive_listing_has_each_directorys_entries_before_those_below_it(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for directory in ("b", "a", "a/deep"):
        (root / directory).mkdir()
    for name in ("top.txt", "b/1", "a/1", "a/2", "a/deep/1"):
        (root / name).touch()
    whole = files.list_files({"path": str(root), "recursive": True})
    entries = {entry["path"][len(str(root)) + 1 :]: entry for entry in whole["files"]}
    assert not whole["truncated"]
    first = ["a", "b", "top.txt", "a/1", "a/2"]  # the top's, then a's (by name) that fit
    monkeypatch.setattr(files, "MAX_LISTING_BYTES", _json_bytes([entries[p] for p in first]))
    listing = files.list_files({"path": str(root), "recursive": True})
    assert [entry["path"][len(str(root)) + 1 :] for entry in listing["files"]] == sorted(first)
    assert listing["truncated"]


def _read(path: str) -> tuple[Frame, bytes]:
    """A whole download of ``path``: its result and bytes."""
    inbound: files.Inbound = queue.SimpleQueue()
    inbound.put_nowait(({"credit": 1 << 30}, b""))
    chunks: list[bytes] = []

    def send(frame: Frame, body: bytes) -> None:
        chunks.append(body)

    return files.read_file({"path": path}, send, inbound), b"".join(chunks)


def test_a_fifo_or_a_socket_is_refused_at_once_as_not_a_regular_file(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a FIFO for reading waits for a writer: a download of one held the agent's
    thread (and the caller's request) until the client gave up."""
    os.mkfifo(root / "fifo")
    monkeypatch.chdir(root)  # a socket's path must be short
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind("sock")
        refusals: dict[str, FileError] = {}

        def download(name: str) -> None:
            with pytest.raises(FileError) as refused:
                _read(f"{root}/{name}")
            refusals[name] = refused.value

        reader = threading.Thread(target=lambda: [download(n) for n in ("fifo", "sock")])
        reader.start()
        reader.join(timeout=10)
        if reader.is_alive():  # blocked in open(): a writer lets it go, then fail
            os.close(os.open(root / "fifo", os.O_WRONLY | os.O_NONBLOCK))
            reader.join()
            pytest.fail("the download of a FIFO waited for a writer")
    assert {name: error.code for name, error in refusals.items()} == {
        "fifo": "invalid_request",
        "sock": "invalid_request",
    }
    assert str(refusals["fifo"]) == f"{root}/fifo is not a regular file"
    assert str(refusals["sock"]) == f"{root}/sock is not a regular file"
    (root / "dir").mkdir()
    with pytest.raises(FileError) as directory:
        _read(f"{root}/dir")
    assert (directory.value.code, str(directory.value)) == (
        "invalid_request",
        f"{root}/dir is a directory",
    )


def test_an_upload_onto_a_fifo_replaces_it_without_waiting(root: Path) -> None:
    os.mkfifo(root / "fifo")
    assert write(f"{root}/fifo", b"data")["size"] == 4
    assert (root / "fifo").read_bytes() == b"data"
    assert _read(f"{root}/fifo") == ({"sha256": hashlib.sha256(b"data").hexdigest()}, b"data")
