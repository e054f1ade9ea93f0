"""A sandbox Pod's usage from the Pod and its PodMetrics (as metrics-server serves them)."""

from kubernetes import client as k8s

from llmsafespace.runtime.kubernetes.usage import pod_stats


def _pod(*limits: dict[str, str]) -> k8s.V1Pod:
    containers = [
        k8s.V1Container(name=f"c{n}", resources=k8s.V1ResourceRequirements(limits=limit))
        for n, limit in enumerate(limits)
    ]
    return k8s.V1Pod(spec=k8s.V1PodSpec(containers=containers))


def test_metrics_give_cpu_in_cores_and_memory_in_bytes_summed_over_containers() -> None:
    metrics = {
        "kind": "PodMetrics",
        "containers": [
            {"name": "c0", "usage": {"cpu": "250m", "memory": "100Mi"}},
            {"name": "c1", "usage": {"cpu": "500000000n", "memory": "1024Ki"}},
        ],
    }
    stats = pod_stats(_pod({"memory": "256Mi"}, {"memory": "268435456"}), metrics)
    assert stats.cpu_cores == 0.75
    assert stats.memory_bytes == 101 * 2**20
    assert stats.memory_limit_bytes == 512 * 2**20
    assert (stats.cpu_ms, stats.pids) == (None, None)


def test_without_metrics_or_limits_the_use_is_unknown_not_zero() -> None:
    stats = pod_stats(_pod({"memory": "64Mi"}), None)
    assert (stats.cpu_cores, stats.memory_bytes, stats.memory_limit_bytes) == (
        None,
        None,
        64 * 2**20,
    )
    assert pod_stats(_pod({}), {"containers": []}).memory_limit_bytes is None
