"""Host uids for sandboxes, allocated across processes with O_EXCL lock files named by uid."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RuntimeUnavailable


def allocate(directory: Path, base: int, count: int, owner: str) -> int:
    """Claim a free uid in ``[base, base + count)`` for ``owner``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for uid in range(base, base + count):
        try:
            fd = os.open(directory / str(uid), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as file:
            file.write(owner)
        return uid
    raise RuntimeUnavailable(f"all {count} sandbox uids from {base} are in use")


def release(directory: Path, uid: int) -> None:
    """Free a uid; releasing a free uid is a no-op."""
    (directory / str(uid)).unlink(missing_ok=True)


def holders(directory: Path) -> dict[int, str]:
    """Every allocated uid and its owner."""
    if not directory.is_dir():
        return {}
    result = {}
    for entry in directory.iterdir():
        try:
            result[int(entry.name)] = entry.read_text()
        except (OSError, ValueError):
            continue
    return result
