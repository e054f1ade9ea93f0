"""The in-memory driver keeps the `Driver` contract the services' unit tests rely on."""

import pytest

from llmsafespace.runtime import (
    DriverError,
    MemoryDriver,
    RuntimeOwner,
    RuntimeSpec,
    RuntimeUnavailable,
    UnknownRuntime,
)


async def test_a_created_sandbox_is_listed_until_destroyed_and_destroy_is_idempotent() -> None:
    driver = MemoryDriver()
    spec = RuntimeSpec(runtime_id="sb-aaaaaaaaaaaa", owner=RuntimeOwner.SANDBOX_SVC)
    handle = await driver.create(spec)
    assert handle.owner is RuntimeOwner.SANDBOX_SVC
    assert await driver.list() == [handle]
    assert await driver.inspect("sb-aaaaaaaaaaaa") == handle
    await driver.destroy("sb-aaaaaaaaaaaa")
    await driver.destroy("sb-aaaaaaaaaaaa")
    assert await driver.list() == []
    assert await driver.stats("sb-aaaaaaaaaaaa") is None


async def test_unknown_runtimes_duplicate_ids_and_a_full_driver_are_refused() -> None:
    driver = MemoryDriver(capacity=1)
    with pytest.raises(UnknownRuntime):
        await driver.create(RuntimeSpec(runtime_id="sb-aaaaaaaaaaaa", runtime="cobol:85"))
    await driver.create(RuntimeSpec(runtime_id="sb-aaaaaaaaaaaa"))
    with pytest.raises(DriverError):
        await driver.create(RuntimeSpec(runtime_id="sb-aaaaaaaaaaaa"))
    with pytest.raises(RuntimeUnavailable):
        await driver.create(RuntimeSpec(runtime_id="sb-bbbbbbbbbbbb"))
