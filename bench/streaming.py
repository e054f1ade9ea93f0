"""Figure 4, live output over the WebSocket: first-output latency (from sending the
execution to its first `output`, code and command mode) and a program writing 10 MiB
to stdout, every byte counted, to the end of the execution. Kernel Gateway: the same
programs over its channels (first `stream` message; `execute_reply` and idle)."""

from context import Bench
from harness import PRINT1, Stats, bulk_program, stream_url
from report import Figure, Target
from stream_client import Outcome, connect, run_streamed

RESOURCES = {"memory": "256Mi"}
WARM_UP = 3


def first_outputs(outcomes: list[Outcome]) -> list[float]:
    return [outcome.first_output_ms for outcome in outcomes if outcome.first_output_ms is not None]


def bulk_seconds(outcomes: list[Outcome], mib: int) -> tuple[list[float], int]:
    """Seconds per run, and how many runs lost bytes."""
    incomplete = sum(1 for o in outcomes if o.output_bytes != mib * 2**20 or o.truncated)
    return [outcome.total_ms / 1000 for outcome in outcomes], incomplete


async def measure(bench: Bench) -> list[Figure]:
    scale = bench.scale
    bulk = bulk_program(scale.bulk_mib)
    created = await bench.api.post("/sandboxes", json={"resources": RESOURCES})
    created.raise_for_status()
    sandbox = created.json()["id"]
    try:
        auth = {"Authorization": f"Bearer {bench.stack.admin_key}"}
        ws = await connect(stream_url(bench.stack, sandbox), auth)
        try:
            for _ in range(WARM_UP):
                await run_streamed(ws, PRINT1)
            code = [await run_streamed(ws, PRINT1) for _ in range(scale.first_outputs)]
            command = [
                await run_streamed(ws, "echo 1", "command") for _ in range(scale.first_outputs)
            ]
            await run_streamed(ws, bulk_program(1))
            ours_bulk = [await run_streamed(ws, bulk) for _ in range(scale.bulk_runs)]
        finally:
            await ws.close()
    finally:
        await bench.api.delete(f"/sandboxes/{sandbox}")
    peer_first: list[Outcome] = []
    peer_bulk: list[Outcome] = []
    if bench.peer is not None and bench.peer_api is not None:
        kernel_id, channels = await bench.peer.new_kernel(bench.peer_api)
        try:
            for _ in range(WARM_UP):
                await channels.execute(PRINT1)
            peer_first = [await channels.execute(PRINT1) for _ in range(scale.first_outputs)]
            await channels.execute(bulk_program(1))
            peer_bulk = [await channels.execute(bulk) for _ in range(scale.bulk_runs)]
        finally:
            await bench.peer.delete_kernel(bench.peer_api, kernel_id, channels)
    first_peer = Stats.of(first_outputs(peer_first))
    ours_seconds, ours_lost = bulk_seconds(ours_bulk, scale.bulk_mib)
    peer_seconds, peer_lost = bulk_seconds(peer_bulk, scale.bulk_mib)
    lost = [f"{ours_lost} runs incomplete"] if ours_lost else []
    lost += [f"KG {peer_lost} runs incomplete"] if peer_lost else []
    mib = scale.bulk_mib
    return [
        Figure(
            4, "first output, code", "ms", Stats.of(first_outputs(code)), first_peer, Target(10)
        ),
        Figure(4, "first output, command", "ms", Stats.of(first_outputs(command)), first_peer),
        Figure(
            4,
            f"{mib} MiB streamed to the end",
            "s",
            Stats.of(ours_seconds),
            Stats.of(peer_seconds),
            Target(0.5) if mib == 10 else None,
            ", ".join(lost),
        ),
    ]
