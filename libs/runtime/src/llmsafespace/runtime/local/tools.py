"""The sandbox's own ``bin``, first on its ``PATH``: ``python``, ``pip``, ``npm`` as expected.

One directory per interpreter under the runtime dir, bound read-only at ``TOOLS_BIN``:
``python`` and ``python3`` are the runtime's interpreter; ``pip``/``pip3`` run its pip
(installs go to ``$PIP_TARGET``, ``/workspace/.packages``, set by the sandbox's
environment); ``npm`` is the host's. Without network the sandbox's environment makes pip
and npm fail at once (no index, offline), and these wrappers then say how to get
packages in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TOOLS_BIN = "/opt/runtime/bin"
NPM = "/usr/bin/npm"
OFFLINE_HINT = (
    "{tool}: this sandbox has no network, so {tool} cannot download packages. Create the "
    "sandbox with networkAccess {{enabled: true}}, or install through the API: "
    "POST /sandboxes/{{id}}/packages (served from the package mirror configured for exec-svc), "
    "or upload the package files (PUT /sandboxes/{{id}}/files) and install them from there."
)


def _wrapper(tool: str, run: str, downloads: tuple[str, ...]) -> str:
    """A shell script running ``run`` with the arguments; offline, a failed download (one
    of the subcommands ``downloads``) says why."""
    hint = OFFLINE_HINT.format(tool=tool).replace("'", "")
    pattern = "|".join(f"1:{subcommand}" for subcommand in downloads)
    return (
        "#!/bin/sh\n"
        f'{run} "$@" && exit 0\n'
        "status=$?\n"
        f"case \"$LLMSAFESPACE_OFFLINE:$1\" in {pattern}) echo '{hint}' >&2 ;; esac\n"
        'exit "$status"\n'
    )


def _entries(interpreter: str) -> dict[str, str | None]:
    """Name → script text, or None for a symlink to the interpreter."""
    pip = _wrapper("pip", f"{interpreter} -m pip", ("install", "download", "wheel"))
    entries: dict[str, str | None] = {"python": None, "python3": None, "pip": pip, "pip3": pip}
    if os.access(NPM, os.X_OK):
        entries["npm"] = _wrapper("npm", NPM, ("install", "i", "add", "ci", "update", "exec"))
    return entries


def tools_dir(root: Path, interpreter: str) -> Path:
    """Where the ``bin`` of ``interpreter`` lives under the runtime dir ``root`` (named by
    its content, so a changed wrapper is a new directory)."""
    content = json.dumps([interpreter, _entries(interpreter)], sort_keys=True)
    return root / "tools" / hashlib.sha256(content.encode()).hexdigest()[:16]


def write_tools(root: Path, interpreter: str) -> Path:
    """Write the ``bin`` of ``interpreter`` unless present; safe to run concurrently (the
    first complete copy wins)."""
    target = tools_dir(root, interpreter)
    if target.is_dir():
        return target
    target.parent.mkdir(mode=0o755, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    for name, script in _entries(interpreter).items():
        path = staging / name
        if script is None:
            path.symlink_to(interpreter)
        else:
            path.write_text(script)
            path.chmod(0o755)
    staging.chmod(0o755)
    try:
        staging.rename(target)
    except OSError:  # another driver wrote it first
        shutil.rmtree(staging, ignore_errors=True)
    return target
