"""How big a pool should be (the replenisher's target) and what its conditions say."""

from datetime import UTC, datetime

import pytest

from llmsafespace.contracts import WarmPoolSpec, WarmSandboxState
from llmsafespace.warmpool_svc.pools import pool_view
from llmsafespace.warmpool_svc.replenisher import desired_size
from llmsafespace.warmpool_svc.store import Demand

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SCALING = {"enabled": True, "targetUtilization": 0.5, "scaleDownDelay": 60}


def _spec(**fields: object) -> WarmPoolSpec:
    return WarmPoolSpec.model_validate({"name": "py", "minSize": 2, "maxSize": 10} | fields)


def _demand(recent: int, busy: bool = True) -> Demand:
    return Demand(recent=recent, last_claim=NOW if recent else None, busy=busy)


def test_without_autoscaling_a_pool_keeps_its_minimum_whatever_the_demand() -> None:
    assert desired_size(_spec(), current=2, demand=_demand(30)) == 2


@pytest.mark.parametrize(
    ("current", "recent", "expected"),
    [
        (2, 3, 6),  # 3 recent claims at 50% utilization: 6
        (2, 50, 10),  # never past maxSize
        (2, 0, 2),  # never under minSize
        (8, 3, 8),  # while claims keep coming it does not shrink
    ],
)
def test_autoscaling_sizes_for_the_recent_claims_at_the_target_utilization(
    current: int, recent: int, expected: int
) -> None:
    spec = _spec(autoScaling=SCALING)
    assert desired_size(spec, current=current, demand=_demand(recent)) == expected


def test_a_pool_no_claim_came_to_for_its_delay_shrinks_back_to_its_minimum() -> None:
    spec = _spec(autoScaling=SCALING)
    assert desired_size(spec, current=8, demand=_demand(3, busy=False)) == 2


def _row(desired: int, last_error: str | None = None) -> dict[str, object]:
    return {
        "name": "py",
        "owner_id": "usr-aaaaaaaaaaaa",
        "spec": _spec().model_dump_json(by_alias=True),
        "desired": desired,
        "last_scale_time": None,
        "last_error": last_error,
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_a_pool_with_its_desired_ready_sandboxes_is_ready() -> None:
    counts = {WarmSandboxState.READY: 2, WarmSandboxState.ASSIGNED: 1}
    pool = pool_view(_row(desired=2), counts)
    conditions = {condition.type: condition for condition in pool.status.conditions}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("True", "MinimumAvailable")
    assert conditions["Replenishing"].status == "False"
    assert "Failing" not in conditions
    assert (pool.status.available_pods, pool.status.assigned_pods) == (2, 1)


def test_a_pool_short_of_ready_sandboxes_replenishes_and_says_why_starts_fail() -> None:
    counts = {WarmSandboxState.READY: 1, WarmSandboxState.PENDING: 1}
    pool = pool_view(_row(desired=3, last_error="no room"), counts)
    conditions = {condition.type: condition for condition in pool.status.conditions}
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "Replenishing")
    assert conditions["Ready"].message == "1 of 3 ready"
    assert conditions["Replenishing"].status == "True"
    assert (conditions["Failing"].reason, conditions["Failing"].message) == (
        "StartFailed",
        "no room",
    )
