"""Cross-service fixtures: one embedded stack for the whole session, an API client per test."""

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from llmsafespace.devstack import Stack


@pytest.fixture(scope="session")
def stack_state_dir() -> Iterator[Path]:
    # Not tmp_path: /tmp/pytest-of-root is 0700 and the unprivileged PostgreSQL and
    # sandbox users must be able to traverse the state directory's parents.
    state_dir = Path(tempfile.mkdtemp(prefix="llmsafespace-", dir="/tmp"))
    state_dir.chmod(0o755)
    yield state_dir
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def stack(stack_state_dir: Path) -> AsyncIterator[Stack]:
    # Honours NATS_URL, DATABASE_URL, REDIS_URL. The whole suite shares one admin key:
    # its rate limits are lifted (tests that check limits start gateways of their own).
    # Quotas are low, so tests/e2e/test_quotas.py reaches them; admins are exempt, and no
    # other test's plain user holds more than a sandbox or two at once.
    unlimited = json.dumps({"create_sandbox": 10**6, "execute_code": 10**6, "default": 10**6})
    environ = {
        **os.environ,
        "GATEWAY_RATE_LIMITS": unlimited,
        "SANDBOX_SVC_QUOTA_SANDBOXES": "3",
        "SANDBOX_SVC_QUOTA_MEMORY": "2Gi",
    }
    running = Stack(stack_state_dir, api_port=0, environ=environ)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30,
    ) as client:
        yield client
