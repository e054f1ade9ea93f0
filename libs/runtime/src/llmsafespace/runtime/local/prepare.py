"""One-time preparation of a runtime dir: permission checks, agent copy, synthetic /etc."""

from __future__ import annotations

import os
import py_compile
import stat
import tempfile
from pathlib import Path

import llmsafespace.agent

from ..errors import RuntimeUnavailable
from .bwrap import BWRAP, SANDBOX_UID
from .layout import Layout
from .processes import SETPRIV
from .protections import user_namespaces

ETC = {
    "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
    f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:/workspace:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\nnogroup:x:65534:\n",
    "hosts": "127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost ip6-loopback\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "resolv.conf": "nameserver 10.0.2.3\n",  # slirp4netns's DNS forwarder (network mode)
}


def check_host(runtime_dir: Path) -> None:
    """Fail clearly when sandboxes cannot be started from here."""
    if os.geteuid() != 0:
        raise RuntimeUnavailable("the local driver must run as root to give sandboxes own uids")
    if not user_namespaces():
        raise RuntimeUnavailable("unprivileged user namespaces are disabled; bwrap needs them")
    for binary in (BWRAP, SETPRIV):
        if not os.access(binary, os.X_OK):
            raise RuntimeUnavailable(f"{binary} is missing (Debian: bubblewrap, util-linux)")
    if not os.access(BWRAP, os.X_OK):
        raise RuntimeUnavailable(f"bubblewrap is not installed at {BWRAP}")
    for path in (runtime_dir, *runtime_dir.parents):
        if path.exists() and not path.stat().st_mode & stat.S_IXOTH:
            raise RuntimeUnavailable(
                f"{path} is not traversable by other users (needs o+x); sandbox uids must reach "
                f"{runtime_dir}"
            )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically so concurrent drivers never see a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _copy_agent(target: Path) -> None:
    """Copy the agent package where every sandbox uid can read it (the repo may not be)."""
    source = Path(llmsafespace.agent.__file__).parent
    package = target / "llmsafespace" / "agent"
    package.mkdir(mode=0o755, parents=True, exist_ok=True)
    for directory in (target, target / "llmsafespace", package):
        directory.chmod(0o755)
    for module in (*source.glob("*.py"), *source.glob("*.js")):  # *.js: the JS worker
        _write(package / module.name, module.read_bytes(), 0o644)
    _compile(package)


def _compile(package: Path) -> None:
    """Byte-compile the copy: sandboxes cannot write ``__pycache__`` (it is bound
    read-only), so without this every agent start compiles every module again. Checked
    against the source's hash, not its mtime: concurrent prepares rewrite the sources.
    (Used by interpreters of the driver's minor version; others compile as before.)"""
    cache = package / "__pycache__"
    cache.mkdir(mode=0o755, exist_ok=True)
    cache.chmod(0o755)
    for module in package.glob("*.py"):
        py_compile.compile(
            str(module),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )


def prepare(layout: Layout) -> None:
    """Create the runtime dir's shared parts; safe to repeat and to run concurrently."""
    check_host(layout.root)
    if not layout.root.exists():
        layout.root.mkdir(parents=True)
        layout.root.chmod(0o755)
    for directory in (layout.sandboxes, layout.root / "workspaces"):
        directory.mkdir(mode=0o711, exist_ok=True)
    layout.image_templates.mkdir(mode=0o700, exist_ok=True)
    _copy_agent(layout.agent)
    layout.etc.mkdir(mode=0o755, exist_ok=True)
    for name, content in ETC.items():
        _write(layout.etc / name, content.encode(), 0o644)
