"""`make soak`: the bounded load and soak run of issue 10. For --duration seconds,
--clients WebSocket clients (each on its own sandbox) stream short programs back to back
while --churn workers create, run and delete sandboxes in a loop. Then it checks, and
exits 1 on any failure: no errors; service RSS grew at most --rss-bound-mib over its
value after warm-up; and nothing leaked: sandboxes (API, runtime dir, processes,
cgroups), NATS subscriptions, JetStream consumers, DB connections, open WebSockets.

    python bench/soak.py [--duration 300] [--clients 100] [--churn 2] [--rss-bound-mib 64]

Starts its own embedded stack (127.0.0.1 only) in a temporary directory and stops it.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field

import httpx
import structlog
from harness import (
    RESOURCES,
    api_client,
    create_sandboxes,
    delete_sandboxes,
    execute,
    running_stack,
    stream_url,
)
from leaks import Finding, compare, rss_mib, sandbox_leaks, snapshot
from memory import sandbox_uid
from stream_client import connect, run_streamed
from websockets.asyncio.client import ClientConnection

from llmsafespace.devstack import Stack

LINES = 20
STREAMING = f"import time\nfor i in range({LINES}):\n    print(i, flush=True)\n    time.sleep(0.02)"
EXPECTED_BYTES = sum(len(f"{i}\n") for i in range(LINES))
SAMPLE_EVERY = 10.0  # seconds between RSS samples
REPORT_EVERY = 30.0  # seconds between progress lines
SETTLE = 30.0  # seconds for deletions and unsubscriptions to finish at the end
STOP_WAIT = 120.0  # seconds for in-flight work to end after the deadline
WARM_UP = 5.0  # seconds of everything before the baseline is taken
CREATE_WITHIN = 300.0  # seconds the client sandboxes may take to create
QUIET = 2.0  # seconds for the services to see our connections close


@dataclass
class Tally:
    executions: int = 0
    cycles: int = 0
    errors: list[str] = field(default_factory=list)
    uids: set[int] = field(default_factory=set)
    peak_rss: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    alive: int = 0  # sandboxes still creating or running after the end

    def error(self, where: str, exc: BaseException) -> None:
        self.errors.append(f"{where}: {exc!r}"[:300])


class Soak:
    def __init__(self, stack: Stack, api: httpx.AsyncClient, deadline: float) -> None:
        self.stack, self.api, self.deadline = stack, api, deadline
        self.tally = Tally()
        self.auth = {"Authorization": f"Bearer {stack.admin_key}"}
        self._loop = asyncio.get_running_loop()

    def running(self) -> bool:
        return self._loop.time() < self.deadline

    def remember(self, sandbox_id: str) -> None:
        uid = sandbox_uid(self.stack.runtime_dir, sandbox_id)
        if uid is not None:
            self.tally.uids.add(uid)

    async def stream_once(self, ws: ClientConnection) -> None:
        outcome = await run_streamed(ws, STREAMING)
        if outcome.output_bytes != EXPECTED_BYTES:
            raise RuntimeError(f"{outcome.output_bytes} bytes of {EXPECTED_BYTES}")

    async def client(self, sandbox_id: str) -> None:
        """Stream back to back until the deadline; reconnect after an error."""
        ws: ClientConnection | None = None
        try:
            while self.running():
                try:
                    if ws is None:
                        ws = await connect(stream_url(self.stack, sandbox_id), self.auth)
                    await self.stream_once(ws)
                    self.tally.executions += 1
                except Exception as exc:
                    self.tally.error(f"client {sandbox_id}", exc)
                    if ws is not None:
                        await ws.close()
                    ws = None
                    await asyncio.sleep(1.0)
        finally:
            if ws is not None:
                await ws.close()

    async def churn(self) -> None:
        """Create, run, delete, until the deadline."""
        while self.running():
            sandbox = None
            try:
                created = await self.api.post("/sandboxes", json={"resources": RESOURCES})
                if created.status_code != 201:
                    raise RuntimeError(f"create: {created.status_code} {created.text[:200]}")
                sandbox = created.json()["id"]
                self.remember(sandbox)
                await execute(self.api, sandbox, "print(1)")
                self.tally.cycles += 1
            except Exception as exc:
                self.tally.error("churn", exc)
                await asyncio.sleep(1.0)
            finally:
                if sandbox is not None:
                    deleted = await self.api.delete(f"/sandboxes/{sandbox}")
                    if deleted.status_code != 200:
                        self.tally.error("churn delete", RuntimeError(deleted.status_code))

    async def sample(self, started: float) -> None:
        """RSS peaks every SAMPLE_EVERY s; a progress line every REPORT_EVERY s."""
        reported = started
        while self.running():
            await asyncio.sleep(SAMPLE_EVERY)
            now = rss_mib(self.stack)
            for name, value in now.items():
                self.tally.peak_rss[name] = max(value, self.tally.peak_rss.get(name, 0.0))
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                rss = " ".join(f"{name}={value:.0f}" for name, value in now.items())
                print(
                    f"[soak] {reported - started:4.0f} s  executions={self.tally.executions}"
                    f"  churn={self.tally.cycles}  errors={len(self.tally.errors)}"
                    f"  load={os.getloadavg()[0]:.1f}  RSS MiB {rss}",
                    flush=True,
                )


async def settle(api: httpx.AsyncClient) -> int:
    """Wait (bounded) until no sandbox is creating or running; how many still are."""
    alive = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE):
            while True:
                alive = 0
                for status in ("creating", "running"):
                    page = await api.get("/sandboxes", params={"status": status, "limit": 1})
                    alive += int(page.json()["pagination"]["total"])
                if not alive:
                    break
                await asyncio.sleep(1.0)
    return alive


async def warm_up(
    stack: Stack, clients: int, duration: float
) -> tuple[list[str], Tally, list[Finding]]:
    """The client sandboxes, living until the run is over (the default lifetime, 300 s,
    ended them during a run of 300 s), and one short pass of everything (not measured)."""
    lifetime = int(CREATE_WITHIN + WARM_UP + duration + STOP_WAIT + SETTLE)
    async with api_client(stack) as api:
        print(f"[soak] creating {clients} sandboxes", flush=True)
        failures: list[str] = []
        sandboxes = await create_sandboxes(
            api,
            clients,
            body={"resources": RESOURCES, "timeout": lifetime},
            within=CREATE_WITHIN,
            failures=failures,
        )
        for failure in failures[:3]:
            print(f"    create failed: {failure}")
        created = Finding(
            "client sandboxes created", len(sandboxes) == clients, f"{len(sandboxes)}"
        )
        warm = Soak(stack, api, deadline=asyncio.get_running_loop().time() + WARM_UP)
        for sandbox in sandboxes:
            warm.remember(sandbox)
        await asyncio.gather(*(warm.client(sandbox) for sandbox in sandboxes), warm.churn())
    return sandboxes, warm.tally, [created]


async def measured_run(stack: Stack, sandboxes: list[str], duration: float, churn: int) -> Tally:
    """The measured run; every sandbox is deleted at its end."""
    async with api_client(stack) as api:
        run = Soak(stack, api, deadline=asyncio.get_running_loop().time() + duration)
        print(f"[soak] {duration:.0f} s: {len(sandboxes)} streaming clients, {churn} churn")
        started = time.monotonic()
        work = [run.client(sandbox) for sandbox in sandboxes]
        work += [run.churn() for _ in range(churn)]
        try:
            async with asyncio.timeout(duration + STOP_WAIT):
                await asyncio.gather(*work, run.sample(started))
        except TimeoutError:
            run.tally.errors.append(f"work still running {STOP_WAIT:.0f} s after the deadline")
        run.tally.seconds = time.monotonic() - started
        await delete_sandboxes(api, sandboxes)
        run.tally.alive = await settle(api)
    return run.tally


def print_findings(tally: Tally, findings: list[Finding]) -> int:
    print(
        f"[soak] {tally.seconds:.0f} s: {tally.executions} streamed executions "
        f"({tally.executions / tally.seconds:.1f}/s), {tally.cycles} create-run-delete cycles, "
        f"{len(tally.errors)} errors, load average {os.getloadavg()[0]:.2f}"
    )
    for error in tally.errors[:5]:
        print(f"    e.g. {error}")
    width = max(len(finding.check) for finding in findings)
    for finding in findings:
        print(f"  {'ok  ' if finding.ok else 'FAIL'} {finding.check:<{width}}  {finding.detail}")
    failed = [finding.check for finding in findings if not finding.ok]
    print(f"[soak] {'FAILED: ' + ', '.join(failed) if failed else 'passed'}")
    return 1 if failed else 0


async def main(duration: float, clients: int, churn: int, rss_bound: float) -> int:
    async with running_stack() as stack:
        sandboxes, warm, findings = await warm_up(stack, clients, duration)
        await asyncio.sleep(QUIET)  # our own HTTP connections are closed: not counted
        baseline = await snapshot(stack)
        tally = await measured_run(stack, sandboxes, duration, churn)
        await asyncio.sleep(QUIET)
        after = await snapshot(stack)
        tally.errors[:0] = warm.errors
        findings += [
            Finding("errors", not tally.errors, f"{len(tally.errors)}"),
            Finding("sandboxes alive (API)", tally.alive == 0, f"{tally.alive}"),
            *compare(baseline, after, tally.peak_rss, rss_bound),
            *await sandbox_leaks(stack.runtime_dir, tally.uids | warm.uids),
        ]
        return print_findings(tally, findings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds (10-3600)")
    parser.add_argument("--clients", type=int, default=100, help="streaming clients (1-200)")
    parser.add_argument("--churn", type=int, default=2, help="create-run-delete loops (0-16)")
    parser.add_argument("--rss-bound-mib", type=float, default=64, help="RSS growth per service")
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.exit(
        asyncio.run(
            main(
                max(10.0, min(3600.0, arguments.duration)),
                max(1, min(200, arguments.clients)),
                max(0, min(16, arguments.churn)),
                arguments.rss_bound_mib,
            )
        )
    )
