"""What every figure module's `measure(bench)` gets: the running stack, the peer (when it
runs), an admin API client and how many samples to take."""

from dataclasses import dataclass

import httpx
from peer import KernelGateway

from llmsafespace.devstack import Stack


@dataclass(frozen=True)
class Scale:
    """Sample counts and time bounds; `QUICK` is for trying the harness out."""

    round_trips: int = 200
    tti_warm: int = 30
    tti_cold: int = 20
    tti_peer: int = 10
    load_seconds: float = 5.0
    clients: tuple[int, ...] = (1, 20, 100)
    peer_clients: tuple[int, ...] = (1, 20)
    first_outputs: int = 100
    bulk_mib: int = 10
    bulk_runs: int = 5
    file_mib: int = 100
    file_runs: int = 3
    snapshot_mib: int = 500  # the large workspace snapshotted and restored once
    idle_sandboxes: int = 100
    idle_kernels: int = 20
    create_within: float = 120.0  # seconds any one batch of creates may take
    first_charts: int = 10
    data_idle: int = 4  # data sandboxes and kernels whose PSS is read
    installs: int = 5


QUICK = Scale(
    round_trips=20,
    tti_warm=5,
    tti_cold=5,
    tti_peer=3,
    load_seconds=2.0,
    clients=(1, 20),
    peer_clients=(1, 20),
    first_outputs=20,
    bulk_runs=2,
    file_mib=20,
    file_runs=1,
    snapshot_mib=50,
    idle_sandboxes=10,
    idle_kernels=5,
    create_within=60.0,
    first_charts=3,
    data_idle=2,
    installs=2,
)


@dataclass(frozen=True)
class Bench:
    stack: Stack
    api: httpx.AsyncClient  # the admin's, connections kept alive
    peer: KernelGateway | None
    peer_api: httpx.AsyncClient | None
    scale: Scale
