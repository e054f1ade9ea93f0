"""The sandbox's environment, the same on every driver: the local driver hands it to
bubblewrap (or gVisor), the Kubernetes driver puts it in the Pod's ``env``.

User code gets ``USER_PYTHONPATH`` as its ``PYTHONPATH`` (the agent's own path never
reaches it): the workspace's packages first, then a template's and the runtime's, then
the startup hook. pip and npm install into the workspace, the same place as
``POST /sandboxes/{id}/packages``; without network they fail at once (no index, offline)
and ``OFFLINE`` makes the hook and the ``npm`` wrapper say why.
"""

from __future__ import annotations

from llmsafespace.agent.userpath import PACKAGES, USER_PYTHONPATH

from .sitecustomize import OFFLINE
from .tools import HOOKS_DIR, RUNTIME_ROOT, TOOLS_BIN

WORKSPACE = "/workspace"
USER_PACKAGES = PACKAGES  # pip's target here and for POST /packages
RUNTIME_PACKAGES = f"{RUNTIME_ROOT}/site-packages"  # a runtime's preinstalled packages
TEMPLATE_DIR = "/opt/template"  # a template's layer (its builder's /workspace)
# How both drivers start the agent: `python -c` this, not `-m llmsafespace.agent` (-m
# loads runpy and importlib.util only to find the module, ~0.1 MB of every sandbox).
AGENT_MAIN = "from llmsafespace.agent.__main__ import main; main()"
PATH = f"{TOOLS_BIN}:/usr/local/bin:/usr/bin:/bin"


def sandbox_environment(
    *, networked: bool, template: bool = False, runtime_packages: bool = False
) -> dict[str, str]:
    """The variables every sandbox starts with (a create's own ``env`` goes on top).

    ``template``: a layer is mounted at ``TEMPLATE_DIR`` (on the paths after the
    workspace's own); ``runtime_packages``: the runtime's prefix is mounted at
    ``RUNTIME_PACKAGES`` (runtime images install theirs in the interpreter's own
    site-packages instead)."""
    python_path = [USER_PACKAGES]
    node_path = [f"{WORKSPACE}/node_modules"]
    path = f"{PATH}:{USER_PACKAGES}/bin:{WORKSPACE}/node_modules/.bin"  # installed tools
    if template:
        python_path.append(f"{TEMPLATE_DIR}/.packages")
        node_path.append(f"{TEMPLATE_DIR}/node_modules")
        path += f":{TEMPLATE_DIR}/.packages/bin:{TEMPLATE_DIR}/node_modules/.bin"
    if runtime_packages:
        python_path.append(RUNTIME_PACKAGES)
    python_path.append(HOOKS_DIR)
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
    if not networked:
        env |= {"PIP_NO_INDEX": "1", "NPM_CONFIG_OFFLINE": "true", OFFLINE: "1"}
    return env
