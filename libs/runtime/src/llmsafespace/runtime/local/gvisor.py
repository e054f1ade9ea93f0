"""``securityLevel: high``: the same agent, under gVisor (``runsc``, ptrace platform).

runsc runs rootless as the sandbox's own host uid, inside the sandbox's cgroups, started
exactly like bwrap at the standard level: runsc, the sentry (gVisor's user-space kernel),
its gofer and the ptrace stubs are all processes of that uid, so the driver finds, adopts
and kills them the same way, and the cgroups limit them all. Every syscall of the agent
and of user code is served by the sentry, never by the host kernel.

Inside, the agent is uid 0 *of gVisor's kernel* with no capabilities and
``noNewPrivileges``: rootless runsc maps only the one host uid, and only the uid it maps
to can own files the gofer creates. Host files it did not create show as ``nobody``.
No network (``--network=none``: gVisor's own loopback only). The agent's socket is made
on the host through ``--host-uds=create`` in the run dir bound at ``/run/llmsafespace``.
runsc keeps its state under the sandbox's state dir, which teardown deletes.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ..userland.environment import RUNTIME_PACKAGES, TEMPLATE_DIR, WORKSPACE
from ..userland.tools import BIN, HOOKS, HOOKS_DIR, TOOLS_BIN
from .bwrap import (
    AGENT_ROOT,
    HOST_ETC,
    ROOT_LINKS,
    RUN_DIR,
    Profile,
    agent_command,
    environment,
)
from .layout import Layout

RUNSC = "/usr/bin/runsc"
INSTALL_HINT = "install runsc (Debian: apt-get install runsc)"
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
NAMESPACES = ("pid", "network", "ipc", "uts", "mount")
MOUNT_POINTS = (
    "usr", "etc", "proc", "dev", "tmp", "workspace", AGENT_ROOT, RUN_DIR, TOOLS_BIN,
    HOOKS_DIR, RUNTIME_PACKAGES, TEMPLATE_DIR,
)  # fmt: skip
RUNSC_FLAGS = (
    "--rootless",  # as the sandbox uid, which the gofer maps to root of its user namespace
    "--network=none",
    "--host-uds=create",  # the agent's listening socket appears in the host's run dir
    "--ignore-cgroups",  # the driver's cgroups, joined before the uid switch, hold it all
    "--platform=ptrace",  # no KVM needed
)


def installed() -> bool:
    """True if runsc is here to run ``high`` sandboxes."""
    return os.access(RUNSC, os.X_OK)


def prepare_rootfs(layout: Layout) -> None:
    """The shared read-only root: mount points, ``/bin``-style links, the synthetic
    ``/etc``. Safe to repeat and to run concurrently."""
    rootfs = layout.gvisor_rootfs
    rootfs.mkdir(mode=0o755, exist_ok=True)
    for name in MOUNT_POINTS:
        (rootfs / name.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            with contextlib.suppress(FileExistsError):
                (rootfs / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            (rootfs / name).mkdir(mode=0o755, exist_ok=True)
    etc = rootfs / "etc"
    for source in layout.etc.iterdir():
        _write(etc / source.name, source.read_bytes())
    for path in map(Path, HOST_ETC):  # mount points for the host's read-only binds
        target = rootfs / path.relative_to("/")
        if path.is_dir():
            target.mkdir(mode=0o755, exist_ok=True)
        elif path.exists():
            target.touch(mode=0o644, exist_ok=True)


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    temporary.replace(path)


def _bind(source: Path | str, destination: str, writable: bool = False) -> dict[str, object]:
    options = ["rbind", "rw" if writable else "ro", "nosuid", "nodev"]
    return {"destination": destination, "type": "bind", "source": str(source), "options": options}


def _tmpfs(destination: str, size_bytes: int) -> dict[str, object]:
    options = ["nosuid", "nodev", "mode=1777", f"size={size_bytes}"]
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}


def _mounts(profile: Profile) -> list[dict[str, object]]:
    mounts: list[dict[str, object]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
        _tmpfs("/tmp", profile.tmp_bytes),
        _tmpfs("/dev/shm", profile.tmp_bytes),
        _bind("/usr", "/usr"),
    ]
    for name in ROOT_LINKS:
        host = Path("/") / name
        if host.is_dir() and not host.is_symlink():
            mounts.append(_bind(host, str(host)))
    mounts += [_bind(path, path) for path in HOST_ETC if Path(path).exists()]
    return [
        *mounts,
        _bind(profile.workspace, WORKSPACE, writable=True),
        _bind(profile.agent_dir, AGENT_ROOT),
        _bind(profile.run_dir, RUN_DIR, writable=True),
        *([_bind(profile.tools_dir / BIN, TOOLS_BIN)] if profile.tools_dir else []),
        *([_bind(profile.tools_dir / HOOKS, HOOKS_DIR)] if profile.tools_dir else []),
        *([_bind(profile.packages_dir, RUNTIME_PACKAGES)] if profile.packages_dir else []),
        *([_bind(profile.template_dir, TEMPLATE_DIR)] if profile.template_dir else []),
    ]


def spec(profile: Profile, rootfs: Path, nofile: int) -> dict[str, object]:
    """The OCI runtime spec (``config.json``) of one gVisor sandbox."""
    limits = {"RLIMIT_NOFILE": nofile, "RLIMIT_CORE": 0, "RLIMIT_FSIZE": profile.workspace_bytes}
    return {
        "ociVersion": "1.0.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": agent_command(profile),
            "env": [f"{key}={value}" for key, value in environment(profile).items()],
            "cwd": WORKSPACE,
            "capabilities": {name: [] for name in CAPABILITY_SETS},
            "noNewPrivileges": True,
            "rlimits": [
                {"type": name, "soft": value, "hard": value} for name, value in limits.items()
            ],
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": "sandbox",
        "mounts": _mounts(profile),
        "linux": {"namespaces": [{"type": kind} for kind in NAMESPACES]},
    }


def write_bundle(bundle: Path, config: dict[str, object], uid: int) -> None:
    """The bundle dir with ``config.json``, readable only by the sandbox uid (and root)."""
    bundle.mkdir(mode=0o700)
    os.chown(bundle, uid, uid)
    path = bundle / "config.json"
    path.write_text(json.dumps(config))
    os.chown(path, uid, uid)
    path.chmod(0o600)


def command(runsc_root: Path, bundle: Path, container_id: str) -> list[str]:
    """runsc in the foreground: it lives as long as the sandbox (the driver's liveness pid)."""
    return [
        RUNSC, "--root", str(runsc_root), *RUNSC_FLAGS,
        "run", "--bundle", str(bundle), container_id,
    ]  # fmt: skip
