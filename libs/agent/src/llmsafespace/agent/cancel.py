"""A cancellation flag a selector can wait on (an eventfd), set from any thread."""

from __future__ import annotations

import _thread
import os


class Cancel:
    """Set once (``cancel`` requests, a client leaving); readable in a selector when set."""

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._lock = _thread.allocate_lock()
        self._set = False

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            # The flag first: the waiter wakes on the write and asks `is_set` at once.
            self._set = True
            if self._fd >= 0:
                os.eventfd_write(self._fd, 1)

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        """Release the eventfd; a later ``set`` only sets the flag."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
