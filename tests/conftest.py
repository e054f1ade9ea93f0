"""Cross-service fixtures: one embedded stack for the whole session, an API client per test.

The stack runs in the variant the environment names (the same tests, another backend):
`LLMSAFESPACE_TEST_DRIVER=kubernetes` puts sandboxes on a fake cluster (the in-memory API
server and a kubelet running real agents, tests/kubernetes) through the Kubernetes
driver, and snapshot chunks in S3 (a moto server); `LLMSAFESPACE_REPLICAS=2` (or
`LLMSAFESPACE_REPLICAS_<SERVICE>`) runs every service as that many processes, and the
`api` client spreads its requests over all gateways. Tests marked `local_driver` skip on
the Kubernetes variant, and tests marked `kubernetes_driver` run only there.
"""

import itertools
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from llmsafespace.devstack import Stack, state_dirs

from .kubernetes.cluster import FakeCluster
from .kubernetes.object_store import ObjectStore

TEST_DRIVER = os.environ.get("LLMSAFESPACE_TEST_DRIVER", "local")
DRIVERS = ("local", "kubernetes")


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DRIVER not in DRIVERS:
        raise pytest.UsageError(f"LLMSAFESPACE_TEST_DRIVER={TEST_DRIVER!r}: one of {DRIVERS}")
    config.addinivalue_line(
        "markers",
        "local_driver(reason): needs the local (bubblewrap) driver; skipped on the"
        " Kubernetes variant, whose fake kubelet runs agents as plain host processes",
    )
    config.addinivalue_line(
        "markers", "kubernetes_driver: runs only on the Kubernetes variant (a fake cluster)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        local = item.get_closest_marker("local_driver")
        if local is not None and TEST_DRIVER != "local":
            reason = local.kwargs.get("reason") or (local.args[0] if local.args else "")
            item.add_marker(pytest.mark.skip(reason=f"local driver only: {reason}".rstrip(": ")))
        if item.get_closest_marker("kubernetes_driver") and TEST_DRIVER != "kubernetes":
            item.add_marker(
                pytest.mark.skip(reason="Kubernetes variant only: LLMSAFESPACE_TEST_DRIVER")
            )


@pytest.fixture(scope="session")
def stack_state_dir() -> Iterator[Path]:
    # Not tmp_path: /tmp/pytest-of-root is 0700 and the unprivileged PostgreSQL and
    # sandbox users must be able to traverse the parents of the shared dir beside it.
    state_dir = Path(tempfile.mkdtemp(prefix="llmsafespace-", dir="/tmp"))
    yield state_dir
    state_dirs.remove(state_dir)


@pytest.fixture(scope="session")
def cluster() -> Iterator[FakeCluster | None]:
    """The fake cluster sandboxes run on in the Kubernetes variant; None otherwise."""
    if TEST_DRIVER != "kubernetes":
        yield None
        return
    running = FakeCluster()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore | None]:
    """In the Kubernetes variant, the S3 bucket snapshot chunks go to (as on a cluster,
    where replicas share no disk); None otherwise (chunks in the state dir)."""
    if TEST_DRIVER != "kubernetes":
        yield None
        return
    running = ObjectStore()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
async def stack(
    stack_state_dir: Path, cluster: FakeCluster | None, object_store: ObjectStore | None
) -> AsyncIterator[Stack]:
    # Honours NATS_URL, DATABASE_URL, REDIS_URL. The whole suite shares one admin key:
    # its rate limits are lifted (tests that check limits start gateways of their own).
    # Quotas are low, so tests/e2e/test_quotas.py reaches them; admins are exempt, and no
    # other test's plain user holds more than a sandbox or two at once.
    unlimited = json.dumps({"create_sandbox": 10**6, "execute_code": 10**6, "default": 10**6})
    environ = {
        **os.environ,
        "GATEWAY_RATE_LIMITS": unlimited,
        "EXEC_SVC_LOST_AFTER": "8",  # the lost-execution tests wait this long, and more
        "SANDBOX_SVC_QUOTA_SANDBOXES": "3",
        "SANDBOX_SVC_QUOTA_MEMORY": "2Gi",
        "SANDBOX_SVC_QUOTA_PAUSED_SANDBOXES": "1",
        "SANDBOX_SVC_QUOTA_STORAGE": "12Gi",
        "SANDBOX_SVC_QUOTA_SNAPSHOT_BYTES": "24Mi",
        "SANDBOX_SVC_QUOTA_SNAPSHOTS": "2",
        "SANDBOX_SVC_QUOTA_TEMPLATES": "2",
        **(cluster.environ() if cluster is not None else {}),
        **(object_store.environ() if object_store is not None else {}),
    }
    running = Stack(stack_state_dir, api_port=0, environ=environ)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next gateway in turn (any gateway serves any request)."""

    def __init__(self, urls: list[str]) -> None:
        self._origins = itertools.cycle([httpx.URL(url) for url in urls])
        self._transport = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = next(self._origins)
        request.url = request.url.copy_with(host=origin.host, port=origin.port)
        request.headers["Host"] = request.url.netloc.decode()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's client; with several gateway replicas, requests take turns among them."""
    urls = stack.api_urls
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.admin_key}"},
        timeout=30,
        transport=RoundRobin(urls) if len(urls) > 1 else None,
    ) as client:
        yield client
