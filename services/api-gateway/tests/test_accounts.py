"""Looking credentials up: one lookup per credential at a time on a replica."""

import asyncio
from typing import Any

import pytest

from llmsafespace.contracts import Caller, Role
from llmsafespace.gateway.accounts import KEY_PREFIX, Accounts, Identity

KEY = KEY_PREFIX + "k" * 43
ROW = {"user_id": "usr-aaaaaaaaaaaa", "role": "admin", "key_id": "key-1", "expires_at": None}
WHO = Identity(Caller(user_id="usr-aaaaaaaaaaaa", role=Role.ADMIN), "key-1")


class HeldPool:
    """PostgreSQL as the lookup sees it: each query waits until `answer` is set."""

    def __init__(self) -> None:
        self.queries = 0
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()
        self.fail = False

    async def fetchrow(self, *_: object) -> dict[str, Any]:
        self.queries += 1
        self.asked.set()
        await self.answer.wait()
        if self.fail:
            raise OSError("the database went away")
        return ROW


class EmptyCache:
    """Redis after the credential's cache entry expired."""

    async def get(self, _: str) -> None:
        return None

    async def set(self, *_: object, **__: object) -> None:
        return None


def _accounts(pool: HeldPool) -> Accounts:
    return Accounts(pool, EmptyCache(), b"s" * 32, 3600)  # type: ignore[arg-type]


async def test_concurrent_lookups_of_one_credential_share_one_query() -> None:
    pool = HeldPool()
    accounts = _accounts(pool)
    callers = [asyncio.create_task(accounts.authenticate(KEY)) for _ in range(100)]
    await pool.asked.wait()
    await asyncio.sleep(0)  # let every caller reach the lookup
    pool.answer.set()
    assert await asyncio.gather(*callers) == [WHO] * 100
    assert pool.queries == 1
    assert await accounts.authenticate(KEY) == WHO  # the answer is not kept: asked again
    assert pool.queries == 2


async def test_a_caller_that_gives_up_leaves_the_lookup_to_the_others() -> None:
    pool = HeldPool()
    accounts = _accounts(pool)
    first = asyncio.create_task(accounts.authenticate(KEY))
    await pool.asked.wait()
    second = asyncio.create_task(accounts.authenticate(KEY))
    await asyncio.sleep(0)
    first.cancel()
    pool.answer.set()
    assert await second == WHO
    assert pool.queries == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_lookup_fails_its_callers_and_the_next_one_asks_again() -> None:
    pool = HeldPool()
    pool.fail = True
    accounts = _accounts(pool)
    callers = [asyncio.create_task(accounts.authenticate(KEY)) for _ in range(3)]
    await pool.asked.wait()
    pool.answer.set()
    for outcome in await asyncio.gather(*callers, return_exceptions=True):
        assert isinstance(outcome, OSError)
    pool.fail = False
    assert await accounts.authenticate(KEY) == WHO
    assert pool.queries == 2
