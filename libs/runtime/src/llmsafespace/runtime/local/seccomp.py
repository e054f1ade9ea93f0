"""The seccomp deny list every sandbox gets, compiled once to BPF with libseccomp.

Default allow; the calls below fail with EPERM (``clone3`` with ENOSYS so glibc falls
back to ``clone``, whose namespace flags are checked). Only the native x86_64 ABI is
allowed: a filter built for one architecture kills a process that enters the kernel
through another (the i386 ``int 0x80`` ABI, x32).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pyseccomp as sc

DENIED = (
    # namespaces, mounts, root changes
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # other processes' memory and kernel objects
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "perf_event_open", "bpf", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "add_key", "keyctl", "request_key",
    # the host itself
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd",
    "iopl", "ioperm", "vhangup", "uselib", "ustat", "sysfs", "lookup_dcookie",
    "mbind", "set_mempolicy", "migrate_pages", "move_pages", "set_mempolicy_home_node",
    "name_to_handle_at", "open_by_handle_at", "fanotify_init",
    "clock_settime", "clock_adjtime", "settimeofday", "adjtimex",
)  # fmt: skip

CLONE_NEW_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
DENIED_IOCTLS = (0x5412, 0x541C)  # TIOCSTI, TIOCLINUX
DENIED_PERSONALITY = (0x0400000, 0x0040000)  # READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE
ALLOWED_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
FAMILY_LIMIT = 64  # above AF_MAX: the kernel rejects those itself
INT_MASK = 0xFFFFFFFF  # int arguments: the kernel ignores the upper 32 bits


def _syscall_known(name: str) -> bool:
    try:
        return int(sc.resolve_syscall(sc.Arch.NATIVE, name)) >= 0
    except (OSError, ValueError):
        return False


def build() -> sc.SyscallFilter:
    """The filter; unknown names (older libseccomp) are skipped."""
    deny = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(sc.ALLOW)
    flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    for name in DENIED:
        if _syscall_known(name):
            flt.add_rule(deny, name)
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NEW_FLAGS:
        flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for request in DENIED_IOCTLS:
        flt.add_rule(deny, "ioctl", sc.Arg(1, sc.MASKED_EQ, INT_MASK, request))
    for flag in DENIED_PERSONALITY:
        flt.add_rule(deny, "personality", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    no_family = sc.ERRNO(errno.EAFNOSUPPORT)
    for family in range(FAMILY_LIMIT):
        if family in ALLOWED_FAMILIES:
            continue
        for call in ("socket", "socketpair"):
            flt.add_rule(no_family, call, sc.Arg(0, sc.MASKED_EQ, INT_MASK, family))
    return flt


def export(path: Path) -> Path:
    """Compile the filter and write its BPF to ``path`` atomically (mode 0644)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            build().export_bpf(file)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
