"""Package installs through the real stack: names validated, no network without a mirror,
from a local pip index and a local npm registry (served here, over loopback) into the next
run's imports, followed live over the WebSocket, and audited."""

import asyncio
import base64
import hashlib
import http.server
import io
import json
import secrets
import socket
import tarfile
import threading
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import websockets

from llmsafespace.devstack import Stack
from llmsafespace.sdk import AsyncSandbox, NotFoundError

pytestmark = pytest.mark.stack


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(directory: Path, name: str, version: str, module_source: str) -> str:
    """A minimal pure-Python wheel, written by hand (no build tools, no network)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_source.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [_record_line(path, data) for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    filename = f"{name}-{version}-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    project = directory / "simple" / name.replace("_", "-")
    project.mkdir(parents=True)
    (project / filename).write_bytes(buffer.getvalue())
    (project / "index.html").write_text(f'<html><body><a href="{filename}">{filename}</a>')
    return filename


def serve_directory(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """`root` over HTTP on 127.0.0.1."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *_: object) -> None:
            pass

    return _started(Handler)


def serve_routes(routes: dict[str, bytes]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """`routes` (path → body, filled in later) over HTTP on 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes.get(unquote(self.path))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return _started(Handler)


def _started(
    handler: type[http.server.BaseHTTPRequestHandler],
) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def package_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(package name, index URL): a one-package PEP 503 index on 127.0.0.1."""
    root = tmp_path_factory.mktemp("index")
    name = f"tinypkg_{secrets.token_hex(4)}"
    build_wheel(root, name, "1.0", "ANSWER = 42\n")
    server, url = serve_directory(root)
    yield name, f"{url}/simple/"
    server.shutdown()
    server.server_close()


def npm_tarball(files: dict[str, str]) -> bytes:
    """An npm package tarball: everything under `package/`."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for path, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(f"package/{path}")
            entry.size, entry.mode = len(data), 0o644
            archive.addfile(entry, io.BytesIO(data))
    return packed.getvalue()


def publish(
    routes: dict[str, bytes],
    url: str,
    name: str,
    versions: dict[str, dict[str, str]],
    latest: str,
) -> None:
    """`name` as an npm registry serves it: the packument at `/<name>`, the tarballs at
    `/<name>/-/<name>-<version>.tgz` (each index.js exports its version and its deps)."""
    manifests = {}
    for version, dependencies in versions.items():
        requires = "".join(f"'{dep}': require('{dep}'), " for dep in dependencies)
        source = f"module.exports = {{version: '{version}', {requires}answer: 42}};\n"
        package = {"name": name, "version": version, "main": "index.js"}
        package["dependencies"] = dependencies  # type: ignore[assignment]
        data = npm_tarball({"package.json": json.dumps(package), "index.js": source})
        path = f"/{name}/-/{name}-{version}.tgz"
        routes[path] = data
        dist = {
            "tarball": url + path,
            "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
            "shasum": hashlib.sha1(data).hexdigest(),
        }
        manifests[version] = {**package, "dist": dist}
    document = {"name": name, "dist-tags": {"latest": latest}, "versions": manifests}
    routes[f"/{name}"] = json.dumps(document).encode()


@pytest.fixture(scope="module")
def npm_registry() -> Iterator[tuple[str, str, str]]:
    """(package, its dependency, registry URL): an npm registry on 127.0.0.1. The package
    wants the dependency at ^1.0.0, whose `latest` is 2.0.0: npm must pick 1.1.0."""
    suffix = secrets.token_hex(4)
    package, dependency = f"tinynpm-{suffix}", f"tinydep-{suffix}"
    routes: dict[str, bytes] = {}
    server, url = serve_routes(routes)
    publish(routes, url, dependency, {"1.0.0": {}, "1.1.0": {}, "2.0.0": {}}, latest="2.0.0")
    publish(routes, url, package, {"1.0.0": {dependency: "^1.0.0"}}, latest="1.0.0")
    yield package, dependency, url
    server.shutdown()
    server.server_close()


@pytest.fixture
async def mirrored(
    stack: Stack, package_name: tuple[str, str], npm_registry: tuple[str, str, str]
) -> AsyncIterator[str]:
    """exec-svc restarted with PACKAGE_INDEX_URL and NPM_REGISTRY_URL pointing at the
    test's pip index and npm registry."""
    replicas = stack.replicas["exec-svc"]  # every replica: any may take the install
    originals = [service.env for service in replicas]
    mirrors = {"PACKAGE_INDEX_URL": package_name[1], "NPM_REGISTRY_URL": npm_registry[2]}
    async with stack.stopped("exec-svc"):
        for service, original in zip(replicas, originals, strict=True):
            service.env = {**original, **mirrors}  # type: ignore[misc]
    try:
        yield package_name[0]
    finally:
        async with stack.stopped("exec-svc"):
            for service, original in zip(replicas, originals, strict=True):
                service.env = original  # type: ignore[misc]


async def audit_event(
    api: httpx.AsyncClient, sandbox_id: str, name: str, match: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The sandbox's audit event called `name` that `match`es, once recorded (else None)."""
    for _ in range(100):
        page = await api.get("/audit", params={"sandboxId": sandbox_id, "limit": 500})
        for event in page.json()["events"]:
            if event["event"] == name and match(event):
                return event
        await asyncio.sleep(0.2)
    return None


@pytest.mark.parametrize(
    "packages",
    [["requests; rm -rf /"], ["--index-url=http://evil"], ["a b"], ["$(id)"], ["x`id`"]],
)
async def test_package_names_that_are_not_names_are_refused(
    api: httpx.AsyncClient, sandbox_id: str, packages: list[str]
) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/packages", json={"packages": packages})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert list(error["details"]["fields"]) == ["packages"], "the field, not the body"


@pytest.mark.local_driver(
    "a sandbox without network is the local driver's; the fake kubelet enforces no"
    " NetworkPolicy, so its agents reach the host's package index"
)
async def test_without_network_or_mirror_installs_fail_fast_with_409(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    for manager, package in (("pip", "requests==2.31.0"), ("npm", "left-pad@1.3.0")):
        response = await api.post(
            f"/sandboxes/{sandbox_id}/packages",
            json={"packages": [package], "manager": manager},
        )
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "network_disabled"
        setting = {"pip": "PACKAGE_INDEX_URL", "npm": "NPM_REGISTRY_URL"}[manager]
        assert setting in error["message"], error
        assert "networkAccess" in error["message"], error


async def test_a_package_from_the_mirror_is_importable_by_the_next_run(
    api: httpx.AsyncClient, sandbox_id: str, mirrored: str
) -> None:
    before = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": "code", "content": f"import {mirrored}"},
    )
    assert before.json()["error"]["name"] == "ModuleNotFoundError"
    installed = await api.post(
        f"/sandboxes/{sandbox_id}/packages",
        json={"packages": [f"{mirrored}>=1.0"], "manager": "pip"},
        timeout=120,
    )
    assert installed.status_code == 200, installed.text
    assert installed.json()["exitCode"] == 0, installed.json()
    after = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": "code", "content": f"import {mirrored}; {mirrored}.ANSWER"},
    )
    assert after.json()["result"] == "42", after.json()
    missing = await api.post(
        f"/sandboxes/{sandbox_id}/packages", json={"packages": ["not-in-the-index"]}
    )
    assert missing.status_code == 404, missing.text


async def test_an_install_started_without_waiting_is_followed_live_on_the_websocket(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str, mirrored: str
) -> None:
    started = await api.post(
        f"/sandboxes/{sandbox_id}/packages",
        json={"packages": [mirrored], "manager": "pip", "wait": False},
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["executionId"]
    url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox_id}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": 0}))
        messages = []
        while not messages or messages[-1]["type"] not in ("execution_complete", "error"):
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if message.get("executionId") == execution_id:
                messages.append(message)
    kinds = [message["type"] for message in messages]
    assert kinds[0] == "execution_start", kinds
    assert kinds[-1] == "execution_complete", messages[-1]
    assert messages[-1]["exitCode"] == 0, messages[-1]
    output = "".join(m["content"] for m in messages if m["type"] == "output")
    assert f"Successfully installed {mirrored}" in output, output
    me = (await api.get("/user")).json()["id"]
    installed = await audit_event(
        api, sandbox_id, "packages_installed", lambda e: e["executionId"] == execution_id
    )
    assert installed is not None
    assert installed["userId"] == me, installed
    assert installed["payload"]["packages"] == [mirrored], installed
    assert installed["payload"]["manager"] == "pip", installed


async def test_the_sdk_install_reports_the_installer_output_as_it_comes(
    stack: Stack, sandbox_id: str, mirrored: str
) -> None:
    sandbox = await AsyncSandbox.connect(sandbox_id, api_url=stack.api_url, api_key=stack.admin_key)
    lines: list[str] = []
    try:
        result = await sandbox.install([mirrored], on_stdout=lines.append)
        assert result.success, result
        assert f"Successfully installed {mirrored}" in "".join(lines)
        assert f"Successfully installed {mirrored}" in result.stdout
        with pytest.raises(NotFoundError) as refused:
            await sandbox.install(["not-in-the-index"], on_stdout=lines.append)
        assert refused.value.code == "not_found", refused.value
    finally:
        await sandbox.close()


async def test_an_npm_package_from_the_mirror_is_required_by_node(
    api: httpx.AsyncClient, sandbox_id: str, mirrored: str, npm_registry: tuple[str, str, str]
) -> None:
    package, dependency, _ = npm_registry
    installed = await api.post(
        f"/sandboxes/{sandbox_id}/packages",
        json={"packages": [package], "manager": "npm"},
        timeout=180,
    )
    assert installed.status_code == 200, installed.text
    assert installed.json()["exitCode"] == 0, installed.json()
    script = f"const m = require('{package}'); console.log(m.answer, m['{dependency}'].version)"
    ran = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": "command", "content": f"node -e {json.dumps(script)}"},
    )
    assert ran.json()["stdout"].split() == ["42", "1.1.0"], ran.json()
    listed = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/package.json")
    assert package in listed.json()["dependencies"], listed.text
    missing = await api.post(
        f"/sandboxes/{sandbox_id}/packages",
        json={"packages": ["not-in-the-registry"], "manager": "npm"},
    )
    assert missing.status_code == 404, missing.text
    failed = await audit_event(
        api,
        sandbox_id,
        "packages_failed",
        lambda e: e["payload"].get("packages") == ["not-in-the-registry"],
    )
    assert failed is not None
    assert failed["payload"]["manager"] == "npm", failed
    assert "not-in-the-registry" in failed["payload"]["reason"], failed
    installed = await audit_event(
        api, sandbox_id, "packages_installed", lambda e: e["payload"]["packages"] == [package]
    )
    assert installed is not None
    assert installed["payload"]["path"] == "/workspace/node_modules", installed


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), 5).close()
    except OSError:
        return False
    return True


async def test_a_sandbox_with_network_installs_from_the_public_indexes(
    api: httpx.AsyncClient,
) -> None:
    if not (_reachable("pypi.org") and _reachable("registry.npmjs.org")):
        pytest.skip("host feature: this host cannot reach the public package indexes")
    body = {"timeout": 600, "networkAccess": {"enabled": True}}
    created = await api.post("/sandboxes", json=body)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        for manager, package in (("npm", "left-pad@1.3.0"), ("pip", "six==1.17.0")):
            installed = await api.post(
                f"/sandboxes/{sandbox_id}/packages",
                json={"packages": [package], "manager": manager},
                timeout=300,
            )
            assert installed.status_code == 200, installed.text
            assert installed.json()["exitCode"] == 0, installed.json()
        script = "node -e \"console.log(require('left-pad')('x', 3))\""
        ran = await api.post(
            f"/sandboxes/{sandbox_id}/execute", json={"type": "command", "content": script}
        )
        assert ran.json()["stdout"] == "  x\n", ran.json()
        imported = await api.post(
            f"/sandboxes/{sandbox_id}/execute",
            json={"type": "code", "content": "import six; six.__version__"},
        )
        assert imported.json()["result"] == "'1.17.0'", imported.json()
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")
