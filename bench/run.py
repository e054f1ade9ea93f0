"""`make bench`: every benchmark against one embedded stack, side by side with a Jupyter
Kernel Gateway started on 127.0.0.1 for the same run; prints the table and writes
bench/results/bench-<time>.json. Figures are printed, never asserted.

    python bench/run.py [--only round_trip,streaming] [--no-peer] [--quick]
"""

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType

import cpu
import density
import file_transfer
import interpreter
import packages
import round_trip
import snapshots
import streaming
import structlog
import throughput
import time_to_interactive
from context import QUICK, Bench, Scale
from harness import api_client, running_stack
from peer import KernelGateway
from report import Figure, Run, table

MODULES: dict[str, ModuleType] = {
    "round_trip": round_trip,  # figures 1 and 7
    "time_to_interactive": time_to_interactive,  # 2
    "throughput": throughput,  # 3
    "streaming": streaming,  # 4
    "file_transfer": file_transfer,  # 5
    "density": density,  # 6
    "cpu": cpu,  # 8
    "interpreter": interpreter,  # 9
    "packages": packages,  # 10
    "snapshots": snapshots,  # 11
}
MODULE_TIMEOUT = 240.0  # seconds; a module past it is reported as failed, the run goes on
# (a module may set its own `TIMEOUT`)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def peer_gateway(enabled: bool) -> AsyncIterator[KernelGateway | None]:
    if not enabled:
        yield None
        return
    gateway = KernelGateway()
    try:
        await gateway.start()
        yield gateway
    finally:
        await gateway.stop()


async def measure_all(bench: Bench, names: list[str], run: Run) -> None:
    for name in names:
        measure: Callable[[Bench], Awaitable[list[Figure]]] = MODULES[name].measure
        timeout: float = getattr(MODULES[name], "TIMEOUT", MODULE_TIMEOUT)
        started = time.perf_counter()
        progress(f"[bench] {name} ... (load {os.getloadavg()[0]:.2f})")
        try:
            async with asyncio.timeout(timeout):
                run.add(await measure(bench))
        except Exception as exc:
            run.notes.append(f"{name} failed: {exc!r}"[:500])
            progress(f"[bench] {name} failed: {exc!r}")
        progress(f"[bench] {name} done in {time.perf_counter() - started:.0f} s")


async def main(names: list[str], peer: bool, scale: Scale) -> None:
    run = Run()
    progress("[bench] starting the embedded stack and the Kernel Gateway")
    async with (
        running_stack() as stack,
        peer_gateway(peer) as gateway,
        api_client(stack) as api,
        contextlib.AsyncExitStack() as exits,
    ):
        peer_api = None
        if gateway is not None:
            peer_api = await exits.enter_async_context(gateway.client())
        await measure_all(Bench(stack, api, gateway, peer_api, scale), names, run)
    conditions = {
        "modules": names,
        "scale": dataclasses.asdict(scale),
        "peer": f"jupyter_kernel_gateway {gateway.version}" if gateway else None,
        "fairness": [
            "both sides on 127.0.0.1, one kept-alive connection per client",
            "TCP_NODELAY on both sides' sockets (Kernel Gateway's upgraded WebSockets too)",
            "WebSocket compression off on both sides",
            "Kernel Gateway's IOPub rate limit lifted (ours has none)",
            "Kernel Gateway kernels run unsandboxed; ours run in bubblewrap sandboxes",
        ],
    }
    path = run.write(conditions)
    load = os.getloadavg()
    print()
    print(table(run.figures))
    print("ours/KG compares medians: below 1 is better for times and memory, above 1 for rates.")
    print()
    for figure in run.figures:
        for example in figure.examples:
            print(f"{figure.name}: e.g. {example}")
    for note in run.notes:
        print(f"note: {note}")
    print(
        f"load average before {run.load_before[0]:.2f}, after {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} on {os.cpu_count()} CPUs; {time.time() - run.started:.0f} s in all"
    )
    print(f"results: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(MODULES), help="comma-separated modules")
    parser.add_argument("--no-peer", action="store_true", help="skip the Kernel Gateway")
    parser.add_argument("--quick", action="store_true", help="few samples (trying it out)")
    arguments = parser.parse_args()
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; choose from {', '.join(MODULES)}")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(chosen, not arguments.no_peer, QUICK if arguments.quick else Scale()))
