"""The per-user memory quota never exceeds what the host gives all sandboxes together,
nor the storage quota the disk the local driver's workspaces are written to."""

import shutil
from pathlib import Path

import pytest

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.runtime import RuntimeSettings
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


def test_a_storage_quota_above_the_free_disk_is_clamped_to_it_and_refuses_one_big_sandbox() -> None:
    """The workspaces are sparse images: a quota larger than the disk promised space that
    is not there (90Gi asked for on a host with 69 GB free)."""
    configured = Settings(quota_storage="100Gi").quota()
    quota = configured.within(None, 69 * GI)
    assert quota.storage_bytes == 69 * GI
    assert quota.memory_bytes == configured.memory_bytes
    with pytest.raises(ServiceError) as refused:
        quota.admit(Usage(sandboxes=0, memory_bytes=0), GI, storage_bytes=90 * GI)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details == {
        "resource": "storage",
        "limit": 69 * GI,
        "current": 0,
        "requested": 90 * GI,
    }
    quota.admit(Usage(sandboxes=0, memory_bytes=0), GI, storage_bytes=60 * GI)


def test_a_storage_quota_within_the_free_disk_or_on_kubernetes_is_kept() -> None:
    quota = Quota(sandboxes=5, memory_bytes=2 * GI, storage_bytes=10 * GI)
    assert quota.within(None, 69 * GI) is quota
    assert quota.within(None, None) is quota


def test_the_storage_cap_is_the_free_space_of_the_local_runtime_dir(tmp_path: Path) -> None:
    local = Settings(runtime=RuntimeSettings(RUNTIME_DRIVER="local", RUNTIME_DIR=tmp_path / "rt"))
    cap = local.storage_cap_bytes()  # the dir is not made yet: its filesystem's
    assert cap is not None
    assert abs(cap - shutil.disk_usage(tmp_path).free) < 64 * 2**20
    cluster = Settings(runtime=RuntimeSettings(RUNTIME_DRIVER="kubernetes"))
    assert cluster.storage_cap_bytes() is None  # the cluster decides
