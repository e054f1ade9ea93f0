"""A streamed execution's messages: the `started` marker waits for the first flush but
always leads, in `seq` order, whatever comes first."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any, cast

import pytest
import uvloop
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import EndedBy, ExecutionResult, ExecutionStatus
from llmsafespace.exec_svc import output as module
from llmsafespace.exec_svc.output import OutputPublisher

STARTED = datetime(2026, 1, 1, tzinfo=UTC)


class Connection:
    """What the publisher uses of a NATS connection: publishes, plain or to JetStream,
    recorded in the order they were made."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def jetstream(self) -> "Connection":
        return self

    async def publish(self, subject: str, payload: bytes) -> None:
        self.sent.append(json.loads(payload))


def publisher() -> tuple[OutputPublisher, Connection]:
    connection = Connection()
    made = OutputPublisher(cast(NatsClient, connection), "sb-aaaaaaaaaaaa", "exec-1", 1 << 20)
    return made, connection


def result() -> ExecutionResult:
    return ExecutionResult(
        execution_id="exec-1",
        sandbox_id="sb-aaaaaaaaaaaa",
        status=ExecutionStatus.COMPLETED,
        exit_code=0,
        stdout="",
        stderr="",
        ended_by=EndedBy.EXIT,
        started_at=STARTED,
        completed_at=STARTED,
        duration_ms=1.0,
    )


async def test_the_start_marker_leaves_with_the_first_output() -> None:
    output, connection = publisher()
    await output.started(30, STARTED)
    assert connection.sent == []
    await output.output("stdout", "1\n")
    assert connection.sent == [], "a quick execution's output leaves with its end"
    await output.ended(result())
    assert [(sent["kind"], sent["seq"]) for sent in connection.sent] == [
        ("started", 1),
        ("output", 2),
        ("ended", 3),
    ]


async def test_a_silent_execution_still_starts_before_it_ends() -> None:
    output, connection = publisher()
    await output.started(30, STARTED)
    await output.ended(result())
    assert [sent["kind"] for sent in connection.sent] == ["started", "ended"]


async def test_a_first_output_leaves_without_waiting_for_the_end_or_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "FLUSH_INTERVAL", 3600.0)  # only FIRST_WAIT can end the wait
    output, connection = publisher()
    await output.started(30, STARTED)
    await output.output("stdout", "1\n")
    async with asyncio.timeout(30):
        while not connection.sent:  # noqa: ASYNC110 (the publisher's timer sends it)
            await asyncio.sleep(module.FIRST_WAIT)
    assert [sent["kind"] for sent in connection.sent] == ["started", "output"]


def test_output_is_flushed_on_uvloop_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services run on uvloop, whose `call_later` answers a delay under half a
    millisecond with a plain handle (no `when()`): a burst's second write found one."""
    monkeypatch.setattr(module, "FIRST_WAIT", 0.0001)

    async def run() -> list[dict[str, Any]]:
        output, connection = publisher()
        await output.started(30, STARTED)
        await output.output("stdout", "1\n")
        await output.output("stdout", "2\n")
        await output.ended(result())
        return connection.sent

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sent = runner.run(run())
    assert [(each["kind"], each.get("content")) for each in sent] == [
        ("started", None),
        ("output", "1\n2\n"),
        ("ended", None),
    ]
