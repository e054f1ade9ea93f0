"""Why a sandbox Pod is no longer usable, read from its status."""

from __future__ import annotations

from typing import Any

from ..driver import SandboxFailure

FATAL_WAITING = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "RunContainerError",
    }
)
"""Container waiting reasons that will not resolve by themselves."""

__all__ = ["FATAL_WAITING", "SandboxFailure", "pod_failure"]


def _terminated(status: Any) -> str | None:
    for container in status.container_statuses or []:
        state = container.state
        if state is not None and state.terminated is not None:
            ended = state.terminated
            return f"{ended.reason or 'Terminated'} (exit code {ended.exit_code})"
    return None


def _waiting(status: Any) -> str | None:
    for container in status.container_statuses or []:
        state = container.state
        waiting = None if state is None else state.waiting
        if waiting is not None and waiting.reason in FATAL_WAITING:
            return f"{waiting.reason}: {waiting.message}" if waiting.message else waiting.reason
    return None


def pod_failure(pod: Any) -> str | None:
    """The reason ``pod`` (a V1Pod) can no longer serve its sandbox, or None if it can."""
    status = pod.status
    if status is None:
        return None
    if status.phase in ("Failed", "Succeeded"):
        reason = status.reason or _terminated(status) or status.phase
        return f"{reason}: {status.message}" if status.message else reason
    if pod.metadata is not None and pod.metadata.deletion_timestamp is not None:
        return "the pod is being deleted"
    failure: str | None = _terminated(status) or _waiting(status)
    return failure
