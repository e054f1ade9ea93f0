"""The sandbox's shell as a model expects a Linux box: the commands models write most,
pip and npm inside a sandbox (into the workspace, importable at once), and a clear,
immediate refusal without network — on the Kubernetes variant too where the fake kubelet
allows (its Pods get the driver's environment and the image's /opt/runtime)."""

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from .test_packages import build_wheel, publish

pytestmark = pytest.mark.stack
HOST_SHELL = "the sandbox's shell is the host's /usr, as uid 1000 (the fake kubelet runs root)"
VENV_AGENT = "the fake kubelet's agent runs the venv's interpreter, which has no pip"
HOST_NETWORK = "the fake kubelet's Pods share the host's network (a fixed port)"

# (command, what its stdout must contain); each must exit 0.
COMMON_COMMANDS = [
    ("python --version", "Python 3.11"),
    ("python3 -c 'import sys; print(sys.version_info[:2])'", "(3, 11)"),
    ("pip --version", "python 3.11"),
    ("pip3 list", "Package"),
    ("python -m pip --version", "pip"),
    ("which python pip ls", "/opt/runtime/bin/python"),
    ("env | sort", "HOME=/workspace"),
    ("echo $HOME $LANG $USER", "/workspace C.UTF-8 sandbox"),
    ("ls -la /workspace", "total"),
    ("pwd", "/workspace"),
    ("mkdir -p d/e && echo hello > d/e/f.txt && cat d/e/f.txt", "hello"),
    ("seq 1 100 | head -n 3 | tail -n 1", "3"),
    ("printf 'b\\na\\nb\\n' | sort | uniq -c | wc -l", "2"),
    ("grep -r hello d && sed 's/hello/bye/' d/e/f.txt", "bye"),
    ("echo 'a b c' | awk '{print $2}'", "b"),
    ("find . -name '*.txt' | xargs wc -c", "f.txt"),
    ("tar czf d.tgz d && gzip -t d.tgz && tar tzf d.tgz", "d/e/f.txt"),
    ("uname -a && whoami && id -u", "sandbox"),
    ("date +%Y && ps aux | head -n 2", "PID"),
    ("curl --version && node --version && npm --version", "curl"),
    ("cd /tmp && touch x && ls /tmp && df -h /workspace | tail -n 1", "x"),
    # What was written in the sandbox runs: a script, a copied program, installed tools.
    ("printf '#!/bin/sh\\necho ran-here\\n' > run.sh && chmod +x run.sh && ./run.sh", "ran-here"),
    ("cp /bin/true /tmp/t && /tmp/t && echo ran-in-tmp", "ran-in-tmp"),
    (
        "mkdir -p .packages/bin node_modules/.bin"
        " && printf '#!/bin/sh\\necho pip-tool\\n' > .packages/bin/pytool"
        " && printf '#!/bin/sh\\necho npm-tool\\n' > node_modules/.bin/jstool"
        " && chmod +x .packages/bin/pytool node_modules/.bin/jstool && pytool && jstool",
        "pip-tool\nnpm-tool",
    ),
]


async def _run(api: httpx.AsyncClient, sandbox_id: str, kind: str, content: str) -> dict[str, Any]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": kind, "content": content, "timeout": 60},
        timeout=90,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.local_driver(HOST_SHELL)
async def test_the_commands_models_write_most_work_in_a_default_sandbox(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    failed = {}
    for command, expected in COMMON_COMMANDS:
        result = await _run(api, sandbox_id, "command", command)
        if result["exitCode"] != 0 or expected not in result["stdout"]:
            failed[command] = (result["exitCode"], result["stdout"][-300:], result["stderr"][-300:])
    assert not failed, failed


async def test_without_network_pip_and_npm_commands_fail_at_once_saying_how_to_get_packages(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    commands = (
        "pip install six",
        "pip3 install six",
        "pip -q install six",
        "python3 -m pip install six",
        "python -m pip install --no-cache-dir six",
        "npm install left-pad",
        "npm --silent install left-pad",
    )
    for command in commands:
        result = await _run(api, sandbox_id, "command", command)
        assert result["status"] == "failed", result  # exited, not a timeout: nothing waits
        assert result["exitCode"] != 0, result
        assert "networkAccess" in result["stderr"], result
        assert "POST /sandboxes/{id}/packages" in result["stderr"], result


@pytest.mark.local_driver(VENV_AGENT)
async def test_without_network_pip_from_code_fails_at_once_saying_how_to_get_packages(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    code = (
        "import subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'pip', 'install', 'six'],"
        " capture_output=True, text=True)\n"
        "print(done.stderr)\n"
        "done.returncode"
    )
    result = await _run(api, sandbox_id, "code", code)
    assert result["status"] == "completed", result
    assert result["result"] == "1", result
    assert "networkAccess" in result["stdout"], result
    assert "POST /sandboxes/{id}/packages" in result["stdout"], result


NPM_PORT = 8766
NPM_PACKAGE = "shell-npm-pkg"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A two-package PEP 503 index and a one-package npm registry on disk (uploaded to
    and served inside a sandbox): the registry's packument at `registry/<name>/index.html`,
    which `http.server` serves for `/<name>` (after a redirect npm follows)."""
    root = tmp_path_factory.mktemp("sandbox-index")
    names = [f"shellpkg_{secrets.token_hex(3)}", f"codepkg_{secrets.token_hex(3)}"]
    for name in names:
        build_wheel(root, name, "1.0", f"NAME = {name!r}\n")
    routes: dict[str, bytes] = {}
    publish(routes, f"http://127.0.0.1:{NPM_PORT}", NPM_PACKAGE, {"1.0.0": {}}, latest="1.0.0")
    for route, data in routes.items():
        path = root / "registry" / route.lstrip("/")
        if route == f"/{NPM_PACKAGE}":
            path = path / "index.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root, names


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


async def _upload(api: httpx.AsyncClient, sandbox_id: str, root: Path) -> None:
    """Every file under `root` into the sandbox's `/workspace/index`."""
    for relative, data in _files(root).items():
        uploaded = await api.put(
            f"/sandboxes/{sandbox_id}/files/workspace/index/{relative}", content=data
        )
        assert uploaded.status_code == 201, uploaded.text


@pytest.mark.local_driver(VENV_AGENT)
async def test_pip_in_a_networked_sandbox_installs_into_the_workspace_importable_at_once(
    api: httpx.AsyncClient, index_dir: tuple[Path, list[str]]
) -> None:
    root, (shell_package, code_package) = index_dir
    port = 8765
    body = {"timeout": 300, "networkAccess": {"enabled": True, "egress": [{"ports": [port]}]}}
    created = await api.post("/sandboxes", json=body)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        await _upload(api, sandbox_id, root)
        # An index on the sandbox's own loopback: no internet needed, still a real download.
        url = f"http://127.0.0.1:{port}/simple/"
        await _run(api, sandbox_id, "code", "imported_before = 0")  # the worker is live
        serve = (
            f"python3 -m http.server {port} --bind 127.0.0.1 -d /workspace/index"
            " >/dev/null 2>&1 & server=$!; "
            f"until curl -s -o /dev/null {url}; do sleep 0.1; done; "
        )
        installed = await _run(
            api,
            sandbox_id,
            "command",
            f"{serve}pip install --index-url {url} {shell_package}; status=$?; "
            "kill $server; exit $status",
        )
        assert installed["exitCode"] == 0, installed
        assert "externally-managed" not in installed["stderr"], installed
        listed = await _run(api, sandbox_id, "command", "ls /workspace/.packages")
        assert shell_package in listed["stdout"], listed
        imported = await _run(
            api, sandbox_id, "code", f"import {shell_package}; {shell_package}.NAME"
        )
        assert imported["result"] == repr(shell_package), imported  # same worker, no restart
        from_shell = await _run(api, sandbox_id, "command", f"python -c 'import {shell_package}'")
        assert from_shell["exitCode"] == 0, from_shell
        code = (
            "import socket, subprocess, sys, time\n"
            f"server = subprocess.Popen([sys.executable, '-m', 'http.server', '{port}',"
            " '--bind', '127.0.0.1', '-d', '/workspace/index'],"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "while True:\n"
            "    try:\n"
            f"        socket.create_connection(('127.0.0.1', {port}), 1).close()\n"
            "        break\n"
            "    except OSError:\n"
            "        time.sleep(0.1)\n"
            f"subprocess.run([sys.executable, '-m', 'pip', 'install', '--index-url', '{url}',"
            f" '{code_package}'], check=True)\n"
            "server.kill()\n"
            f"import {code_package}\n"
            f"{code_package}.NAME"
        )
        in_code = await _run(api, sandbox_id, "code", code)
        assert in_code["result"] == repr(code_package), in_code  # in the same cell
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.local_driver(HOST_NETWORK)
async def test_npm_in_a_networked_sandbox_installs_from_a_registry_and_node_requires_it(
    api: httpx.AsyncClient, index_dir: tuple[Path, list[str]]
) -> None:
    root, _ = index_dir
    body = {"timeout": 300, "networkAccess": {"enabled": True, "egress": [{"ports": [NPM_PORT]}]}}
    created = await api.post("/sandboxes", json=body)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        await _upload(api, sandbox_id, root)
        # A registry on the sandbox's own loopback: a real npm download, no internet.
        url = f"http://127.0.0.1:{NPM_PORT}/"
        installed = await _run(
            api,
            sandbox_id,
            "command",
            f"python3 -m http.server {NPM_PORT} --bind 127.0.0.1 -d /workspace/index/registry"
            " >/dev/null 2>&1 & server=$!; "
            f"until curl -s -o /dev/null {url}; do sleep 0.1; done; "
            f"npm install --no-audit --no-fund --registry {url} {NPM_PACKAGE}; status=$?; "
            "kill $server; exit $status",
        )
        assert installed["exitCode"] == 0, installed
        listed = await _run(api, sandbox_id, "command", "ls /workspace/node_modules")
        assert NPM_PACKAGE in listed["stdout"], listed
        required = await _run(
            api,
            sandbox_id,
            "command",
            f"cd /tmp && node -e \"console.log(require('{NPM_PACKAGE}').version)\"",
        )
        assert (required["exitCode"], required["stdout"]) == (0, "1.0.0\n"), required
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


async def test_a_pool_preloading_packages_is_refused_naming_templates(
    api: httpx.AsyncClient,
) -> None:
    name = f"preload-{secrets.token_hex(3)}"
    spec = {"name": name, "minSize": 1, "maxSize": 1, "preloadPackages": ["six"]}
    created = await api.post("/warmpools", json=spec)
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert "preloadPackages" in error["details"]["fields"], error
    assert "POST /templates" in error["message"], error
