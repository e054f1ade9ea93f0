"""What a long run may leave behind, read from the outside: service memory and file
descriptors, NATS subscriptions and JetStream consumers (NATS's monitoring endpoint),
PostgreSQL connections, the gateway's open WebSockets, and sandboxes (API, runtime dir,
processes, cgroups)."""

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from memory import open_fds, pids_with_argument, rss_kib
from prometheus_client.parser import text_string_to_metric_families

from llmsafespace.devstack import Stack
from llmsafespace.runtime import LocalConfig
from llmsafespace.runtime.local.cgroups import PREFIX, Cgroups
from llmsafespace.runtime.local.layout import Layout
from llmsafespace.runtime.local.mounts import attached_under
from llmsafespace.runtime.local.processes import live_pids

# The services' asyncpg pools together (gateway, sandbox-svc, exec-svc, audit-svc: 10
# each; warmpool-svc: 20): more open connections than that cannot all be pooled ones.
DB_POOLS_MAX = 60
FD_SLACK = 4  # descriptors a service may open for good after warm-up (caches, pools)
RECHECK = 2.0  # seconds before a sandbox leak is confirmed (another stack may be mid-teardown)


@dataclass
class Snapshot:
    rss_mib: dict[str, float] = field(default_factory=dict)
    fds: dict[str, Counter[str]] = field(default_factory=dict)
    subscriptions: dict[str, int] | None = None  # per NATS connection name
    consumers: int | None = None
    db_connections: int | None = None
    db_in_transaction: int | None = None
    websockets: float | None = None

    @property
    def total_subscriptions(self) -> int | None:
        return None if self.subscriptions is None else sum(self.subscriptions.values())


def service_pids(stack: Stack) -> dict[str, int]:
    return {
        name: service.process.pid
        for name, service in stack.services.items()
        if service.process is not None
    }


def rss_mib(stack: Stack) -> dict[str, float]:
    return {name: rss_kib(pid) / 1024 for name, pid in service_pids(stack).items()}


def nats_monitor(stack: Stack) -> str | None:
    """The monitoring URL of the stack's own nats-server (from its `-m` argument)."""
    process = stack.servers.nats.process
    if process is None:
        return None  # an external NATS (NATS_URL): not ours to inspect
    arguments = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
    if b"-m" not in arguments:
        return None
    return f"http://127.0.0.1:{int(arguments[arguments.index(b'-m') + 1])}"


def open_websockets(metrics: str) -> float | None:
    """The gateway's open WebSockets from its ``/metrics`` text (``api_active_connections``
    with ``type="websocket"``, labels in any order); None when it exports none."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "api_active_connections" and sample.labels.get("type") == "websocket":
                return sample.value
    return None


async def snapshot(stack: Stack) -> Snapshot:
    taken = Snapshot(rss_mib=rss_mib(stack))
    taken.fds = {name: open_fds(pid) for name, pid in service_pids(stack).items()}
    async with httpx.AsyncClient(timeout=10) as client:
        monitor = nats_monitor(stack)
        if monitor is not None:
            connz = (await client.get(f"{monitor}/connz", params={"limit": 1024})).json()
            subscriptions: dict[str, int] = {}
            for connection in connz.get("connections", []):
                name = connection.get("name") or "unnamed"
                subscriptions[name] = subscriptions.get(name, 0) + connection["subscriptions"]
            taken.subscriptions = subscriptions
            taken.consumers = int((await client.get(f"{monitor}/jsz")).json().get("consumers", 0))
        metrics = await client.get(stack.api_url.removesuffix("/api/v1") + "/metrics")
        taken.websockets = open_websockets(metrics.text)
    connection = await asyncpg.connect(stack.servers.postgres.url)
    try:
        rows = await connection.fetch(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    taken.db_connections = len(rows)
    taken.db_in_transaction = sum(1 for row in rows if row["state"] == "idle in transaction")
    return taken


def _uid_of(pid: int) -> int | None:
    try:
        return Path(f"/proc/{pid}").stat().st_uid
    except OSError:
        return None


def _group_uid(path: Path) -> int:
    return int(path.name.removeprefix(PREFIX))


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


def _left(uids: Iterable[int], cgroups: Cgroups | None) -> tuple[set[int], set[Path]]:
    """Processes and cgroup dirs of these uids."""
    processes = {pid for uid in uids for pid in live_pids(uid)}
    groups = set()
    if cgroups is not None:
        groups = {path for uid in uids for path in cgroups.dirs(uid).values() if path.exists()}
    return processes, groups


async def sandbox_leaks(runtime_dir: Path, uids: Iterable[int]) -> list[Finding]:
    """Nothing of any sandbox is left: state dirs, uids held, processes, cgroups, loop
    devices backed by its workspace image.

    Other stacks on this host reuse the uids ours released, so a process or cgroup of a
    used uid counts only if it is there twice, RECHECK seconds apart, while no runtime
    dir holds that uid (a uid is held before its cgroup is made and freed after)."""
    config = LocalConfig(runtime_dir=runtime_dir)
    registry, cgroups = config.uid_registry(), config.cgroups()
    states = Layout(runtime_dir).sandbox_ids()
    held = registry.held_by(runtime_dir)
    used = set(uids)
    first_processes, first_groups = _left(used, cgroups)
    await asyncio.sleep(RECHECK)
    free = used - registry.held()
    again_processes, again_groups = _left(free, cgroups)
    free -= registry.held()
    processes = sorted(
        pid for pid in first_processes & again_processes if _uid_of(pid) in free
    ) + pids_with_argument(str(runtime_dir))
    groups = sorted(str(path) for path in first_groups & again_groups if _group_uid(path) in free)
    loops = sorted(str(path) for path in attached_under(runtime_dir))
    return [
        Finding("sandbox state dirs", not states, f"{len(states)} left {states[:5]}"),
        Finding("sandbox uids held", not held, f"{len(held)} held"),
        Finding(
            "sandbox processes",
            not processes,
            f"{len(processes)} alive {processes[:5]} ({len(used)} uids used)",
        ),
        Finding("sandbox cgroups", not groups, f"{len(groups)} left {groups[:3]}"),
        Finding("sandbox loop devices", not loops, f"{len(loops)} attached {loops[:3]}"),
    ]


def compare(
    before: Snapshot, after: Snapshot, peak_rss: dict[str, float], bound: float
) -> list[Finding]:
    """Service-side findings: memory growth within `bound` MiB, nothing left open."""
    findings = []
    for name, baseline in before.rss_mib.items():
        peak = peak_rss.get(name, baseline)
        findings.append(
            Finding(
                f"RSS {name}",
                peak - baseline <= bound,
                f"{baseline:.0f} MiB after warm-up, peak {peak:.0f}, end "
                f"{after.rss_mib.get(name, 0):.0f} (bound +{bound:.0f})",
            )
        )
    for name, fds in before.fds.items():
        end = after.fds.get(name, Counter())
        kinds = " ".join(f"{kind} {fds[kind]}→{end[kind]}" for kind in sorted(fds | end))
        findings.append(Finding(f"open fds {name}", end.total() - fds.total() <= FD_SLACK, kinds))
    if before.total_subscriptions is not None and after.total_subscriptions is not None:
        earlier = before.subscriptions or {}
        by_name = " ".join(
            f"{name} {earlier.get(name, 0)}→{count}"
            for name, count in sorted((after.subscriptions or {}).items())
        )
        findings.append(
            Finding(
                "NATS subscriptions",
                after.total_subscriptions <= before.total_subscriptions,
                f"{before.total_subscriptions} → {after.total_subscriptions} ({by_name})",
            )
        )
    if before.consumers is not None and after.consumers is not None:
        findings.append(
            Finding(
                "JetStream consumers",
                after.consumers <= before.consumers,
                f"{before.consumers} → {after.consumers}",
            )
        )
    if after.db_connections is not None:
        findings.append(
            Finding(
                "DB connections",
                after.db_connections <= DB_POOLS_MAX and not after.db_in_transaction,
                f"{before.db_connections} → {after.db_connections} (pools hold at most "
                f"{DB_POOLS_MAX}); idle in transaction: {after.db_in_transaction}",
            )
        )
    if after.websockets is not None:
        findings.append(
            Finding("gateway WebSockets open", after.websockets == 0, f"{after.websockets:g}")
        )
    return findings
