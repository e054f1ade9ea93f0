"""What this host lets the local driver enforce, probed once at start."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

LANDLOCK_CREATE_RULESET = 444  # x86_64
LANDLOCK_CREATE_RULESET_VERSION = 1


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(0, int(version))


def user_namespaces() -> bool:
    """True if unprivileged users may create user namespaces (bwrap needs them)."""
    switch = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if switch.exists() and switch.read_text().strip() == "0":
        return False
    limit = Path("/proc/sys/user/max_user_namespaces")
    return not limit.exists() or int(limit.read_text()) > 0


def is_root() -> bool:
    return os.geteuid() == 0
