"""The bubblewrap command line for one sandbox (isolation profile in one place)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..userland.environment import (
    AGENT_MAIN,
    RUNTIME_PACKAGES,
    TEMPLATE_DIR,
    WORKSPACE,
    sandbox_environment,
)
from ..userland.tools import BIN, HOOKS, HOOKS_DIR, TOOLS_BIN
from .layout import SOCKET_NAME, TOKEN_NAME

BWRAP = "/usr/bin/bwrap"
SANDBOX_UID = 1000
AGENT_ROOT = "/opt/llmsafespace"
RUN_DIR = "/run/llmsafespace"
ETC_FILES = ("passwd", "group", "hosts", "nsswitch.conf", "resolv.conf")
HOST_ETC = (
    "/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates",
    "/etc/alternatives",  # Debian's which, awk, ... are links through it
    "/etc/fonts",  # fontconfig (matplotlib's text) complains at every plot without it
)  # fmt: skip
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
MASKED_PROC = ("kallsyms", "keys", "timer_list")
OOM_DIR = "/sys/fs/cgroup"


@dataclass(frozen=True)
class Profile:
    """Everything the command line depends on."""

    interpreter: str
    workspace: Path
    run_dir: Path
    agent_dir: Path
    etc_dir: Path
    tmp_bytes: int  # each of /tmp and /dev/shm (memory-backed)
    scratch: tuple[Path, Path] | None = None  # the tmpfs mounts bound at /tmp, /dev/shm
    workspace_bytes: int = 2**30  # the largest file (RLIMIT_FSIZE under gVisor)
    env: dict[str, str] = field(default_factory=dict)
    seccomp_fd: int | None = None
    oom_file: Path | None = None  # the cgroup's OOM counter, bound read-only for the agent
    info_fd: int | None = None  # bwrap writes its child's pid there (network mode)
    tcp_ports: tuple[int, ...] | None = None  # network mode: Landlock TCP connect ports
    tools_dir: Path | None = None  # its bin (python, pip, ...) and hooks, bound read-only
    packages_dir: Path | None = None  # the runtime's shared package prefix, bound read-only
    template_dir: Path | None = None  # a template's layer, bound read-only at TEMPLATE_DIR
    language: str = "python"  # of run_code: the agent's --language


def _root_entries() -> list[str]:
    """Mirror the host's ``/bin``, ``/lib*`` as symlinks or read-only binds."""
    args: list[str] = []
    for name in ROOT_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _etc(profile: Profile) -> list[str]:
    args = ["--dir", "/etc"]
    for name in ETC_FILES:
        args += ["--ro-bind", str(profile.etc_dir / name), f"/etc/{name}"]
    for path in HOST_ETC:
        args += ["--ro-bind-try", path, path]
    return args


def _masks() -> list[str]:
    args: list[str] = []
    for name in MASKED_PROC:
        if Path("/proc", name).exists():
            args += ["--ro-bind", "/dev/null", f"/proc/{name}"]
    return args


def _extras(profile: Profile) -> list[str]:
    args: list[str] = []
    if profile.tools_dir is not None:
        args += ["--ro-bind", str(profile.tools_dir / BIN), TOOLS_BIN]
        args += ["--ro-bind", str(profile.tools_dir / HOOKS), HOOKS_DIR]
    if profile.packages_dir is not None:
        args += ["--ro-bind", str(profile.packages_dir), RUNTIME_PACKAGES]
    if profile.template_dir is not None:
        args += ["--ro-bind", str(profile.template_dir), TEMPLATE_DIR]
    if profile.oom_file is not None:
        args += ["--ro-bind", str(profile.oom_file), f"{OOM_DIR}/{profile.oom_file.name}"]
    if profile.seccomp_fd is not None:
        args += ["--seccomp", str(profile.seccomp_fd)]
    if profile.info_fd is not None:
        args += ["--info-fd", str(profile.info_fd)]
    return args


def _agent_options(profile: Profile) -> list[str]:
    if profile.tcp_ports is None:
        return []
    return ["--tcp-ports", ",".join(str(port) for port in profile.tcp_ports)]


def environment(profile: Profile) -> dict[str, str]:
    """The agent's environment: the sandbox's own variables (``sandbox_environment``, as
    on every driver, then the create's) and nothing of the host's."""
    env = sandbox_environment(
        networked=profile.tcp_ports is not None,
        template=profile.template_dir is not None,
        runtime_packages=profile.packages_dir is not None,
    )
    env.update(profile.env)
    env["PYTHONPATH"] = AGENT_ROOT  # the agent removes it from what user code sees
    return env


def _environment(profile: Profile) -> list[str]:
    args = ["--clearenv"]
    for key, value in environment(profile).items():
        args += ["--setenv", key, value]
    return args


def _scratch(profile: Profile) -> list[str]:
    """``/tmp`` and ``/dev/shm``: the driver's tmpfs mounts (bounded in bytes and inodes,
    ``mounts.mount_scratch``)."""
    if profile.scratch is None:
        raise ValueError("a bwrap sandbox's /tmp and /dev/shm are the driver's mounts")
    tmp, shm = profile.scratch
    return ["--bind", str(tmp), "/tmp", "--bind", str(shm), "/dev/shm"]


def command(profile: Profile) -> list[str]:
    """The argv that starts the agent inside a fresh sandbox."""
    return [
        BWRAP,
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup", "--unshare-net", "--disable-userns", "--new-session",
        "--cap-drop", "ALL",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
        *_root_entries(),
        *_etc(profile),
        "--proc", "/proc",
        "--dev", "/dev",
        *_masks(),
        *_scratch(profile),
        "--bind", str(profile.workspace), WORKSPACE,
        "--ro-bind", str(profile.agent_dir), AGENT_ROOT,
        "--bind", str(profile.run_dir), RUN_DIR,
        *_extras(profile),
        "--remount-ro", "/dev",
        "--remount-ro", "/",
        *_environment(profile),
        "--chdir", WORKSPACE,
        "--",
        *agent_command(profile), "--landlock", *_agent_options(profile),
    ]  # fmt: skip


def args_file(args: list[str]) -> int:
    """A memory file holding ``args`` NUL-terminated, for ``bwrap --args FD``."""
    fd = os.memfd_create("bwrap-args", 0)  # not CLOEXEC: bwrap inherits it
    os.write(fd, b"".join(os.fsencode(arg) + b"\0" for arg in args))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def agent_command(profile: Profile) -> list[str]:
    """The agent serving on ``RUN_DIR/agent.sock`` (the same under bwrap and gVisor).

    ``-P``: the working dir, the user's workspace, is not on the agent's path, so a
    ``selectors.py`` left there is not what the agent imports when it starts again
    (resume, restore); its worker puts it back for user code. Site runs (``-s`` only):
    done in the worker instead, it would copy pages the two processes share. ``-c``, not
    ``-m``: ``-m`` loads runpy and importlib.util only to find the module, ~0.1 MB of
    every sandbox's memory."""
    return [
        profile.interpreter, "-s", "-P", "-c", AGENT_MAIN,
        "--socket", f"{RUN_DIR}/{SOCKET_NAME}",
        "--token-file", f"{RUN_DIR}/{TOKEN_NAME}",
        "--workspace", WORKSPACE, "--language", profile.language,
    ]  # fmt: skip
