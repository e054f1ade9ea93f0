"""Host uids for sandboxes.

A uid is host-wide, so its registry is too: one directory (by default
`/run/llmsafespace/uids`) shared by every runtime dir and every process on the host,
with one file per held uid naming the runtime dir and sandbox that hold it. Allocation
runs under an exclusive lock on that directory; a uid with live processes is never
handed out, and a holder whose sandbox vanished long ago (its runtime dir deleted
without a sweep) is reclaimed.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RuntimeUnavailable
from .processes import live_pids

STALE_AFTER = 60.0  # seconds a holder without a sandbox dir keeps its uid


class UidRegistry:
    def __init__(self, directory: Path, base: int, count: int) -> None:
        self._directory = directory
        self._base = base
        self._count = count

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry: no uid is allocated meanwhile (allocation takes it too)."""
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self._directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def allocate(
        self, runtime_dir: Path, sandbox_id: str, busy: Callable[[int], bool] | None = None
    ) -> int:
        """Claim a free uid for ``sandbox_id`` of ``runtime_dir``; a uid for which
        ``busy`` is true (default: it has live processes) is never handed out."""
        with self.locked():
            for uid in range(self._base, self._base + self._count):
                path = self._directory / str(uid)
                if path.exists() and not self._stale(path):
                    continue
                if busy(uid) if busy else live_pids(uid):
                    continue
                path.write_text(f"{runtime_dir.absolute()}\n{sandbox_id}\n")
                return uid
        raise RuntimeUnavailable(f"all {self._count} sandbox uids from {self._base} are in use")

    def release(self, uid: int) -> None:
        """Free a uid; releasing a free uid is a no-op."""
        (self._directory / str(uid)).unlink(missing_ok=True)

    def held_by(self, runtime_dir: Path) -> dict[int, str]:
        """The uids held for sandboxes of ``runtime_dir``, with their sandbox ids."""
        held = {}
        for uid, (directory, sandbox_id) in self._holders():
            if directory == runtime_dir.absolute():
                held[uid] = sandbox_id
        return held

    def held(self) -> set[int]:
        """Every uid held now, by any runtime dir."""
        return {uid for uid, _ in self._holders()}

    def _holders(self) -> Iterator[tuple[int, tuple[Path, str]]]:
        if not self._directory.is_dir():
            return
        for entry in self._directory.iterdir():
            try:
                directory, sandbox_id = entry.read_text().split()
                yield int(entry.name), (Path(directory), sandbox_id)
            except (OSError, ValueError):
                continue

    @staticmethod
    def _stale(path: Path) -> bool:
        try:
            directory, sandbox_id = path.read_text().split()
            age = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            return True
        state = Path(directory) / "sandboxes" / sandbox_id
        return age > STALE_AFTER and not state.exists()
