"""Template layers: a builder sandbox's workspace, kept read-only under the runtime dir.

``keep`` copies the workspace as the sandbox's own uid (``setpriv``), so the copy can
read nothing the sandbox could not, whatever links the sandbox left or swaps in meanwhile;
then, with nobody else able to reach the staging dir, root takes the copy over: owned by
root, set-id bits gone, readable by all, writable by none, and renamed into place. Every
sandbox of the template binds that directory read-only (``bwrap.Profile.template_dir``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from ..errors import DriverError

COPY_TIMEOUT = 300.0
SETPRIV = "/usr/bin/setpriv"


def store(root: Path) -> Path:
    """Where layers live under the runtime dir ``root``."""
    return root / "templates"


def path(root: Path, layer: str) -> Path:
    return store(root) / layer


def keep(root: Path, workspace: Path, uid: int, layer: str) -> None:
    """Copy ``workspace`` (the sandbox of ``uid``) into the store as ``layer``."""
    target = path(root, layer)
    if target.exists():
        raise DriverError(f"template layer {layer} already exists")
    store(root).mkdir(mode=0o711, exist_ok=True)
    staging = store(root) / f".staging-{layer}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    os.chown(staging, uid, uid)
    try:
        argv = [
            SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
            "--", "cp", "-R", "--no-dereference", "--preserve=mode,timestamps,links",
            "--", f"{workspace}/.", str(staging),
        ]  # fmt: skip
        copied = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=COPY_TIMEOUT,
            check=False,
        )
        if copied.returncode != 0:
            raise DriverError(f"cannot keep the template layer: {copied.stderr[-2000:]}")
        _seal(staging)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _seal(top: Path) -> None:
    """Root-owned, no set-id bits, readable by everyone, writable by nobody."""
    for directory, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            entry = Path(directory, name)
            info = entry.lstat()
            os.chown(entry, 0, 0, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                continue
            if stat.S_ISDIR(info.st_mode) or info.st_mode & 0o111:
                entry.chmod(0o555)
            elif stat.S_ISREG(info.st_mode):
                entry.chmod(0o444)
            else:  # a fifo or socket has no place in a layer
                entry.unlink()
    os.chown(top, 0, 0)
    top.chmod(0o555)


def drop(root: Path, layer: str) -> None:
    """Remove ``layer``; idempotent."""
    target = path(root, layer)
    if not target.exists():
        return
    for directory, dirs, _ in os.walk(target):  # read-only dirs: writable again to delete
        for name in dirs:
            Path(directory, name).chmod(0o700)
    target.chmod(0o700)
    shutil.rmtree(target)
