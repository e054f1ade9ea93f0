"""Package installs through the real stack: names validated, no network without a mirror,
and from a local index (served here, over loopback) into the next run's imports."""

import base64
import hashlib
import http.server
import io
import secrets
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from llmsafespace.devstack import Stack

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


@pytest.fixture(scope="module")
def package_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(package name, index URL): a one-package PEP 503 index on 127.0.0.1."""
    root = tmp_path_factory.mktemp("index")
    name = f"tinypkg_{secrets.token_hex(4)}"
    build_wheel(root, name, "1.0", "ANSWER = 42\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield name, f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def mirrored(stack: Stack, package_name: tuple[str, str]) -> AsyncIterator[str]:
    """exec-svc restarted with PACKAGE_INDEX_URL pointing at the test's index."""
    service = stack.services["exec-svc"]
    original = service.env
    async with stack.stopped("exec-svc"):
        service.env = {**original, "PACKAGE_INDEX_URL": package_name[1]}  # type: ignore[misc]
    try:
        yield package_name[0]
    finally:
        async with stack.stopped("exec-svc"):
            service.env = original  # type: ignore[misc]


@pytest.mark.parametrize(
    "packages",
    [["requests; rm -rf /"], ["--index-url=http://evil"], ["a b"], ["$(id)"], ["x`id`"]],
)
async def test_package_names_that_are_not_names_are_refused(
    api: httpx.AsyncClient, sandbox_id: str, packages: list[str]
) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/packages", json={"packages": packages})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"


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
        assert "PACKAGE_INDEX_URL" in error["message"]


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
