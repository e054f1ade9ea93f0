"""Archive uploads of the agent, in-process: all or nothing, with refused members."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from llmsafespace.agent import archives, paths
from llmsafespace.agent.paths import FileError


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    monkeypatch.setattr(paths, "ROOTS", (str(workspace),))
    return workspace


def tar_gz(*members: tuple[str, bytes | None, bytes | str]) -> bytes:
    """(name, tar type, content or link target) → a tar.gz."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, kind, payload in members:
            entry = tarfile.TarInfo(name)
            entry.type = kind or tarfile.REGTYPE
            if isinstance(payload, str):
                entry.linkname = payload
                archive.addfile(entry)
            elif entry.type == tarfile.REGTYPE:
                entry.size = len(payload)
                archive.addfile(entry, io.BytesIO(payload))
            else:
                archive.addfile(entry)
    return packed.getvalue()


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


def unpack(root: Path, data: bytes, into: str = "target") -> dict[str, object]:
    return archives.unpack(io.BytesIO(data), paths.resolve(f"{root}/{into}"))


@pytest.fixture
def target(root: Path) -> Path:
    directory = root / "target"
    (directory / "keep").mkdir(parents=True)
    (directory / "keep" / "old.txt").write_bytes(b"old")
    (directory / "same.txt").write_bytes(b"before")
    return directory


FILES = (("a.txt", None, b"a"), ("sub/b.txt", None, b"b"), ("same.txt", None, b"after"))


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (("../escape.txt", None, b"x"), "invalid_path"),
        (("/abs.txt", None, b"x"), "invalid_path"),
        (("sub/../../up.txt", None, b"x"), "invalid_path"),
        (("empty", tarfile.SYMTYPE, ""), "invalid_request"),
        (("hard", tarfile.LNKTYPE, "/etc/passwd"), "invalid_path"),
        (("hard", tarfile.LNKTYPE, "../x"), "invalid_path"),
        (("dev", tarfile.CHRTYPE, b""), "invalid_request"),
        (("fifo", tarfile.FIFOTYPE, b""), "invalid_request"),
    ],
)
def test_a_refused_member_after_good_ones_leaves_the_target_unchanged(
    root: Path, target: Path, bad: tuple[str, bytes | None, bytes | str], code: str
) -> None:
    before = snapshot(target)
    with pytest.raises(FileError) as refused:
        unpack(root, tar_gz(*FILES, bad))
    assert refused.value.code == code
    assert snapshot(target) == before
    assert not (root / "escape.txt").exists()


def test_a_truncated_archive_leaves_the_target_unchanged(root: Path, target: Path) -> None:
    data = tar_gz(*FILES, ("big.bin", None, os.urandom(300_000)))
    before = snapshot(target)
    with pytest.raises(FileError) as refused:
        unpack(root, data[: len(data) - 5000])
    assert refused.value.code == "invalid_request"
    assert snapshot(target) == before


def test_a_failed_upload_into_a_new_directory_leaves_no_directory(root: Path) -> None:
    with pytest.raises(FileError):
        unpack(root, b"not a tar.gz at all", into="fresh")
    assert not (root / "fresh").exists()


def test_a_good_archive_is_merged_into_what_is_there(root: Path, target: Path) -> None:
    unpacked = unpack(
        root,
        tar_gz(
            *FILES,
            ("keep/new.txt", None, b"new"),
            ("sub/link", tarfile.SYMTYPE, "b.txt"),
            ("sub/hard", tarfile.LNKTYPE, "sub/b.txt"),
        ),
    )
    assert unpacked["files"] == 6
    assert snapshot(target) == {
        "a.txt": b"a",
        "keep": None,
        "keep/new.txt": b"new",
        "keep/old.txt": b"old",
        "same.txt": b"after",
        "sub": None,
        "sub/b.txt": b"b",
        "sub/hard": b"b",
        "sub/link": b"b",
    }
    assert os.readlink(target / "sub" / "link") == "b.txt"


def test_a_directory_where_a_file_is_conflicts_before_anything_moves(
    root: Path, target: Path
) -> None:
    before = snapshot(target)
    with pytest.raises(FileError) as refused:
        unpack(root, tar_gz(("a.txt", None, b"a"), ("same.txt/inner", None, b"x")))
    assert refused.value.code == "conflict"
    assert snapshot(target) == before


def test_an_archive_whose_gzip_trailer_is_wrong_leaves_the_target_unchanged(
    root: Path, target: Path
) -> None:
    data = bytearray(tar_gz(*FILES))
    data[-8] ^= 0xFF  # the CRC32 of the gzip trailer, read after the tar's end marker
    before = snapshot(target)
    with pytest.raises(FileError) as refused:
        unpack(root, bytes(data))
    assert refused.value.code == "invalid_request"
    assert snapshot(target) == before


def test_concatenated_gzip_members_unpack_as_one_archive(root: Path) -> None:
    whole = tar_gz(("a.txt", None, b"a" * 5000), ("b.txt", None, b"b"))
    tar = gzip.decompress(whole)
    split = gzip.compress(tar[:3000]) + gzip.compress(tar[3000:])
    unpack(root, split, into="fresh")
    assert snapshot(root / "fresh") == {"a.txt": b"a" * 5000, "b.txt": b"b"}


def pack(directory: Path) -> bytes:
    packed = io.BytesIO()
    top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        archives.pack(top, packed)
    finally:
        os.close(top)
    return packed.getvalue()


def tree(directory: Path) -> dict[str, str | bytes | None]:
    """Each entry under ``directory``: a link's target, a file's bytes, None for a directory."""
    found: dict[str, str | bytes | None] = {}
    for base, dirs, names in os.walk(directory):
        for name in dirs + names:
            path = Path(base, name)
            key = str(path.relative_to(directory))
            if path.is_symlink():
                found[key] = os.readlink(path)
            else:
                found[key] = None if path.is_dir() else path.read_bytes()
    return found


def test_a_venv_with_links_out_and_in_round_trips_through_pack_and_unpack(root: Path) -> None:
    venv = root / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "lib" / "site-packages" / "six.py").write_bytes(b"six")
    (venv / "bin" / "python3.11").symlink_to("/usr/bin/python3.11")  # out of the workspace
    (venv / "bin" / "python").symlink_to("python3.11")
    (venv / "lib64").symlink_to("lib")  # a link to a directory: kept, not descended
    (venv / "gone").symlink_to("../nowhere")
    data = pack(venv)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as packed:
        links = {member.name: member.linkname for member in packed if member.issym()}
    assert links == {
        "bin/python": "python3.11",
        "bin/python3.11": "/usr/bin/python3.11",
        "gone": "../nowhere",
        "lib64": "lib",
    }
    unpacked = unpack(root, data, into="restored")
    assert unpacked["files"] == 8
    assert tree(root / "restored") == tree(venv)


@pytest.mark.parametrize(
    "through",
    [
        ("link/planted.txt", None, b"x"),
        ("link/sub/planted.txt", None, b"x"),
        ("link/sub", tarfile.DIRTYPE, b""),
        ("link/planted.txt", tarfile.LNKTYPE, "a.txt"),
        ("link/planted.txt", tarfile.SYMTYPE, "a.txt"),
        ("file", None, b"x"),  # the link ``file`` itself, opened to write
        ("file", tarfile.SYMTYPE, "elsewhere"),
        ("copy", tarfile.LNKTYPE, "file"),
    ],
)
def test_a_later_member_under_a_links_name_is_refused_and_never_written_through(
    root: Path, target: Path, tmp_path: Path, through: tuple[str, bytes | None, bytes | str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_bytes(b"kept")
    hostile = tar_gz(
        ("a.txt", None, b"a"),
        ("link", tarfile.SYMTYPE, str(outside)),
        ("file", tarfile.SYMTYPE, str(outside / "kept.txt")),
        through,
    )
    before = snapshot(target)
    with pytest.raises((FileError, OSError)):
        unpack(root, hostile)
    assert tree(outside) == {"kept.txt": b"kept"}
    assert snapshot(target) == before


def test_what_an_archive_unpacks_over_a_link_in_place_replaces_it_or_conflicts(
    root: Path, target: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_bytes(b"kept")
    (target / "dir").symlink_to(outside)
    (target / "file").symlink_to(outside / "kept.txt")
    with pytest.raises(FileError) as refused:
        unpack(root, tar_gz(("dir/planted.txt", None, b"x")))
    assert refused.value.code == "conflict"
    unpack(root, tar_gz(("file", None, b"new")))
    assert not (target / "file").is_symlink()
    assert (target / "file").read_bytes() == b"new"
    assert tree(outside) == {"kept.txt": b"kept"}


def test_a_file_swapped_for_a_fifo_while_packing_is_left_out_not_waited_on(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the walk's stat and the open a file may become a FIFO: opening that
    without O_NONBLOCK waits for a writer that never comes."""
    (root / "kept.txt").write_bytes(b"kept")
    os.mkfifo(root / "swapped")
    real_stat = os.stat

    def stale(name: object, *args: object, **kwargs: object) -> os.stat_result:
        found = real_stat(name, *args, **kwargs)  # type: ignore[arg-type]
        if name == "swapped":  # as the walk saw it a moment before: a regular file
            return os.stat_result((0o100644, *found[1:]))
        return found

    monkeypatch.setattr(archives.os, "stat", stale)
    packed = pack(root)
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as archive:
        assert archive.getnames() == ["kept.txt"]
