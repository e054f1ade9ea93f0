"""`AsyncSandbox` against the real stack: the implementation `Sandbox` wraps."""

import asyncio
import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from typing import Any

import pytest

from llmsafespace.sdk import (
    AsyncSandbox,
    AsyncWarmPool,
    Complete,
    NotFoundError,
    SandboxError,
    Stderr,
    Stdout,
)

pytestmark = pytest.mark.stack


async def test_create_run_and_terminate_on_exit(client_env) -> None:
    async with await AsyncSandbox.create(timeout=600, metadata={"task": "async"}) as sandbox:
        assert (await sandbox.run_code("y = 2")).success
        result = await sandbox.run_code("print(y * 21)")
        assert (result.stdout, result.status.value) == ("42\n", "completed")
        command = await sandbox.run_command("pwd; exit 7", cwd="/tmp")
        assert (command.stdout, command.exit_code) == ("/tmp\n", 7)
        assert (await sandbox.info()).metadata == {"task": "async"}
        assert (await sandbox.refresh()).status.value == "running"
        sandbox_id = sandbox.id
    attached = await AsyncSandbox.connect(sandbox_id)
    try:
        assert attached.info_cached.status.value == "terminated"
        with pytest.raises(SandboxError):
            await attached.run_command("true")
    finally:
        await attached.close()


async def test_concurrent_executions_on_separate_sandboxes(client_env) -> None:
    first, second = await asyncio.gather(AsyncSandbox.create(), AsyncSandbox.create())
    async with first, second:
        results = await asyncio.gather(
            first.run_command("echo one"), second.run_command("echo two")
        )
        assert [result.stdout for result in results] == ["one\n", "two\n"]


async def test_a_call_looks_for_no_module(
    shared: AsyncSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once warm, an SDK call imports nothing: a module that is not installed is searched
    for on sys.path at every attempt (httpcore tries `sniffio` on each request), ~1 ms a
    call."""
    await shared.run_code("1")
    searched: list[str] = []

    class Watch(MetaPathFinder):
        def find_spec(self, name: str, *_: Any) -> ModuleSpec | None:
            searched.append(name)
            return None

    monkeypatch.setattr(sys, "meta_path", [Watch(), *sys.meta_path])
    for _ in range(3):
        await shared.run_code("1")
    assert searched == []


async def test_connect_to_an_unknown_sandbox_is_not_found(client_env) -> None:
    with pytest.raises(NotFoundError):
        await AsyncSandbox.connect("sb-doesnotexist00")


async def test_list_status_and_set_timeout(client_env, shared: AsyncSandbox, requires) -> None:
    requires("GET", "/sandboxes")
    page = await AsyncSandbox.list(metadata={"suite": "sdk"}, status="running", limit=100)
    assert shared.id in [item.id for item in page.sandboxes]
    assert page.pagination.total >= 1
    requires("GET", "/sandboxes/{id}/status")
    report = await shared.status()
    assert report.status.value == "running"
    assert report.memory_limit_bytes is not None
    assert report.memory_bytes is not None
    assert 0 < report.memory_bytes <= report.memory_limit_bytes
    requires("POST", "/sandboxes/{id}/timeout")
    assert (await shared.set_timeout(1800)).status.value == "running"


async def test_streamed_code_yields_chunks_then_a_complete_result(
    shared: AsyncSandbox, requires_stream
) -> None:
    seen: list[str] = []
    stream = shared.stream_code(
        "import sys\nprint('a', flush=True)\nprint('b', file=sys.stderr, flush=True)",
        on_stdout=seen.append,
    )
    events = [event async for event in stream]
    assert "".join(e.text for e in events if isinstance(e, Stdout)) == "a\n"
    assert "".join(e.text for e in events if isinstance(e, Stderr)) == "b\n"
    assert seen == ["a\n"]
    final = events[-1]
    assert isinstance(final, Complete)
    assert final.result.success
    assert final.result.stdout == "a\n"
    assert stream.result == final.result


async def test_streamed_command_reports_its_exit_code(
    shared: AsyncSandbox, requires_stream
) -> None:
    result = await shared.stream_command("echo $X; exit 5", env={"X": "hi"}).wait()
    assert (result.stdout, result.exit_code, result.status.value) == ("hi\n", 5, "failed")


async def test_a_streamed_command_reads_what_send_stdin_sends(
    shared: AsyncSandbox, requires_stream
) -> None:
    stream = shared.stream_command("cat; echo end", stdin=True, timeout=60)
    waiting = asyncio.create_task(stream.wait())
    big = "x" * (150 * 1024) + "\n"  # past one message's 64 KiB: sent in pieces, in order
    await stream.send_stdin("first\n")
    await stream.send_stdin(big, eof=True)
    result = await waiting
    assert result.stdout == "first\n" + big + "end\n"
    await stream.send_stdin("too late")  # the command has ended: nothing is sent


async def test_a_streamed_execution_can_be_cancelled(shared: AsyncSandbox, requires_stream) -> None:
    stream = shared.stream_command("echo start; sleep 30", timeout=60)
    async for event in stream:
        if isinstance(event, Stdout):
            await shared.cancel(stream.execution_id)
        if isinstance(event, Complete):
            assert event.result.status.value == "cancelled"
    assert stream.result is not None
    assert stream.result.status.value == "cancelled"


async def test_warm_pools_create_get_list_scale_status_delete(client_env, requires) -> None:
    requires("GET", "/warmpools")
    pool = await AsyncWarmPool.create("sdk-async-pool", min_size=0, max_size=2)
    try:
        assert (pool.name, pool.info.spec.max_size) == ("sdk-async-pool", 2)
        assert (await AsyncWarmPool.get("sdk-async-pool")).info.spec.min_size == 0
        assert "sdk-async-pool" in [item.name for item in await AsyncWarmPool.list()]
        await pool.scale(max_size=3)
        assert pool.info.spec.max_size == 3
        assert (await pool.status()).desired_pods >= 0
    finally:
        await pool.delete()
    with pytest.raises(NotFoundError):
        await AsyncWarmPool.get("sdk-async-pool")
