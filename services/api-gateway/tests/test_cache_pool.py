"""The gateway's Redis client: a bounded pool, on a real server."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmsafespace.devstack.redis_server import RedisServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.gateway.accounts import REDIS_CONNECTIONS, cache_client


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with scratch_server(RedisServer, "gateway-cache-test-") as url:
        yield url


async def test_commands_in_flight_share_a_bounded_number_of_connections(redis_url: str) -> None:
    """Twice as many waiting commands as connections: they all finish, and the server
    never sees more than the bound (plus the probe's own connection)."""
    cache, probe = cache_client(redis_url), cache_client(redis_url)
    try:
        waiting = [cache.blpop([f"nothing-{n}"], timeout=0.2) for n in range(2 * REDIS_CONNECTIONS)]
        busy = asyncio.gather(*waiting)
        async with asyncio.timeout(30):
            while await _clients(probe) < REDIS_CONNECTIONS:  # noqa: ASYNC110 (a server's)
                await asyncio.sleep(0.01)
        assert await busy == [None] * (2 * REDIS_CONNECTIONS)
        assert await _clients(probe) <= REDIS_CONNECTIONS + 1
    finally:
        await cache.aclose()
        await probe.aclose()


async def _clients(probe: object) -> int:
    info = await probe.info("clients")  # type: ignore[attr-defined]
    return int(info["connected_clients"])
