"""The sandbox's own ``bin``, first on its ``PATH`` (``python``, ``pip``, ``npm`` as
expected), and its Python startup hook: the contents of ``/opt/runtime/bin`` and
``/opt/runtime/hooks``, on every driver.

``python`` and ``python3`` are the runtime's interpreter; ``pip``/``pip3`` run its pip
(installs go to ``$PIP_TARGET``, ``/workspace/.packages``, set by the sandbox's
environment); ``npm`` is the runtime's own, where it has one. Without network the
sandbox's environment makes pip and npm fail at once (no index, offline); the hook
(``sitecustomize``, for any ``python -m pip``) and the ``npm`` wrapper then say how to get
packages in.

The local driver writes one such tree per interpreter under its runtime dir and binds
its two parts read-only; a runtime image writes it in place at build time::

    PYTHONPATH=/tmp python3 -m userland.tools /opt/runtime
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

from .sitecustomize import OFFLINE, OFFLINE_HINT

RUNTIME_ROOT = "/opt/runtime"
BIN = "bin"
HOOKS = "hooks"
TOOLS_BIN = f"{RUNTIME_ROOT}/{BIN}"
HOOKS_DIR = f"{RUNTIME_ROOT}/{HOOKS}"  # holds sitecustomize.py; on user code's PYTHONPATH
NPM = ("/usr/bin/npm", "/usr/local/bin/npm")  # Debian's, or the node image's
NPM_DOWNLOADS = ("install", "i", "add", "ci", "update", "exec")
HOOK = Path(__file__).with_name("sitecustomize.py")


def _npm(npm: str) -> str:
    """A shell script running ``npm`` with the arguments; offline, a failed download (any
    argument a downloading subcommand: ``npm -q install`` too) says why."""
    hint = OFFLINE_HINT.format(tool="npm").replace("'", "")
    return (
        "#!/bin/sh\n"
        f'{npm} "$@" && exit 0\n'
        "status=$?\n"
        f'if [ -n "${OFFLINE}" ]; then\n'
        '  for arg in "$@"; do\n'
        f"    case $arg in {'|'.join(NPM_DOWNLOADS)}) echo '{hint}' >&2; break ;; esac\n"
        "  done\n"
        "fi\n"
        'exit "$status"\n'
    )


def _entries(interpreter: str) -> dict[str, str | None]:
    """``bin`` name → script text, or None for a symlink to the interpreter."""
    pip = f'#!/bin/sh\nexec {interpreter} -m pip "$@"\n'  # the hook says why it failed
    entries: dict[str, str | None] = {"python": None, "python3": None, "pip": pip, "pip3": pip}
    npm = next((path for path in NPM if Path(path).is_file()), None)
    if npm is not None:
        entries["npm"] = _npm(npm)
    return entries


def write_tree(root: Path, interpreter: str) -> None:
    """Write ``bin`` and ``hooks`` of ``interpreter`` into ``root``."""
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    bin_dir, hooks = root / BIN, root / HOOKS
    for directory in (bin_dir, hooks):
        directory.mkdir(mode=0o755)
    for name, script in _entries(interpreter).items():
        path = bin_dir / name
        if script is None:
            path.symlink_to(interpreter)
        else:
            path.write_text(script)
            path.chmod(0o755)
    (hooks / "sitecustomize.py").write_text(HOOK.read_text())
    (hooks / "sitecustomize.py").chmod(0o644)


def tools_dir(root: Path, interpreter: str) -> Path:
    """Where the tree of ``interpreter`` lives under the runtime dir ``root`` (named by
    its content, so a changed wrapper or hook is a new directory)."""
    content = json.dumps([interpreter, _entries(interpreter), HOOK.read_text()], sort_keys=True)
    return root / "tools" / hashlib.sha256(content.encode()).hexdigest()[:16]


def write_tools(root: Path, interpreter: str) -> Path:
    """Write the tree of ``interpreter`` unless present; safe to run concurrently (the
    first complete copy wins)."""
    target = tools_dir(root, interpreter)
    if target.is_dir():
        return target
    target.parent.mkdir(mode=0o755, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    write_tree(staging, interpreter)
    staging.chmod(0o755)
    try:
        staging.rename(target)
    except OSError:  # another driver wrote it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


if __name__ == "__main__":  # a runtime image, at build time
    write_tree(Path(sys.argv[1]), sys.executable)
