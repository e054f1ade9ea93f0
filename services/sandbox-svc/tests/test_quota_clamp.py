"""The per-user memory quota never exceeds what the host gives all sandboxes together."""

import pytest

from llmsafespace.contracts import ServiceError
from llmsafespace.sandbox_svc.quota import Quota, Usage
from llmsafespace.sandbox_svc.settings import Settings

GI = 2**30


def test_a_quota_above_the_hosts_sandbox_memory_is_clamped_to_it() -> None:
    configured = Settings(quota_memory="64Gi").quota()
    quota = configured.within(17 * GI)
    assert quota == Quota(sandboxes=configured.sandboxes, memory_bytes=17 * GI)
    with pytest.raises(ServiceError) as refused:
        quota.admit(Usage(sandboxes=0, memory_bytes=0), 18 * GI)
    assert refused.value.details == {
        "resource": "memory",
        "limit": 17 * GI,
        "current": 0,
        "requested": 18 * GI,
    }


def test_a_quota_within_the_cap_or_without_one_is_kept() -> None:
    quota = Quota(sandboxes=5, memory_bytes=2 * GI)
    assert quota.within(17 * GI) is quota
    assert quota.within(None) is quota


def test_a_clamped_quota_keeps_its_configured_paused_sandboxes() -> None:
    configured = Settings(quota_memory="64Gi", quota_paused_sandboxes=3).quota()
    quota = configured.within(17 * GI)
    assert quota.paused_sandboxes == 3
    with pytest.raises(ServiceError) as refused:
        quota.admit_paused(3)
    assert refused.value.details["limit"] == 3
