"""Pause and resume on the local driver: the sandbox's cgroup frozen and thawed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmsafespace.runtime import AgentClient, Handle, Pauses, RuntimeSpec
from llmsafespace.runtime.local import LocalDriver

BUSY_LOOP = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])"
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
async def handle(driver: LocalDriver) -> AsyncIterator[Handle]:
    handle = await driver.create(RuntimeSpec(runtime_id="pausing"))
    yield handle
    await driver.destroy("pausing")


async def _cpu_ms(driver: LocalDriver) -> float:
    stats = await driver.stats("pausing")
    assert stats is not None
    assert stats.cpu_ms is not None
    return stats.cpu_ms


async def _cpu_grows(driver: LocalDriver) -> None:
    """Returns once the sandbox's CPU time has grown (fails after WAIT_SECONDS)."""
    start = await _cpu_ms(driver)
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while await _cpu_ms(driver) <= start:
        assert asyncio.get_running_loop().time() < deadline, "CPU time did not grow"
        await asyncio.sleep(0.05)


async def test_a_paused_sandbox_uses_no_cpu_and_keeps_its_interpreter_state(
    driver: LocalDriver, handle: Handle
) -> None:
    assert isinstance(driver, Pauses)
    client = await AgentClient.connect(handle.endpoint, handle.token)
    try:
        await client.run_code("kept = 41", timeout=10)
        await client.run_code(BUSY_LOOP, timeout=10)
    finally:
        await client.close()
    await _cpu_grows(driver)  # the busy loop runs
    await driver.pause("pausing")
    frozen = await _cpu_ms(driver)
    await asyncio.sleep(1.0)  # a busy loop would use ~1000 ms of CPU in this second
    assert await _cpu_ms(driver) == frozen
    await driver.resume("pausing")
    await _cpu_grows(driver)
    client = await AgentClient.connect(handle.endpoint, handle.token)
    try:
        result = await client.run_code("kept + 1", timeout=10)
    finally:
        await client.close()
    assert result.result == "42"


async def test_a_paused_sandbox_can_be_destroyed(driver: LocalDriver) -> None:
    await driver.create(RuntimeSpec(runtime_id="frozen-end"))
    await driver.pause("frozen-end")
    await driver.destroy("frozen-end")
    assert await driver.inspect("frozen-end") is None


async def test_a_sandbox_says_whether_it_is_paused(driver: LocalDriver, handle: Handle) -> None:
    """What a reconcile compares with the row: frozen from the pause to the resume."""
    assert not await driver.is_paused("pausing")
    await driver.pause("pausing")
    assert await driver.is_paused("pausing")
    await driver.resume("pausing")
    assert not await driver.is_paused("pausing")
    assert not await driver.is_paused("no-such-sandbox")
