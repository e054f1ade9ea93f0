"""Figure 6, density: idle sandboxes created through the public API (8 at a time, bounded
in count and time), each having run `1` so its interpreter is up, as after real use.
Creation rate, how many are alive, PSS per sandbox (the sum of
/proc/<pid>/smaps_rollup over the sandbox's processes) and what MemAvailable lost per
sandbox. Kernel Gateway: idle kernels started the same way, PSS of each kernel process.
"""

import asyncio
import time
from dataclasses import replace

from context import Bench
from harness import Stats, create_sandboxes, delete_sandboxes, execute
from memory import available_kib, sandboxes_pss_kib
from report import Figure, Target

SETTLE = 1.0  # seconds for the interpreters to go quiet before PSS is read


async def ours(bench: Bench) -> list[Figure]:
    scale, api = bench.scale, bench.api
    before = available_kib()
    started = time.perf_counter()
    created = await create_sandboxes(api, scale.idle_sandboxes, within=scale.create_within)
    seconds = time.perf_counter() - started
    try:
        await asyncio.gather(*(execute(api, sandbox, "1") for sandbox in created))
        await asyncio.sleep(SETTLE)
        running = await api.get("/sandboxes", params={"status": "running", "limit": 1})
        alive = int(running.json()["pagination"]["total"])
        runtime_dir = bench.stack.runtime_dir
        pss = [kib / 1024 for kib in sandboxes_pss_kib(runtime_dir, created)]
        drop = (before - available_kib()) / 1024 / max(1, len(created))
    finally:
        await delete_sandboxes(api, created)
    if drop > 0:
        fit = f"~{int(available_kib() / 1024 / drop)} more would fit"
    else:  # the host's other processes freed more than the sandboxes took
        fit = "not measurable: MemAvailable rose meanwhile"
    return [
        Figure(6, "idle sandboxes alive", "count", Stats.value(alive), note=f"of {len(created)}"),
        Figure(6, "creation rate (8 in parallel)", "per s", Stats.value(len(created) / seconds)),
        Figure(6, "idle PSS per sandbox", "MiB", Stats.of(pss), target=Target(8)),
        Figure(
            6,
            "MemAvailable drop per sandbox",
            "MiB",
            Stats.value(drop, len(created)),
            note=fit,
        ),
    ]


async def theirs(bench: Bench) -> tuple[Stats | None, Stats | None]:
    """(PSS per idle kernel in MiB, kernels started per second)."""
    if bench.peer is None or bench.peer_api is None:
        return None, None
    started = time.perf_counter()
    async with bench.peer.kernels(bench.peer_api, bench.scale.idle_kernels) as kernels:
        seconds = time.perf_counter() - started
        await asyncio.gather(*(channels.execute("1") for _, channels in kernels))
        await asyncio.sleep(SETTLE)
        pss = [bench.peer.kernel_pss_kib(kernel_id) / 1024 for kernel_id, _ in kernels]
        return Stats.of(pss), Stats.value(len(kernels) / seconds)


async def measure(bench: Bench) -> list[Figure]:
    figures = await ours(bench)
    pss, rate = await theirs(bench)
    figures[1] = replace(figures[1], peer=rate)
    figures[2] = replace(figures[2], peer=pss)
    return figures
