"""What the hostile-code probes share: running code in a sandbox through the public API,
and the escape attempts that must fail at every security level."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

TRY_OPEN = """
import json, os
def attempt(path, mode="r"):
    try:
        if os.path.isdir(path) and mode == "r":
            os.listdir(path)
        else:
            open(path, mode).close()
        return "ok"
    except OSError as exc:
        return type(exc).__name__
"""
LOOPBACKS = ("127.0.0.1", "::1", "0.0.0.0", "10.0.2.2", "169.254.169.254")


def host_has(path: str) -> bool:
    """Whether a path exists on the host (outside every sandbox)."""
    return os.path.exists(path)


async def create(api: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await api.post("/sandboxes", json={"timeout": 900, "useWarmPool": False, **body})


async def run(
    api: httpx.AsyncClient, sandbox_id: str, content: str, kind: str = "code", timeout: int = 60
) -> dict[str, object]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": kind, "content": content, "timeout": timeout},
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def value(api: httpx.AsyncClient, sandbox_id: str, content: str) -> object:
    """Run ``content`` whose last expression is JSON-serialisable; its value."""
    body = await run(api, sandbox_id, content + "\n")
    assert body["status"] == "completed", body
    return json.loads(ast.literal_eval(str(body["result"])))


async def witness_answers(api: httpx.AsyncClient, witness: str) -> None:
    body = await run(api, witness, "open('/workspace/witness-secret').read()")
    assert body["result"] == "'w1tness'", body


async def assert_host_files_unreadable(
    api: httpx.AsyncClient, sandbox_id: str, witness: str, runtime_dir: Path
) -> None:
    """The host's secrets, this repository and other sandboxes' workspaces stay closed."""
    targets = [
        "/etc/shadow",
        "/root",
        "/work/main",
        os.getcwd(),
        str(runtime_dir / "workspaces" / witness / "witness-secret"),
        str(runtime_dir / "sandboxes"),
        "/opt/llmsafespace/../../../etc/shadow",
    ]
    found = await value(
        api, sandbox_id, TRY_OPEN + f"json.dumps({{p: attempt(p) for p in {targets!r}}})"
    )
    assert isinstance(found, dict)
    assert "ok" not in found.values(), found
    await witness_answers(api, witness)


async def assert_system_paths_unwritable(api: httpx.AsyncClient, sandbox_id: str) -> None:
    targets = ["/proc/sys/kernel/core_pattern", "/usr/pwned", "/etc/pwned", "/proc/sysrq-trigger"]
    found = await value(
        api, sandbox_id, TRY_OPEN + f"json.dumps({{p: attempt(p, 'w') for p in {targets!r}}})"
    )
    assert isinstance(found, dict)
    assert "ok" not in found.values(), found
    assert not host_has("/usr/pwned")


async def assert_stack_unreachable(api: httpx.AsyncClient, sandbox_id: str, stack: Any) -> None:
    """NATS, PostgreSQL, Redis and the API on every loopback and link-local address."""
    ports = [urlsplit(server.url).port for server in stack.servers.all()]
    ports.append(urlsplit(stack.api_url).port)
    code = f"""
import socket, json
out = {{}}
for port in {ports!r}:
    for host in {LOOPBACKS!r}:
        try:
            socket.create_connection((host, port), timeout=1).close()
            out[f"{{host}}:{{port}}"] = "ok"
        except OSError as exc:
            out[f"{{host}}:{{port}}"] = type(exc).__name__
json.dumps(out)
"""
    found = await value(api, sandbox_id, code)
    assert isinstance(found, dict)
    assert len(found) == len(ports) * len(LOOPBACKS)
    assert "ok" not in found.values(), found
