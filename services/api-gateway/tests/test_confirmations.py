"""Credentials trusted without a Redis round trip, on a real server: trusted only while
Redis's invalidations are heard, and forgotten as soon as one names them."""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from llmsafespace.contracts import Caller, Role
from llmsafespace.devstack.redis_server import RedisServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.gateway import confirmations as module
from llmsafespace.gateway.confirmations import Confirmations
from llmsafespace.gateway.ratelimit import RateLimiter, RateLimits

PREFIX = "llmsafespace:auth:"
ENTRY = PREFIX + "hash:0123"
ADMIN = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.ADMIN)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with scratch_server(RedisServer, "gateway-confirmations-test-") as url:
        yield url


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def hearing(redis_url: str) -> AsyncIterator[Confirmations]:
    confirmations = Confirmations(redis_url, PREFIX)
    confirmations.start()
    await until(lambda: confirmations._hearing)
    yield confirmations
    await confirmations.close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 (a state another task changes)
            await asyncio.sleep(0.005)


async def made(cache: aioredis.Redis, hearing: Confirmations, *entries: str) -> None:
    """Create `entries`, and wait until their creation is heard (it invalidates them)."""
    heard = hearing.ticket()
    for entry in entries:
        await cache.set(entry, "{}")
    await until(lambda: hearing.ticket() == heard + len(entries))


async def exists_calls(cache: aioredis.Redis) -> int:
    stats = await cache.info("commandstats")
    return int(stats.get("cmdstat_exists", {}).get("calls", 0))


async def test_a_confirmed_entry_is_trusted_until_redis_reports_a_change_to_it(
    cache: aioredis.Redis, hearing: Confirmations
) -> None:
    await made(cache, hearing, ENTRY, PREFIX + "hash:other")
    hearing.confirmed(ENTRY, hearing.ticket())
    hearing.confirmed(PREFIX + "hash:other", hearing.ticket())
    assert hearing.trusted(ENTRY)
    await cache.delete(ENTRY)  # what revoking a key does
    await until(lambda: not hearing.trusted(ENTRY))
    assert hearing.trusted(PREFIX + "hash:other"), "only the entry named is forgotten"


async def test_an_answer_overtaken_by_an_invalidation_is_not_trusted(
    cache: aioredis.Redis, hearing: Confirmations
) -> None:
    ticket = hearing.ticket()  # asked before the entry changed, answered after
    await cache.delete(ENTRY, PREFIX + "hash:unrelated")
    await cache.set(ENTRY, "{}")
    await until(lambda: hearing.ticket() != ticket)
    hearing.confirmed(ENTRY, ticket)
    assert not hearing.trusted(ENTRY)


async def test_nothing_is_trusted_while_invalidations_are_not_heard(
    cache: aioredis.Redis, hearing: Confirmations, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "RETRY_SECONDS", 0.2)
    hearing.confirmed(ENTRY, hearing.ticket())
    assert hearing.trusted(ENTRY)
    await cache.client_kill_filter(_type="pubsub")  # the listening connection
    await until(lambda: not hearing._hearing)
    assert not hearing.trusted(ENTRY)
    hearing.confirmed(ENTRY, hearing.ticket())
    assert not hearing.trusted(ENTRY), "a confirmation while deaf is not kept"
    await until(lambda: hearing._hearing)  # it listens again, and trusts again
    hearing.confirmed(ENTRY, hearing.ticket())
    assert hearing.trusted(ENTRY)


async def test_trust_lapses_after_its_time(
    hearing: Confirmations, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "TRUST_SECONDS", 0.05)
    hearing.confirmed(ENTRY, hearing.ticket())
    assert hearing.trusted(ENTRY)
    await asyncio.sleep(0.1)
    assert not hearing.trusted(ENTRY)


async def test_an_uncounted_caller_is_confirmed_by_redis_once_then_trusted(
    cache: aioredis.Redis, hearing: Confirmations
) -> None:
    limiter = RateLimiter(cache, RateLimits(), hearing)
    await made(cache, hearing, ENTRY)
    before = await exists_calls(cache)
    answers = [await limiter.hit(ADMIN, "execute_code", confirm=ENTRY) for _ in range(5)]
    assert answers == [(None, True)] * 5
    assert await exists_calls(cache) == before + 1
    await cache.delete(ENTRY)
    await until(lambda: not hearing.trusted(ENTRY))
    assert await limiter.hit(ADMIN, "execute_code", confirm=ENTRY) == (None, False)


async def test_a_counted_caller_asks_redis_every_time(
    cache: aioredis.Redis, hearing: Confirmations
) -> None:
    limiter = RateLimiter(cache, RateLimits(), hearing)
    user = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.USER)
    await cache.set(ENTRY, "{}")
    hearing.confirmed(ENTRY, hearing.ticket())
    quotas = [(await limiter.hit(user, "execute_code", confirm=ENTRY))[0] for _ in range(3)]
    assert [quota.remaining for quota in quotas if quota] == [2999, 2998, 2997]


async def test_an_answer_to_a_question_asked_before_hearing_began_is_not_trusted(
    redis_url: str,
) -> None:
    """What changed before the replica listened (e.g. while it reconnected) was not
    heard: a question asked then is void."""
    confirmations = Confirmations(redis_url, PREFIX)
    ticket = confirmations.ticket()
    confirmations.start()
    try:
        await until(lambda: confirmations._hearing)
        confirmations.confirmed(ENTRY, ticket)
        assert not confirmations.trusted(ENTRY)
    finally:
        await confirmations.close()


async def test_requests_needing_the_same_confirmation_at_once_ask_redis_once(
    cache: aioredis.Redis, hearing: Confirmations
) -> None:
    """When a trust lapses, a hundred sockets of one agent need it again at once."""
    limiter = RateLimiter(cache, RateLimits(), hearing)
    await made(cache, hearing, ENTRY)
    before = await exists_calls(cache)
    hits = [limiter.hit(ADMIN, "execute_code", confirm=ENTRY) for _ in range(100)]
    assert await asyncio.gather(*hits) == [(None, True)] * 100
    assert await exists_calls(cache) == before + 1
