"""Issue 20's figures, snapshots: the time to snapshot and to restore a 10 MiB workspace,
restore → first result against a cold create → first result, the bytes stored for ten
snapshots of near-identical workspaces (the deduplication ratio), and one large workspace
(500 MiB; 50 with --quick) snapshotted and restored with sandbox-svc's peak RSS, which
must not grow with it (the bytes stream through one chunk at a time)."""

import time

import httpx
from context import Bench
from harness import Stats
from memory import peak_rss_kib
from report import Figure

from llmsafespace.devstack import Stack

FIGURE = 11
WORKSPACE_MIB = 10
SNAPSHOTS = 10
FILL = (
    "import os, pathlib\n"
    f"pathlib.Path('/workspace/data.bin').write_bytes(os.urandom({WORKSPACE_MIB} * 2**20))\n"
    "pathlib.Path('/workspace/version.txt').write_text('0000')"
)
SANDBOX = {"useWarmPool": False, "timeout": 600, "resources": {"ephemeralStorage": "256Mi"}}
LARGE = {
    "useWarmPool": False,
    "timeout": 900,
    "resources": {"memory": "2Gi", "ephemeralStorage": "2Gi"},
}
BLOCK_MIB = 8


def _sandbox_svc_peak_mib(stack: Stack) -> float:
    process = stack.services["sandbox-svc"].process
    return peak_rss_kib(process.pid) / 1024 if process is not None else 0.0


async def _ok(response: httpx.Response) -> dict[str, object]:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:200]}")
    body: dict[str, object] = response.json()
    return body


async def _run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> None:
    await _ok(
        await api.post(f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": code})
    )


async def _first_result(api: httpx.AsyncClient, body: dict[str, object]) -> tuple[float, str]:
    """(seconds from the create to the first execution's result, the sandbox's id)."""
    started = time.perf_counter()
    sandbox = await _ok(await api.post("/sandboxes", json=body))
    await _run(api, str(sandbox["id"]), "1")
    return time.perf_counter() - started, str(sandbox["id"])


async def measure(bench: Bench) -> list[Figure]:
    api, runs = bench.api, max(3, bench.scale.file_runs)
    source = str((await _ok(await api.post("/sandboxes", json=SANDBOX)))["id"])
    snapshots: list[dict[str, object]] = []
    sandboxes: list[str] = []
    try:
        await _run(api, source, FILL)
        took = []
        for version in range(SNAPSHOTS):
            await _run(
                api, source, f"pathlib.Path('/workspace/version.txt').write_text('{version:04}')"
            )
            started = time.perf_counter()
            snapshots.append(
                await _ok(await api.post(f"/sandboxes/{source}/snapshots", json={"name": "bench"}))
            )
            took.append(time.perf_counter() - started)
        restores, colds = [], []
        for _ in range(runs):
            seconds, restored = await _first_result(
                api, {**SANDBOX, "snapshot": snapshots[0]["id"]}
            )
            restores.append(seconds)
            sandboxes.append(restored)
            seconds, cold = await _first_result(api, SANDBOX)
            colds.append(seconds)
            sandboxes.append(cold)
    finally:
        for sandbox_id in [source, *sandboxes]:
            await api.delete(f"/sandboxes/{sandbox_id}")
        for snapshot in snapshots:
            await api.delete(f"/snapshots/{snapshot['id']}")
    large = await _large(bench)
    logical = sum(int(str(snapshot["sizeBytes"])) for snapshot in snapshots)
    stored = sum(int(str(snapshot["storedBytes"])) for snapshot in snapshots)
    dedup = f"{stored / 2**20:.1f} MiB stored for {logical / 2**20:.1f} MiB of snapshots"
    return [
        Figure(FIGURE, f"snapshot of a {WORKSPACE_MIB} MiB workspace", "s", Stats.of(took)),
        Figure(FIGURE, "restore → first result", "s", Stats.of(restores)),
        Figure(FIGURE, "cold create → first result", "s", Stats.of(colds)),
        Figure(
            FIGURE,
            f"stored / logical bytes, {SNAPSHOTS} near-identical snapshots",
            "ratio",
            Stats.value(stored / logical),
            note=dedup,
        ),
        *large,
    ]


async def _large(bench: Bench) -> list[Figure]:
    """One snapshot and one restore of a `snapshot_mib` workspace, and sandbox-svc's peak
    RSS before and after."""
    api, mib = bench.api, bench.scale.snapshot_mib
    fill = (
        "import os\n"
        "with open('/workspace/large.bin', 'wb') as out:\n"
        f"    for _ in range({mib // BLOCK_MIB}):\n"
        f"        out.write(os.urandom({BLOCK_MIB} * 2**20))"
    )
    source = str((await _ok(await api.post("/sandboxes", json=LARGE)))["id"])
    snapshot: dict[str, object] = {}
    restored = ""
    try:
        await _run(api, source, fill)
        before = _sandbox_svc_peak_mib(bench.stack)
        started = time.perf_counter()
        snapshot = await _ok(
            await api.post(f"/sandboxes/{source}/snapshots", json={"name": "large"})
        )
        took = time.perf_counter() - started
        started = time.perf_counter()
        restored = str(
            (await _ok(await api.post("/sandboxes", json={**LARGE, "snapshot": snapshot["id"]})))[
                "id"
            ]
        )
        restore = time.perf_counter() - started
        after = _sandbox_svc_peak_mib(bench.stack)
    finally:
        for sandbox_id in (source, restored):
            if sandbox_id:
                await api.delete(f"/sandboxes/{sandbox_id}")
        if snapshot:
            await api.delete(f"/snapshots/{snapshot['id']}")
    return [
        Figure(FIGURE, f"snapshot of a {mib} MiB workspace", "s", Stats.value(took)),
        Figure(FIGURE, f"restore of a {mib} MiB workspace", "s", Stats.value(restore)),
        Figure(
            FIGURE,
            f"peak RSS sandbox-svc after {mib} MiB through it",
            "MiB",
            Stats.value(after),
            note=f"{before:.0f} MiB before",
        ),
    ]
