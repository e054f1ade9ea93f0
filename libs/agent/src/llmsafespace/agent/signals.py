"""A seccomp filter that keeps code in the sandbox from signalling the agent.

User code runs as the agent's own uid, so the kernel would let it ``kill -STOP`` the
agent (and, before the socket moved out of its reach, take over its socket). The agent
installs this filter on itself before it serves; every process it starts inherits it:

- ``kill`` to the agent's pid, to its process group, or to ``-1`` (everyone);
- ``tgkill``, ``rt_sigqueueinfo``, ``rt_tgsigqueueinfo`` to the agent's pid;
- ``tkill`` and ``pidfd_send_signal`` (any of the agent's threads, or a pidfd from
  ``/proc/<pid>``: neither can be checked by pid; glibc and Python use neither);
- ``fcntl(F_SETOWN)`` to the agent, ``F_SETOWN_EX`` and ``F_SETSIG``, and the ioctls
  ``FIOSETOWN``/``SIOCSPGRP`` (SIGIO/SIGURG aimed at another process)

all fail with EPERM. Pids are compared on their low 32 bits, as the kernel reads them.
The agent itself never signals itself. The filter is hand-built classic BPF (the agent
is stdlib only); it works under bubblewrap and inside gVisor, which implements seccomp
for the processes it runs.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable

from .libc import libc

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000

F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902

# (audit arch, syscall numbers) per machine
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {
            "kill": 62,
            "tkill": 200,
            "tgkill": 234,
            "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297,
            "pidfd_send_signal": 424,
            "fcntl": 72,
            "ioctl": 16,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "kill": 129,
            "tkill": 130,
            "tgkill": 131,
            "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240,
            "pidfd_send_signal": 424,
            "fcntl": 25,
            "ioctl": 29,
        },
    ),
}

_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_NR, _ARCH = 0, 4


def _arg(index: int) -> int:
    """Offset of the low 32 bits of syscall argument ``index`` in ``seccomp_data``."""
    return 16 + 8 * index


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


class _Program:
    """Classic BPF with labels: each syscall's check is a block that ends in allow/deny."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, int, int]] = []

    def load(self, offset: int) -> None:
        self.code.append((_LD_W_ABS, 0, 0, offset))

    def ret(self, value: int) -> None:
        self.code.append((_RET_K, 0, 0, value))

    def deny_if_any(self, values: list[int]) -> None:
        """With the loaded word: EPERM if it is one of ``values``, else allow."""
        for index, value in enumerate(values):
            remaining = len(values) - index - 1
            # true: skip the remaining tests and the allow, to the deny
            self.code.append((_JEQ_K, remaining + 1, 0, _u32(value)))
        self.ret(SECCOMP_RET_ALLOW)
        self.ret(SECCOMP_RET_ERRNO | errno.EPERM)

    def bytes(self) -> bytes:
        return b"".join(struct.pack("HBBI", *insn) for insn in self.code)


Block = Callable[["_Program"], None]


def _deny(program: _Program) -> None:
    program.ret(SECCOMP_RET_ERRNO | errno.EPERM)


def _deny_arg(index: int, values: list[int]) -> Block:
    def block(program: _Program) -> None:
        program.load(_arg(index))
        program.deny_if_any(values)

    return block


def _fcntl(pid: int, pgid: int) -> Block:
    """EPERM for F_SETSIG, F_SETOWN_EX, and F_SETOWN aimed at the agent."""

    def block(program: _Program) -> None:
        program.load(_arg(1))
        program.code.append((_JEQ_K, 3, 0, F_SETSIG))  # to the deny below
        program.code.append((_JEQ_K, 2, 0, F_SETOWN_EX))
        program.code.append((_JEQ_K, 2, 0, F_SETOWN))  # to the owner check
        program.ret(SECCOMP_RET_ALLOW)
        _deny(program)
        program.load(_arg(2))
        program.deny_if_any([pid, -pgid])

    return block


def _program(numbers: dict[str, int], arch: int, pid: int, pgid: int) -> bytes:
    """A dispatch on the syscall number, then one check block per guarded syscall."""
    blocks: list[tuple[str, Block]] = [
        ("kill", _deny_arg(0, [pid, -pgid, -1])),
        ("tgkill", _deny_arg(0, [pid])),
        ("rt_sigqueueinfo", _deny_arg(0, [pid])),
        ("rt_tgsigqueueinfo", _deny_arg(0, [pid])),
        ("tkill", _deny),
        ("pidfd_send_signal", _deny),
        ("fcntl", _fcntl(pid, pgid)),
        ("ioctl", _deny_arg(1, [FIOSETOWN, SIOCSPGRP])),
    ]
    bodies: list[list[tuple[int, int, int, int]]] = []
    for _, build in blocks:
        block = _Program()
        build(block)
        bodies.append(block.code)
    program = _Program()
    program.load(_ARCH)
    program.code.append((_JEQ_K, 1, 0, arch))
    program.ret(SECCOMP_RET_ALLOW)  # another ABI: the driver's own filter decides
    program.load(_NR)
    offset = len(blocks)  # from the first dispatch jump to the first block, less one
    for index, (name, _) in enumerate(blocks):
        # Jump offsets count from the next instruction; the allow sits between.
        program.code.append((_JEQ_K, offset - index, 0, numbers[name]))
        offset += len(bodies[index])
    program.ret(SECCOMP_RET_ALLOW)
    for body in bodies:
        program.code.extend(body)
    return program.bytes()


def protect() -> bool:
    """Install the filter for this process (the agent) and everything it will start.
    False where the kernel or machine offers no seccomp (then signals are not guarded)."""
    machine = _ARCHES.get(os.uname().machine)
    if machine is None:
        return False
    arch, numbers = machine
    pid = os.getpid()
    code = _program(numbers, arch, pid, os.getpgid(pid))
    buffer = ctypes.create_string_buffer(code)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(code) // 8, ctypes.addressof(buffer))
    prctl = libc().prctl
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    done = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)
    return bool(done == 0)
