"""The bubblewrap command line for one sandbox (isolation profile in one place)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from llmsafespace.agent.userpath import USER_PYTHONPATH

from .layout import SOCKET_NAME, TOKEN_NAME
from .tools import TOOLS_BIN

BWRAP = "/usr/bin/bwrap"
SANDBOX_UID = 1000
AGENT_ROOT = "/opt/llmsafespace"
RUN_DIR = "/run/llmsafespace"
WORKSPACE = "/workspace"
ETC_FILES = ("passwd", "group", "hosts", "nsswitch.conf", "resolv.conf")
HOST_ETC = (
    "/etc/ld.so.cache", "/etc/ssl", "/etc/ca-certificates",
    "/etc/alternatives",  # Debian's which, awk, ... are links through it
    "/etc/fonts",  # fontconfig (matplotlib's text) complains at every plot without it
)  # fmt: skip
ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
MASKED_PROC = ("kallsyms", "keys", "timer_list")
PATH = f"{TOOLS_BIN}:/usr/local/bin:/usr/bin:/bin"
USER_PACKAGES = f"{WORKSPACE}/.packages"  # pip's target here and for POST /packages
RUNTIME_PACKAGES = "/opt/runtime/site-packages"  # a runtime's preinstalled packages
TEMPLATE_DIR = "/opt/template"  # a template's layer (its builder's /workspace)
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
    workspace_bytes: int = 2**30  # the largest file (RLIMIT_FSIZE under gVisor)
    env: dict[str, str] = field(default_factory=dict)
    seccomp_fd: int | None = None
    oom_file: Path | None = None  # the cgroup's OOM counter, bound read-only for the agent
    info_fd: int | None = None  # bwrap writes its child's pid there (network mode)
    tcp_ports: tuple[int, ...] | None = None  # network mode: Landlock TCP connect ports
    tools_dir: Path | None = None  # the sandbox's own bin (python, pip, ...), bound read-only
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
        args += ["--ro-bind", str(profile.tools_dir), TOOLS_BIN]
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
    """The agent's environment: the sandbox's own variables and nothing of the host's.

    User code gets ``USER_PYTHONPATH`` as its ``PYTHONPATH`` (the agent's own
    path never reaches it); pip and npm install into the workspace, and fail at once
    without network (``LLMSAFESPACE_OFFLINE`` makes the wrappers in ``TOOLS_BIN`` say why).
    """
    python_path = [USER_PACKAGES]
    node_path = [f"{WORKSPACE}/node_modules"]
    path = PATH
    if profile.template_dir is not None:  # after the workspace's own, before the runtime's
        python_path.append(f"{TEMPLATE_DIR}/.packages")
        node_path.append(f"{TEMPLATE_DIR}/node_modules")
        path = f"{PATH}:{TEMPLATE_DIR}/.packages/bin:{TEMPLATE_DIR}/node_modules/.bin"
    if profile.packages_dir is not None:
        python_path.append(RUNTIME_PACKAGES)
    env = {
        "PATH": path,
        "HOME": WORKSPACE,
        "USER": "sandbox",
        "SHELL": "/bin/sh",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PIP_TARGET": USER_PACKAGES,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "NODE_PATH": ":".join(node_path),
        USER_PYTHONPATH: ":".join(python_path),
    }
    if profile.tcp_ports is None:
        env |= {"PIP_NO_INDEX": "1", "NPM_CONFIG_OFFLINE": "true", "LLMSAFESPACE_OFFLINE": "1"}
    env.update(profile.env)
    env["PYTHONPATH"] = AGENT_ROOT  # the agent removes it from what user code sees
    return env


def _environment(profile: Profile) -> list[str]:
    args = ["--clearenv"]
    for key, value in environment(profile).items():
        args += ["--setenv", key, value]
    return args


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
        "--size", str(profile.tmp_bytes), "--tmpfs", "/tmp",
        "--size", str(profile.tmp_bytes), "--tmpfs", "/dev/shm",
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
    done in the worker instead, it would copy pages the two processes share."""
    return [
        profile.interpreter, "-s", "-P", "-m", "llmsafespace.agent",
        "--socket", f"{RUN_DIR}/{SOCKET_NAME}",
        "--token-file", f"{RUN_DIR}/{TOKEN_NAME}",
        "--workspace", WORKSPACE, "--language", profile.language,
    ]  # fmt: skip
