"""Paths inside the sandbox: resolved here, opened one component at a time without
following symlinks, so neither a symlink nor a race can lead outside the roots:
/workspace, /tmp and /opt/template (a template's layer: read-only where the driver binds
it, written once by the Kubernetes driver into a new Pod's own copy)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from .protocol import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

ROOTS = ("/workspace", "/tmp", "/opt/template")
MAX_PATH = 4096
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_CODES = {
    errno.ENOENT: "not_found",
    errno.ENOSPC: "insufficient_storage",
    errno.EFBIG: "insufficient_storage",
    errno.EDQUOT: "insufficient_storage",
    errno.ELOOP: "invalid_path",
    errno.ENOTDIR: "invalid_path",
    errno.EISDIR: "invalid_request",
    errno.ENOTEMPTY: "conflict",
    errno.EEXIST: "conflict",
    errno.EACCES: "forbidden",
    errno.EPERM: "forbidden",
    errno.EROFS: "forbidden",
}


class FileError(Exception):
    """A file request that failed; ``code`` is one of the service error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def failure(exc: OSError, path: str) -> FileError:
    """An OSError as the error the client sees."""
    code = _CODES.get(exc.errno or 0, "internal_error")
    reason = "a symlink or not a directory" if code == "invalid_path" else exc.strerror
    return FileError(code, f"{path}: {reason}")


class Resolved:
    """A checked path: its root and the components below it (symlinks already resolved)."""

    def __init__(self, root: str, parts: tuple[str, ...]) -> None:
        self.root = root
        self.parts = parts

    @property
    def path(self) -> str:
        return "/".join((self.root, *self.parts))

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else os.path.basename(self.root)

    def open_dir(self, parts: tuple[str, ...] | None = None, *, create: bool = False) -> int:
        """A directory fd, walking from the root with O_NOFOLLOW (mkdir'ing with ``create``)."""
        fd = os.open(self.root, DIR_FLAGS)
        try:
            for part in self.parts if parts is None else parts:
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_parent(self, *, create: bool = False) -> int:
        """The fd of the directory holding the last component."""
        if not self.parts:
            raise FileError("invalid_path", f"{self.root} itself cannot be used here")
        return self.open_dir(self.parts[:-1], create=create)


def resolve(path: object, *, follow: bool = True) -> Resolved:
    """Check a client's path and resolve its symlinks; the result must stay inside a root.
    Without ``follow`` the last component is kept as it is (a symlink there is the link
    itself, wherever it leads, as ``rm`` sees it): only the directories above it are
    resolved, and they must be inside a root."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise FileError("invalid_path", "a path must be absolute, without NUL bytes")
    if len(path.encode()) > MAX_PATH:
        raise FileError("invalid_path", "the path is too long")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise FileError("invalid_path", "a path must not contain '..'")
    last: tuple[str, ...] = ()
    if not follow and "/" + "/".join(parts) not in ROOTS:
        last, parts = tuple(parts[-1:]), parts[:-1]
    try:
        real = os.path.realpath("/" + "/".join(parts))
    except OSError:  # a link it may not read (/proc/1/root): not shown to be inside
        real = ""
    for root in ROOTS:
        if real == root or real.startswith(root + "/"):
            below = real[len(root) :].split("/")
            return Resolved(root, (*(part for part in below if part), *last))
    raise FileError("invalid_path", f"{path} is not inside {', '.join(ROOTS)}")


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime  # on first use: the idle agent stays small

    return datetime.fromtimestamp(seconds, UTC).isoformat()


def info(path: str, name: str, st: os.stat_result, link: str | None = None) -> dict[str, Any]:
    """A listing entry (camelCase, as the contracts' FileInfo); ``st`` from an lstat, and
    for a symlink ``link``, what it points to (as ``readlink`` gives it)."""
    entry: dict[str, Any] = {
        "path": path,
        "name": name,
        "size": st.st_size,
        "isDirectory": stat.S_ISDIR(st.st_mode),
        "modifiedAt": _iso(st.st_mtime),
        "createdAt": _iso(st.st_ctime),
        "mode": f"{st.st_mode & 0o7777:04o}",
        "isSymlink": stat.S_ISLNK(st.st_mode),
    }
    if link is not None:
        entry["symlinkTarget"] = link
    return entry


def etag(st: os.stat_result) -> str:
    return f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
