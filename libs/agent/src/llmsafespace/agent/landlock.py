"""Landlock (x86_64 syscalls 444-446) applied to the agent before it serves.

Everything the agent starts inherits the restriction: writes only under the workspace,
``/tmp``, ``/dev/shm`` and the agent's run dir; ``/usr`` and the agent readable and
executable; ``/etc``, ``/proc`` and the cgroup OOM counter read-only; nothing else.
On ABI 6+ signals and abstract Unix sockets are scoped to the sandbox's own domain.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable

from .libc import libc

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
NET_CONNECT_TCP = 1 << 1
NET_ABI = 4

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1, 2

FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
WRITE = (
    READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK
    | MAKE_FIFO | MAKE_SYM | REFER | TRUNCATE
)  # fmt: skip
DEVICE_RW = READ_FILE | WRITE_FILE | IOCTL_DEV | TRUNCATE

_ABI_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}


def _handled(abi: int) -> int:
    return _ABI_RIGHTS[max(v for v in _ABI_RIGHTS if v <= abi)]


def abi_version() -> int:
    """The kernel's Landlock ABI; 0 when it has none."""
    return max(0, int(libc().syscall(CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)))


def restrict(rules: Iterable[tuple[str, int]], tcp_ports: Iterable[int] | None = None) -> int:
    """Restrict this process to ``rules`` (path, rights); the ABI used, 0 when unavailable.

    Missing paths are skipped; rights the kernel does not know are dropped. With
    ``tcp_ports``, TCP connect is allowed to those ports only (ABI 4+; an older kernel
    raises, since the caller relies on it).
    """
    abi = abi_version()
    if abi == 0:
        if tcp_ports is not None:
            raise OSError("landlock is unavailable; TCP port rules cannot be enforced")
        return 0
    if tcp_ports is not None and abi < NET_ABI:
        raise OSError(f"landlock ABI {abi} < {NET_ABI}: TCP port rules cannot be enforced")
    c_library = libc()
    handled = _handled(abi)
    net = NET_CONNECT_TCP if tcp_ports is not None else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("QQQ", handled, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = c_library.syscall(CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = rights & handled
                if not os.path.isdir(path):
                    allowed &= FILE_RIGHTS
                rule = struct.pack("=Qi", allowed, fd)
                if c_library.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, rule, 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        for port in tcp_ports or ():
            rule = struct.pack("=QQ", NET_CONNECT_TCP, port)
            if c_library.syscall(ADD_RULE, ruleset, RULE_NET_PORT, rule, 0) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for port {port}")
        if c_library.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if c_library.syscall(RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def sandbox_rules(workspace: str, agent_root: str, run_dir: str) -> list[tuple[str, int]]:
    """The rules of a sandbox's agent."""
    return [
        # What is written in the workspace and /tmp may be run (a compiled program, an
        # npm or pip package's bin), as in any sandbox users know: code in the sandbox runs
        # machine code of its own anyway (ctypes, an executable page), so refusing execve
        # of written files guards nothing the namespaces, seccomp and cgroups do not.
        (workspace, WRITE | EXECUTE),
        ("/tmp", WRITE | EXECUTE),
        ("/dev/shm", WRITE),
        (run_dir, WRITE),
        ("/dev/null", DEVICE_RW),
        ("/dev/zero", DEVICE_RW),
        ("/dev/full", DEVICE_RW),
        ("/dev/pts", DEVICE_RW | READ_DIR),
        ("/dev/ptmx", DEVICE_RW),
        ("/dev/urandom", READ_FILE),
        ("/dev/random", READ_FILE),
        ("/dev", READ_DIR),
        ("/usr", READ_EXEC),
        (agent_root, READ_EXEC),
        ("/opt/runtime", READ_EXEC),  # the runtime's bin and packages, when bound
        ("/opt/template", READ_EXEC),  # a template's layer, when bound
        ("/etc", READ),
        ("/proc", READ),
        ("/sys/fs/cgroup", READ),
    ]
