"""A sandbox Pod's resource use: its limits from the Pod, its use from the metrics API.

The metrics API (``metrics.k8s.io``, served by metrics-server) reports a recent average
CPU rate and the working-set memory per container; it has no cumulative CPU time and no
process count, so those stay None. A cluster without metrics-server (or a Pod it has
not scraped yet) leaves the use None too: unknown, never zero.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from ..driver import RuntimeStats

METRICS_GROUP = "metrics.k8s.io"
METRICS_VERSION = "v1beta1"


def _quantity(value: object) -> Decimal | None:
    if not isinstance(value, str | int | float):
        return None
    try:
        parsed: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation):
        return None
    return parsed


def _total(values: list[object]) -> Decimal | None:
    parsed = [_quantity(value) for value in values]
    known = [value for value in parsed if value is not None]
    return sum(known, Decimal(0)) if known and len(known) == len(parsed) else None


def _memory_limit(pod: Any) -> int | None:
    containers = (pod.spec.containers if pod.spec is not None else None) or []
    limits = [((c.resources.limits if c.resources else None) or {}) for c in containers]
    total = _total([limit.get("memory") for limit in limits]) if limits else None
    return None if total is None else int(total)


def pod_stats(pod: Any, metrics: dict[str, Any] | None) -> RuntimeStats:
    """What the Pod (a ``V1Pod``) and its PodMetrics (a dict, or None) tell."""
    containers = (metrics or {}).get("containers") or []
    usages = [container.get("usage") or {} for container in containers]
    cpu = _total([usage.get("cpu") for usage in usages]) if usages else None
    memory = _total([usage.get("memory") for usage in usages]) if usages else None
    return RuntimeStats(
        cpu_cores=None if cpu is None else float(cpu),
        memory_bytes=None if memory is None else int(memory),
        memory_limit_bytes=_memory_limit(pod),
    )
