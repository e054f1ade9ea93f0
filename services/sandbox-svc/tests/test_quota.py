"""Every quota refusal is a 429 `quota_exceeded` that names the resource, its limit, what
is held and what was asked for; what fits exactly is admitted."""

from typing import Any

import pytest

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.sandbox_svc.quota import Quota, SnapshotQuota, Usage

QUOTA = Quota(sandboxes=3, memory_bytes=1000, paused_sandboxes=2, storage_bytes=5000)
SNAPSHOTS = SnapshotQuota(snapshots=2, bytes=500)


def refusal(admit: Any, *args: int) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        admit(*args)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    return refused.value


def test_sandboxes_past_the_count_are_refused_with_what_is_held_and_asked() -> None:
    error = refusal(QUOTA.admit, Usage(sandboxes=2, memory_bytes=0), 0, 2)
    assert error.details == {"resource": "sandboxes", "limit": 3, "current": 2, "requested": 2}
    assert error.message == (
        "quota exceeded: 2 live or reserved sandboxes of 3 allowed, 2 more requested"
        " (a warm pool's size counts against its owner's quota)"
    )


def test_memory_past_the_quota_is_refused_when_the_count_fits() -> None:
    error = refusal(QUOTA.admit, Usage(sandboxes=1, memory_bytes=600), 401)
    assert error.details == {"resource": "memory", "limit": 1000, "current": 600, "requested": 401}
    assert error.message == (
        "quota exceeded: 600 bytes of memory in use, 401 more requested, 1000 allowed"
    )


def test_storage_past_the_quota_is_refused_when_count_and_memory_fit() -> None:
    held = Usage(sandboxes=1, memory_bytes=600, storage_bytes=4000)
    error = refusal(QUOTA.admit, held, 400, 1, 1001)
    assert error.details == {
        "resource": "storage",
        "limit": 5000,
        "current": 4000,
        "requested": 1001,
    }
    assert error.message == (
        "quota exceeded: 4000 bytes of workspace storage held (paused sandboxes and template"
        " layers included), 1001 more requested, 5000 allowed"
    )


def test_one_more_paused_sandbox_than_allowed_is_refused() -> None:
    error = refusal(QUOTA.admit_paused, 2)
    assert error.details == {
        "resource": "pausedSandboxes",
        "limit": 2,
        "current": 2,
        "requested": 1,
    }
    assert error.message == "quota exceeded: 2 paused sandboxes of 2 allowed"


def test_snapshots_past_their_count_or_their_bytes_are_refused() -> None:
    error = refusal(SNAPSHOTS.admit, 2, 0, 1)
    assert error.details == {"resource": "snapshots", "limit": 2, "current": 2, "requested": 1}
    assert error.message == "quota exceeded: 2 snapshots of 2 allowed"
    error = refusal(SNAPSHOTS.admit, 1, 400, 101)
    assert error.details == {
        "resource": "snapshotBytes",
        "limit": 500,
        "current": 400,
        "requested": 101,
    }
    assert error.message == "quota exceeded: snapshots hold 400 bytes, 101 more, 500 allowed"


def test_what_fits_exactly_is_admitted() -> None:
    QUOTA.admit(Usage(sandboxes=1, memory_bytes=600, storage_bytes=4000), 400, 2, 1000)
    QUOTA.admit_paused(1)
    SNAPSHOTS.admit(1, 400, 100)
