"""Template layers: a workspace kept as the sandbox's uid would see it, then sealed
(root-owned, read-only, no set-id bits, no special files), and dropped again."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmsafespace.runtime import DriverError
from llmsafespace.runtime.local import layers

UID = 65534  # nobody: the uid a sandbox's workspace belongs to


@pytest.fixture
def root() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def workspace(root: Path) -> Path:
    """A builder's workspace as the sandbox left it: packages, a set-uid file, a link
    out of it, a fifo."""
    path = root / "workspace"
    (path / ".packages" / "pkg").mkdir(parents=True)
    (path / ".packages" / "pkg" / "__init__.py").write_text("ANSWER = 42\n")
    (path / "tool").write_text("#!/bin/sh\n")
    (path / "tool").chmod(0o4777)
    (path / "shadow").symlink_to("/etc/shadow")
    os.mkfifo(path / "pipe")
    for directory, dirs, files in os.walk(path):
        for name in [directory, *(Path(directory, entry) for entry in [*dirs, *files])]:
            os.chown(name, UID, UID, follow_symlinks=False)
    path.chmod(0o700)
    return path


def test_a_kept_layer_is_root_owned_read_only_and_keeps_links_as_links(
    root: Path, workspace: Path
) -> None:
    layers.keep(root, workspace, UID, "tpl-a")
    layer = layers.path(root, "tpl-a")
    assert (layer / ".packages" / "pkg" / "__init__.py").read_text() == "ANSWER = 42\n"
    for entry in [layer, *layer.rglob("*")]:
        info = entry.lstat()
        assert (info.st_uid, info.st_gid) == (0, 0), entry
        if not stat.S_ISLNK(info.st_mode):
            assert info.st_mode & 0o7222 == 0, (entry, oct(info.st_mode))  # no write, no set-id
    assert os.readlink(layer / "shadow") == "/etc/shadow"  # a link, never the host's file
    assert not (layer / "pipe").exists()
    assert not any(path.name.startswith(".staging") for path in layers.store(root).iterdir())
    layers.drop(root, "tpl-a")
    assert not layer.exists()
    layers.drop(root, "tpl-a")  # idempotent


def test_the_copy_reads_nothing_the_sandbox_uid_could_not(root: Path, workspace: Path) -> None:
    secret = workspace / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)  # root's, in the sandbox's workspace: its uid cannot read it
    with pytest.raises(DriverError, match="cannot keep"):
        layers.keep(root, workspace, UID, "tpl-b")
    assert not layers.path(root, "tpl-b").exists()
    assert list(layers.store(root).iterdir()) == []  # no staging left behind


def test_a_layer_name_is_kept_once(root: Path, workspace: Path) -> None:
    layers.keep(root, workspace, UID, "tpl-c")
    with pytest.raises(DriverError, match="already exists"):
        layers.keep(root, workspace, UID, "tpl-c")
