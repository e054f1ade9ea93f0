"""Templates under quota, against a real PostgreSQL: an ordinary user keeps at most so many
templates (whatever their status), and each ready one's layer counts against the user's
storage quota at its builder's workspace size (the most the layer can hold)."""

import asyncio
from collections.abc import AsyncIterator
from importlib.resources import files

import asyncpg
import pytest

from llmsafespace.contracts import (
    CreateSandboxRequest,
    ErrorCode,
    ServiceError,
    TemplateSpec,
    TemplateStatus,
    quantity_bytes,
)
from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.sandbox_svc.quota import LAYER_STORAGE, Quota
from llmsafespace.sandbox_svc.settings import Settings
from llmsafespace.sandbox_svc.store import SandboxStore
from llmsafespace.sandbox_svc.template_store import TemplateStore
from llmsafespace.servicekit.db import connect, migrate

OWNER, OTHER = "usr-aaaaaaaaaaaa", "usr-bbbbbbbbbbbb"
GI = 2**30


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with scratch_server(PostgresServer, "template-quota-test-") as url:
        yield url


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect(database)
    await pool.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrate(pool, "sandbox-svc", files("llmsafespace.sandbox_svc") / "migrations")
    try:
        yield pool
    finally:
        await pool.close()


def spec(name: str) -> TemplateSpec:
    return TemplateSpec.model_validate({"name": name})


async def ready(store: TemplateStore, owner: str, name: str, quota: Quota | None) -> None:
    await store.insert(owner, spec(name), quota)
    await store.finish(name, TemplateStatus.READY, None, "", f"{name}-0000")


def test_the_template_quota_is_a_setting_of_its_own() -> None:
    assert Settings().quota().templates == 20
    assert Settings(quota_templates=3).quota().templates == 3
    assert quantity_bytes(LAYER_STORAGE) == GI  # the builder's workspace, the layer's bound


async def test_a_user_keeps_at_most_the_quota_of_templates_whatever_their_status(
    db: asyncpg.Pool,
) -> None:
    store, quota = TemplateStore(db), Quota(sandboxes=10, memory_bytes=GI, templates=2)
    await ready(store, OWNER, "tpl-ready", quota)
    failed = await store.insert(OWNER, spec("tpl-failed"), quota)
    await store.finish(failed.name, TemplateStatus.FAILED, "setup command 1 failed", "", None)
    with pytest.raises(ServiceError) as refused:
        await store.insert(OWNER, spec("tpl-third"), quota)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details == {
        "resource": "templates",
        "limit": 2,
        "current": 2,
        "requested": 1,
    }
    assert await store.get("tpl-third") is None
    await store.insert(OTHER, spec("tpl-others"), quota)  # another user's count is their own
    await store.insert(OWNER, spec("tpl-admins"), None)  # admins: no quota
    await store.delete("tpl-failed")  # a deleted one no longer counts
    await store.delete("tpl-admins")
    await store.insert(OWNER, spec("tpl-third"), quota)


async def test_concurrent_template_creates_never_overshoot_the_quota(db: asyncpg.Pool) -> None:
    store, quota = TemplateStore(db), Quota(sandboxes=10, memory_bytes=GI, templates=3)
    attempts = await asyncio.gather(
        *(store.insert(OWNER, spec(f"tpl-race-{n}"), quota) for n in range(8)),
        return_exceptions=True,
    )
    made = [attempt for attempt in attempts if not isinstance(attempt, BaseException)]
    refused = [attempt for attempt in attempts if isinstance(attempt, ServiceError)]
    assert len(made) == 3
    assert len(refused) == 5
    assert all(error.code is ErrorCode.QUOTA_EXCEEDED for error in refused)


async def test_ready_template_layers_count_against_the_owners_storage_quota(
    db: asyncpg.Pool,
) -> None:
    templates, sandboxes = TemplateStore(db), SandboxStore(db)
    quota = Quota(sandboxes=10, memory_bytes=8 * GI, storage_bytes=3 * GI + GI // 2)
    await ready(templates, OWNER, "tpl-one", quota)
    await ready(templates, OWNER, "tpl-two", quota)
    await templates.insert(OWNER, spec("tpl-building"), quota)  # its builder counts, not it
    failed = await templates.insert(OWNER, spec("tpl-broken"), quota)
    await templates.finish(failed.name, TemplateStatus.FAILED, "no", "", None)
    await ready(templates, OTHER, "tpl-others", quota)
    one_gi = CreateSandboxRequest.model_validate({"resources": {"ephemeralStorage": "1Gi"}})
    await sandboxes.insert("sb-fitsbeside001", OWNER, one_gi, quota)
    with pytest.raises(ServiceError) as refused:
        await sandboxes.insert("sb-toomuchdisk01", OWNER, one_gi, quota)
    assert refused.value.details == {
        "resource": "storage",
        "limit": 3 * GI + GI // 2,
        "current": 3 * GI,  # two ready layers and the sandbox
        "requested": GI,
    }
    await templates.delete("tpl-two")  # its layer goes with it
    await sandboxes.insert("sb-toomuchdisk01", OWNER, one_gi, quota)
