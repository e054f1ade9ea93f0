"""sandbox-svc's Prometheus metrics (labels are states, sources and runtimes, never ids)."""

from prometheus_client import Counter, Gauge, Histogram

CREATIONS = Counter("sandbox_creations_total", "Sandboxes created", ["source"])
CREATE_SECONDS = Histogram(
    "sandbox_create_duration_seconds",
    "Time to create a running sandbox",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BY_STATE = Gauge("sandboxes", "Sandboxes by state (set by the reaper's pass)", ["state"])
WARM_HIT_RATIO = Gauge(
    "warm_pool_hit_ratio",
    "Share of the creates that asked for a warm sandbox (since start) which got one",
    ["runtime"],
)
WARM_REQUESTS = Counter(
    "warm_pool_requests_total",
    "Creates that asked for a warm sandbox, by outcome (hit: got one; miss: went cold)",
    ["runtime", "outcome"],
)


class HitRatio:
    """Counts warm and cold outcomes of creates that asked for a warm sandbox, per runtime,
    where the create is decided: the design's `warm_pool_hit_ratio` gauge (this replica's
    since its start) and `warm_pool_requests_total`, whose sums over replicas give the
    fleet's ratio (`sum(rate(…{outcome="hit"}))` over `sum(rate(…))`): a ratio of ratios
    averaged over replicas would not be."""

    def __init__(self, gauge: Gauge = WARM_HIT_RATIO, requests: Counter = WARM_REQUESTS) -> None:
        self._gauge = gauge
        self._requests = requests
        self._counts: dict[str, tuple[int, int]] = {}

    def created(self, runtime: str, *, warm: bool) -> None:
        hits, total = self._counts.get(runtime, (0, 0))
        hits, total = hits + warm, total + 1
        self._counts[runtime] = (hits, total)
        self._gauge.labels(runtime=runtime).set(hits / total)
        self._requests.labels(runtime=runtime, outcome="hit" if warm else "miss").inc()
