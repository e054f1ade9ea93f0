"""The warm-pool hit ratio: where a create is decided, per runtime, as the design's gauge
and as counters that sum over replicas."""

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmsafespace.sandbox_svc.metrics import HitRatio


def test_the_hit_ratio_counts_warm_and_cold_creates_per_runtime() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("warm_pool_hit_ratio", "", ["runtime"], registry=registry)
    requests = Counter("warm_pool_requests_total", "", ["runtime", "outcome"], registry=registry)
    ratio = HitRatio(gauge, requests)
    for warm in (True, True, False, True):
        ratio.created("python:3.11", warm=warm)
    ratio.created("node:20", warm=False)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("warm_pool_hit_ratio", runtime="python:3.11") == 0.75
    assert value("warm_pool_hit_ratio", runtime="node:20") == 0.0
    assert value("warm_pool_requests_total", runtime="python:3.11", outcome="hit") == 3
    assert value("warm_pool_requests_total", runtime="python:3.11", outcome="miss") == 1
    assert value("warm_pool_requests_total", runtime="node:20", outcome="miss") == 1
