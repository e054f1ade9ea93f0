"""The soak's leak checks read what the services really export."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from llmsafespace.gateway.observability import ACTIVE

BENCH = Path(__file__).parent.parent / "bench"


def test_the_open_websocket_count_is_read_from_the_gateways_metric(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # bench's modules import each other by name
    leaks = importlib.import_module("leaks")
    websockets = ACTIVE.labels(type="websocket")
    before = leaks.open_websockets(generate_latest().decode())
    assert before is not None
    websockets.inc(3)
    try:
        assert leaks.open_websockets(generate_latest().decode()) == before + 3
    finally:
        websockets.dec(3)
