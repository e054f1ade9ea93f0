"""The size-limited ``/workspace``: a host tmpfs per sandbox, mounted before bwrap binds it.

A tmpfs with ``size=`` and ``nr_inodes=`` turns a disk flood into ENOSPC; its pages are
charged to the memory cgroup of the process that writes them, i.e. the sandbox's.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from ..errors import RuntimeUnavailable

MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 0x2
BYTES_PER_INODE = 16 * 1024
MIN_INODES = 1024

_libc = ctypes.CDLL(None, use_errno=True)


def mount_workspace(path: Path, size_bytes: int, uid: int) -> None:
    """Mount a tmpfs of ``size_bytes`` owned by ``uid`` (mode 0700) on ``path``."""
    inodes = max(MIN_INODES, size_bytes // BYTES_PER_INODE)
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={uid}"
    done = _libc.mount(
        b"llmsafespace", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()
    )
    if done != 0:
        error = ctypes.get_errno()
        raise RuntimeUnavailable(
            f"cannot mount the workspace tmpfs on {path}: {os.strerror(error)}"
        )


def unmount(path: Path) -> None:
    """Detach whatever is mounted on ``path`` (all layers); nothing mounted is fine."""
    target = os.fsencode(path)
    while path in mounted_under(path):
        if _libc.umount2(target, MNT_DETACH) != 0:
            return


def mounted_under(root: Path) -> set[Path]:
    """Mount points at or below ``root`` in this mount namespace."""
    prefix = str(root.absolute())
    found = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.add(Path(point))
    return found
