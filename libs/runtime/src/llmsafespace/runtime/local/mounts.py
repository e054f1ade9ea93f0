"""The size-limited ``/workspace``, mounted before the sandbox binds it.

A sparse ext4 image of the sandbox's storage size, loop-mounted: a copy (extents only, a
reflink where the filesystem can) of an empty image formatted once per size — ~2 ms where
``mkfs.ext4`` took 15-70 ms each create — attached to a free loop device and mounted by
the system calls themselves (~1 ms, where running ``mount -o loop`` took ~4.6). Each
sandbox has its own copy; the template is root's alone. The image:
a disk flood ends in ENOSPC, and what was written is page cache the kernel writes back
and reclaims — not memory pinned in the sandbox's cgroup. (A tmpfs, used before, is
memory: filling a 1 Gi workspace under a 512 Mi limit OOM-killed the agent.) Where the
host has no ``mkfs.ext4`` or loop devices, a tmpfs no larger than ``fallback_bytes``
(a share of the memory limit) stands in, and the driver says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import secrets
import struct
import subprocess
import time
from pathlib import Path

from ..errors import RuntimeUnavailable

MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 0x2
LOOP_CTL_GET_FREE, LOOP_CONFIGURE = 0x4C82, 0x4C0A  # <linux/loop.h>; LOOP_CONFIGURE: 5.8
LO_FLAGS_AUTOCLEAR = 4  # the device detaches itself when its filesystem is unmounted
LO_FLAGS_AT = 52  # offset of lo_flags in struct loop_info64 (232 bytes)
ATTACH_ATTEMPTS = 16  # free devices tried, each taken first by a concurrent create
BYTES_PER_INODE = 16 * 1024
SCRATCH_BYTES_PER_INODE = 4 * 1024  # /tmp and /dev/shm: many small files are common there
MIN_INODES = 1024
MIN_IMAGE_BYTES = 4 * 2**20  # mkfs.ext4's smallest useful filesystem
KEPT_TEMPLATES = 8  # empty images kept beyond those used lately: one per size asked for
TEMPLATE_IDLE = 600.0  # seconds unused before an empty image beyond those may be removed
MKFS = "/usr/sbin/mkfs.ext4"

_libc = ctypes.CDLL(None, use_errno=True)


def disk_backed() -> bool:
    """Whether workspaces can be ext4 images here (mkfs.ext4 and loop devices)."""
    return os.access(MKFS, os.X_OK) and os.path.exists("/dev/loop-control")


def mount_workspace(
    path: Path, image: Path, size_bytes: int, uid: int, fallback_bytes: int, templates: Path
) -> None:
    """Make ``path`` the sandbox's workspace of ``size_bytes``, owned by ``uid`` (0700):
    the ext4 image ``image`` (a copy of the template for its size, kept in ``templates``)
    when the host can, else a tmpfs of ``fallback_bytes``."""
    if not disk_backed():
        _mount_tmpfs(path, min(size_bytes, fallback_bytes), uid, 0o700, BYTES_PER_INODE)
        return
    copy_sparse(_template(templates, max(size_bytes, MIN_IMAGE_BYTES)), image)
    _mount_image(image, path)
    with contextlib.suppress(FileNotFoundError):  # a template made before they had none
        os.rmdir(path / "lost+found")
    os.chown(path, uid, uid)
    os.chmod(path, 0o700)


def _mount_image(image: Path, path: Path) -> None:
    """Attach ``image`` to a free loop device and mount that. The device detaches itself
    once nothing holds it (autoclear, as with ``mount -o loop``): at the unmount, or at
    once if the mount fails."""
    device, fd = _attach(image)
    try:
        done = _libc.mount(
            os.fsencode(device), os.fsencode(path), b"ext4", MS_NOSUID | MS_NODEV, None
        )
        if done != 0:
            error = ctypes.get_errno()
            raise RuntimeUnavailable(f"cannot mount the workspace {path}: {os.strerror(error)}")
    finally:
        os.close(fd)


def _attach(image: Path) -> tuple[str, int]:
    """A free loop device now backed by ``image``, and its open descriptor."""
    config = bytearray(8 + 232 + 64)  # struct loop_config: fd, block_size, info, reserved
    struct.pack_into("I", config, 8 + LO_FLAGS_AT, LO_FLAGS_AUTOCLEAR)
    with contextlib.ExitStack() as opened:
        control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
        opened.callback(os.close, control)
        backing = os.open(image, os.O_RDWR | os.O_CLOEXEC)
        opened.callback(os.close, backing)
        struct.pack_into("I", config, 0, backing)
        for _ in range(ATTACH_ATTEMPTS):
            device = f"/dev/loop{fcntl.ioctl(control, LOOP_CTL_GET_FREE)}"
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, LOOP_CONFIGURE, bytes(config))
            except OSError as exc:
                os.close(fd)
                if exc.errno == errno.EBUSY:  # another create configured it first
                    continue
                raise RuntimeUnavailable(f"cannot attach {image} to {device}: {exc}") from None
            return device, fd
    raise RuntimeUnavailable(f"no free loop device for {image}")


def _run(step: list[str], path: Path) -> None:
    done = subprocess.run(step, capture_output=True, text=True, env={}, check=False)
    if done.returncode != 0:
        raise RuntimeUnavailable(f"cannot make the workspace {path}: {done.stderr.strip()}")


def _template(directory: Path, size_bytes: int) -> Path:
    """The empty image of ``size_bytes`` (root's, 0600), formatted on first use; concurrent
    first uses each format their own and the last rename wins (all are alike). Its
    ``lost+found`` is removed here once, not in each sandbox's copy (~4 ms a create).
    Each use marks it (its mtime); making one removes the idle ones past KEPT_TEMPLATES,
    so sizes asked for once don't pile up on the host's disk (an empty 2 TiB image holds
    ~29 MB of metadata)."""
    template = directory / f"template-{size_bytes}.img"
    with contextlib.suppress(FileNotFoundError):
        os.utime(template)
        return template
    partial = directory / f".template-{size_bytes}.{secrets.token_hex(4)}"
    with open(partial, "wb") as file:
        file.truncate(size_bytes)  # sparse: disk is used as written
    partial.chmod(0o600)
    inodes = max(MIN_INODES, size_bytes // BYTES_PER_INODE)
    try:
        _run(
            [MKFS, "-q", "-F", "-m", "0", "-N", str(inodes), "-O", "^has_journal",
             "-E", "nodiscard,lazy_itable_init=1,root_owner=0:0", str(partial)],
            directory,
        )  # fmt: skip
        _remove_lost_found(partial)
        os.replace(partial, template)
    finally:
        partial.unlink(missing_ok=True)
    _prune_templates(directory)
    return template


def _prune_templates(directory: Path) -> None:
    """Remove the empty images unused for TEMPLATE_IDLE, but the KEPT_TEMPLATES used last.
    One is copied right after its use is marked, so none being copied is removed."""
    used: list[tuple[float, Path]] = []
    for template in directory.glob("template-*.img"):
        with contextlib.suppress(FileNotFoundError):
            used.append((template.stat().st_mtime, template))
    used.sort(reverse=True)
    idle_since = time.time() - TEMPLATE_IDLE
    for mtime, template in used[KEPT_TEMPLATES:]:
        if mtime < idle_since:
            template.unlink(missing_ok=True)


def _remove_lost_found(image: Path) -> None:
    """Mount ``image`` aside, remove its ``lost+found``, and unmount it (synchronously:
    the image is copied next)."""
    point = image.with_name(image.name + ".mnt")
    point.mkdir(mode=0o700)
    try:
        _mount_image(image, point)
        try:
            os.rmdir(point / "lost+found")
        finally:
            if _libc.umount2(os.fsencode(point), 0) != 0:
                error = ctypes.get_errno()
                raise RuntimeUnavailable(f"cannot unmount {point}: {os.strerror(error)}")
    finally:
        point.rmdir()


def copy_sparse(source: Path, target: Path) -> None:
    """Copy ``source`` to a new file ``target`` (0600): its data extents only (holes stay
    holes), by ``copy_file_range`` (a reflink on filesystems that share extents)."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        os.fchmod(dst.fileno(), 0o600)
        size = os.fstat(src.fileno()).st_size
        os.ftruncate(dst.fileno(), size)
        position = 0
        while position < size:
            try:
                start = os.lseek(src.fileno(), position, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                return
            end = os.lseek(src.fileno(), start, os.SEEK_HOLE)
            while start < end:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), end - start, start, start)
                if copied == 0:
                    raise RuntimeUnavailable(f"cannot copy the workspace image {source}")
                start += copied
            position = end


def mount_scratch(path: Path, size_bytes: int, uid: int) -> None:
    """Make ``path`` a tmpfs of ``size_bytes`` owned by ``uid`` (mode 1777), for the
    sandbox's ``/tmp`` or ``/dev/shm``. Its inodes are bounded too: a file costs kernel
    memory of the sandbox's cgroup beyond its bytes, which no process holds, so a flood
    of empty files (600,000 of them under a 256 Mi limit) left the agent the largest
    process for the OOM killer to pick. bwrap's own ``--tmpfs`` can bound only the size."""
    path.mkdir(mode=0o700)
    _mount_tmpfs(path, size_bytes, uid, 0o1777, SCRATCH_BYTES_PER_INODE)


def _mount_tmpfs(path: Path, size_bytes: int, uid: int, mode: int, bytes_per_inode: int) -> None:
    """Mount a tmpfs of ``size_bytes`` (an inode per ``bytes_per_inode``) owned by ``uid``
    on ``path``."""
    inodes = max(MIN_INODES, size_bytes // bytes_per_inode)
    options = f"size={size_bytes},nr_inodes={inodes},mode={mode:o},uid={uid},gid={uid}"
    done = _libc.mount(
        b"llmsafespace", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options.encode()
    )
    if done != 0:
        error = ctypes.get_errno()
        raise RuntimeUnavailable(f"cannot mount a tmpfs on {path}: {os.strerror(error)}")


def unmount(path: Path) -> None:
    """Detach whatever is mounted on ``path`` (all layers); nothing mounted is fine."""
    target = os.fsencode(path)
    while path in mounted_under(path):
        if _libc.umount2(target, MNT_DETACH) != 0:
            return


def attached_under(root: Path) -> set[Path]:
    """Files at or below ``root`` that loop devices are backed by now (deleted or not)."""
    found = set()
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(FileNotFoundError):  # detached meanwhile
            found.add(Path(backing.read_text().rstrip("\n").removesuffix(" (deleted)")))
    return _under(found, root)


def mounted_under(root: Path) -> set[Path]:
    """Mount points at or below ``root`` in this mount namespace."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return _under({Path(line.split()[4].replace("\\040", " ")) for line in lines}, root)


def _under(paths: set[Path], root: Path) -> set[Path]:
    """Those of the absolute ``paths`` at or below ``root``."""
    top = root.absolute()
    return {path for path in paths if path.is_relative_to(top)}
