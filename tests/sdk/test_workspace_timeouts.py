"""Calls that move a whole workspace wait `workspace_timeout`, not the 60 s request timeout:
the gateway lets pause, resume, snapshot and create-from-snapshot run that long, and a
client that gave up first would leave the caller guessing what happened."""

import json
from typing import Any

import httpx
import pytest

from llmsafespace.contracts import Resources, Sandbox, SandboxStatus, SecurityLevel, Snapshot
from llmsafespace.sdk import AsyncSandbox, async_sandbox
from llmsafespace.sdk.config import ClientConfig
from llmsafespace.sdk.transport import Transport

SANDBOX = Sandbox(
    id="sb-0123456789ab",
    owner_id="usr-1",
    status=SandboxStatus.RUNNING,
    runtime="python:3.11",
    security_level=SecurityLevel.STANDARD,
    timeout=300,
    resources=Resources(),
    metadata={},
    created_at="2026-01-01T00:00:00Z",
    expires_at="2026-01-01T00:05:00Z",
).model_dump(mode="json", by_alias=True)
SNAPSHOT = Snapshot(
    id="snap-0123456789ab",
    owner_id="usr-1",
    name="kept",
    sandbox_id="sb-0123456789ab",
    runtime="python:3.11",
    metadata={},
    env_names=[],
    size_bytes=1,
    stored_bytes=1,
    created_at="2026-01-01T00:00:00Z",
).model_dump(mode="json", by_alias=True)


class Recorder:
    """An httpx transport that answers like the API and keeps each call's read timeout."""

    def __init__(self) -> None:
        self.timeouts: list[tuple[str, float | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/v1/")
        self.timeouts.append((f"{request.method} {path}", request.extensions["timeout"]["read"]))
        reply: dict[str, Any] = SNAPSHOT if path.endswith("/snapshots") else SANDBOX
        return httpx.Response(200, content=json.dumps(reply))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()

    def transport(config: ClientConfig) -> Transport:
        client = httpx.AsyncClient(
            base_url=config.api_url + "/",
            transport=httpx.MockTransport(recorder),
            timeout=config.request_timeout,
        )
        return Transport(config, client)

    monkeypatch.setattr(async_sandbox, "Transport", transport)
    return recorder


async def test_workspace_calls_wait_the_workspace_timeout(recorder: Recorder) -> None:
    options = {"api_url": "http://api.test/api/v1", "api_key": "k", "request_timeout": 7.0}
    plain = await AsyncSandbox.create(**options)  # type: ignore[arg-type]
    restored = await AsyncSandbox.create(snapshot="snap-0123456789ab", **options)  # type: ignore[arg-type]
    await restored.pause()
    await restored.resume()
    await restored.snapshot("kept")
    await plain.info()
    for sandbox in (plain, restored):
        await sandbox.close()
    workspace = ClientConfig.workspace_timeout
    path = f"sandboxes/{SANDBOX['id']}"
    assert recorder.timeouts == [
        ("POST sandboxes", 7.0),
        ("POST sandboxes", workspace),
        (f"POST {path}/pause", workspace),
        (f"POST {path}/resume", workspace),
        (f"POST {path}/snapshots", workspace),
        (f"GET {path}", 7.0),
    ]
