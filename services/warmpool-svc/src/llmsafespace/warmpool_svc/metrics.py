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

    def claimed(self, runtime: str, hit: bool) -> None:
        # warm_pool_hit_ratio is sandbox-svc's: it decides each create, warm or cold.
        self.claims.labels(runtime=runtime, outcome="hit" if hit else "miss").inc()
