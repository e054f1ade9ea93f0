"""For every test run (any path): a summary line of the tests skipped for lack of a host
feature, so a missing gVisor or network mode is noticed rather than lost among the skips;
and a nats-server of a test's own, for the unit tests that need the real bus's behaviour.

A skip reason that starts with `HOST_FEATURE` ("host feature: ") is of that kind."""

import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from _pytest.terminal import TerminalReporter
from nats.aio.client import Client as NatsClient

from llmsafespace.devstack.ports import free_port

HOST_FEATURE = "host feature: "


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    reasons = Counter(
        reason.removeprefix(HOST_FEATURE)
        for report in terminalreporter.stats.get("skipped", [])
        if (reason := _reason(report)).startswith(HOST_FEATURE)
    )
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.write_sep(
        "=", f"{total} skipped for lack of a host feature", yellow=True, bold=True
    )
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:4d} x {reason}")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A nats-server of the test's own, JetStream on (a fresh store in its tmp dir)."""
    port = free_port()
    binary = Path(sys.executable).parent / "nats-server"
    server = subprocess.Popen(
        [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.02)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[NatsClient]:
    """A client of `nats_url`'s server."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()
