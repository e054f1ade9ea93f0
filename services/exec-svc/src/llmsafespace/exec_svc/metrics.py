"""exec-svc's Prometheus metrics (labels are kinds and outcomes, never ids)."""

from prometheus_client import Counter, Histogram

EXECUTIONS = Counter("executions_total", "Executions finished", ["type", "status"])
EXECUTION_SECONDS = Histogram(
    "execution_duration_seconds",
    "Execution wall time inside the sandbox",
    ["type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300),
)
STREAMED_BYTES = Counter("streamed_output_bytes_total", "Output bytes published to streams")
