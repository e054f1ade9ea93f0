"""sandbox-svc's Prometheus metrics (labels are states and sources, never ids)."""

from prometheus_client import Counter, Gauge, Histogram

CREATIONS = Counter("sandbox_creations_total", "Sandboxes created", ["source"])
CREATE_SECONDS = Histogram(
    "sandbox_create_duration_seconds",
    "Time to create a running sandbox",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BY_STATE = Gauge("sandboxes", "Sandboxes by state (set by the reaper's pass)", ["state"])
