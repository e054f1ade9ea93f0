"""The calls that move a whole workspace (pause, resume, snapshot create, a create from a
snapshot) wait `workspace_timeout` for sandbox-svc's reply, not the bus's default 10 s or
the create's 60 s: a large workspace takes minutes to stream, and a gateway that gave up
first would answer 504 while sandbox-svc carried on. Driven through the real routes and
the real `Bus`, over a connection that answers every command and records its timeout."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from llmsafespace.contracts import (
    Caller,
    Resources,
    Role,
    Sandbox,
    SandboxStatus,
    SecurityLevel,
    Snapshot,
    commands,
    new_sandbox_id,
    new_snapshot_id,
)
from llmsafespace.gateway.accounts import Identity
from llmsafespace.gateway.errors import EXCEPTION_HANDLERS
from llmsafespace.gateway.sandboxes import ROUTES as SANDBOX_ROUTES
from llmsafespace.gateway.settings import Settings
from llmsafespace.gateway.snapshots import ROUTES as SNAPSHOT_ROUTES
from llmsafespace.servicekit import Bus

CALLER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
SANDBOX_ID = new_sandbox_id()
SNAPSHOT_ID = new_snapshot_id()
DEFAULT, CREATE, WORKSPACE = 10.0, 60.0, 1800.0
NOW = datetime.now(UTC)
SANDBOX = Sandbox(
    id=SANDBOX_ID,
    owner_id=CALLER.user_id,
    status=SandboxStatus.RUNNING,
    runtime="python:3.11",
    security_level=SecurityLevel.STANDARD,
    timeout=600,
    resources=Resources(),
    metadata={},
    from_warm_pool=False,
    created_at=NOW,
    expires_at=NOW + timedelta(seconds=600),
)
SNAPSHOT = Snapshot(
    id=SNAPSHOT_ID,
    owner_id=CALLER.user_id,
    name="kept",
    sandbox_id=SANDBOX_ID,
    runtime="python:3.11",
    metadata={},
    env_names=[],
    size_bytes=0,
    stored_bytes=0,
    created_at=NOW,
)
REPLIES = {commands.SNAPSHOT_CREATE.subject: SNAPSHOT}


@dataclass
class Reply:
    data: bytes


class RecordingConnection:
    """The bus's `Connection`: answers each command with a sandbox (or a snapshot) and
    records the timeout it was asked to wait."""

    def __init__(self) -> None:
        self.timeouts: dict[str, float] = {}

    @property
    def is_connected(self) -> bool:
        return True

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> Reply:
        self.timeouts[subject] = timeout
        return Reply(REPLIES.get(subject, SANDBOX).model_dump_json(by_alias=True).encode())

    async def publish(self, subject: str, payload: bytes) -> None:
        raise AssertionError("nothing here publishes")


class EveryoneIsTheCaller:
    """The accounts: any credential is the test's user."""

    def cache_entry(self, credential: str) -> str | None:
        return None

    def remembered(self, entry: str) -> Identity | None:
        return None

    async def authenticate(self, credential: str) -> Identity:
        return Identity(caller=CALLER, key_id="key-1")


class NoLimits:
    async def hit(
        self, caller: Caller, limit_class: str | None, *, confirm: str | None = None
    ) -> tuple[None, bool]:
        return None, False


@pytest.fixture
def client() -> Iterator[tuple[TestClient, RecordingConnection]]:
    connection = RecordingConnection()
    settings = Settings(request_timeout=DEFAULT, create_timeout=CREATE, workspace_timeout=WORKSPACE)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, object]]:
        yield {
            "bus": Bus(connection, settings.request_timeout),
            "accounts": EveryoneIsTheCaller(),
            "limiter": NoLimits(),
            "settings": settings,
        }

    app = Starlette(
        routes=[Mount("/api/v1", routes=[*SANDBOX_ROUTES, *SNAPSHOT_ROUTES])],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    headers = {"Authorization": "Bearer lsp_test"}
    with TestClient(app, base_url="http://gateway/api/v1", headers=headers) as test_client:
        yield test_client, connection


def test_calls_that_move_a_workspace_wait_the_workspace_timeout(
    client: tuple[TestClient, RecordingConnection],
) -> None:
    http, connection = client
    for path in ("pause", "resume"):
        assert http.post(f"/sandboxes/{SANDBOX_ID}/{path}").status_code == 200
    taken = http.post(f"/sandboxes/{SANDBOX_ID}/snapshots", json={"name": "kept"})
    assert taken.status_code == 201, taken.text
    assert connection.timeouts == {
        commands.SANDBOX_PAUSE.subject: WORKSPACE,
        commands.SANDBOX_RESUME.subject: WORKSPACE,
        commands.SNAPSHOT_CREATE.subject: WORKSPACE,
    }
    restored = http.post("/sandboxes", json={"snapshot": SNAPSHOT_ID})
    assert restored.status_code == 201, restored.text
    assert connection.timeouts[commands.SANDBOX_CREATE.subject] == WORKSPACE


def test_other_calls_keep_their_own_timeouts(
    client: tuple[TestClient, RecordingConnection],
) -> None:
    http, connection = client
    assert http.get(f"/sandboxes/{SANDBOX_ID}").status_code == 200
    assert http.post("/sandboxes", json={}).status_code == 201
    assert connection.timeouts == {
        commands.SANDBOX_GET.subject: DEFAULT,
        commands.SANDBOX_CREATE.subject: CREATE,
    }
