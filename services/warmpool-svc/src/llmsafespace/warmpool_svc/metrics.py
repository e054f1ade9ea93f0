"""Prometheus metrics of warm pools. Labels are pool names, runtimes and states — never ids."""

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.sandboxes = Gauge(
            "warm_pool_sandboxes",
            "Warm sandboxes by pool and state",
            ["pool", "state"],
            registry=registry,
        )
        self.claims = Counter(
            "warm_pool_claims",
            "Warm claims by runtime and outcome (hit or miss)",
            ["runtime", "outcome"],
            registry=registry,
        )
        self.hit_ratio = Gauge(
            "warm_pool_hit_ratio",
            "Share of claims (since start) that got a warm sandbox",
            ["runtime"],
            registry=registry,
        )
        self._counts: dict[str, list[int]] = {}

    def claimed(self, runtime: str, hit: bool) -> None:
        self.claims.labels(runtime=runtime, outcome="hit" if hit else "miss").inc()
        counts = self._counts.setdefault(runtime, [0, 0])
        counts[0 if hit else 1] += 1
        self.hit_ratio.labels(runtime=runtime).set(counts[0] / (counts[0] + counts[1]))
