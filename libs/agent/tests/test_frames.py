"""The frame schema both ends share: what the agent encodes, its client reads back."""

from __future__ import annotations

import io
import json

import pytest

from llmsafespace.agent.frames import TERMINAL, Op, Outcome, Reply, Usage
from llmsafespace.agent.outcome import stopped
from llmsafespace.agent.protocol import encode, read_frame_sync


def _over_the_wire(outcome: Outcome) -> Outcome:
    received = read_frame_sync(io.BytesIO(encode(outcome.frame(7))))
    assert received is not None
    frame, _ = received
    assert frame["id"] == 7
    assert frame["type"] == Reply.RESULT
    return Outcome.from_frame(frame)


def test_an_outcome_reads_back_from_its_result_frame_field_by_field() -> None:
    sent = Outcome(
        "failed",
        1,
        "exit",
        Usage(12.5, 3.25, 4096),
        result=None,
        error={"name": "ValueError", "value": "bad", "traceback": "..."},
    )
    read = _over_the_wire(sent)
    assert [getattr(read, name) for name in Outcome.__slots__ if name != "usage"] == [
        getattr(sent, name) for name in Outcome.__slots__ if name != "usage"
    ]
    assert (read.usage.wall_ms, read.usage.cpu_ms, read.usage.peak_memory_bytes) == (
        12.5,
        3.25,
        4096,
    )


@pytest.mark.parametrize(("reason", "exit_code"), [("timeout", 124), ("cancelled", 130)])
def test_a_stopped_execution_keeps_its_reason_and_exit_code_over_the_wire(
    reason: str, exit_code: int
) -> None:
    read = _over_the_wire(stopped(reason, Usage(1.0, 0.0, 0)))
    assert (read.status, read.exit_code, read.ended_by) == (reason, exit_code, reason)


@pytest.mark.parametrize("missing", ["status", "exitCode", "endedBy"])
def test_a_result_frame_without_a_required_field_is_refused(missing: str) -> None:
    frame = stopped("timeout", Usage(1.0, 0.0, 0)).frame(1)
    del frame[missing]
    with pytest.raises(KeyError):
        Outcome.from_frame(frame)


def _values(names: type) -> list[str]:
    return [value for name, value in vars(names).items() if name.isupper()]


def test_every_op_and_reply_type_is_one_distinct_name() -> None:
    for names in (Op, Reply):
        assert len(set(_values(names))) == len(_values(names))


def test_only_the_replies_that_end_a_request_are_terminal() -> None:
    assert {Reply.RESULT, Reply.PONG, Reply.ACK, Reply.ERROR} == TERMINAL
    assert set(_values(Reply)) > TERMINAL


def test_a_header_is_utf_8_with_each_lone_surrogate_as_the_replacement_character() -> None:
    """Lone surrogates come from the sandbox (a file name that is not UTF-8, a cell's
    '\\udcff'); escaped, they reached the host, which could not encode them."""
    header = {"name": "bad\udcffname", "data": "\udcff\ud800 é \U0001f600", "pair": "\ud83d\ude00"}
    sent = {"name": "bad\ufffdname", "data": "\ufffd\ufffd é \U0001f600", "pair": "\U0001f600"}
    data = encode(header)
    assert data[4:].decode("utf-8") == json.dumps(sent, separators=(",", ":"), ensure_ascii=False)
    assert read_frame_sync(io.BytesIO(data)) == (sent, b"")
