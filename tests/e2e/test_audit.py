"""The audit trail through the real stack: every event recorded once, visible to its owner."""

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.stack

WAIT_SECONDS = 30.0
SESSION = {
    ("sandbox", "created"),
    ("sandbox", "running"),
    ("exec", "started"),
    ("exec", "completed"),
    ("sandbox", "terminated"),
}

Events = list[dict[str, object]]


def names(events: Events) -> set[tuple[object, object]]:
    return {(event["kind"], event["event"]) for event in events}


async def audit(
    api: httpx.AsyncClient, until: Callable[[Events], bool], **params: str | int
) -> Events:
    """The events `GET /audit` answers, polled until `until` holds (or the wait is over)."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        response = await api.get("/audit", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        events: Events = response.json()["events"]
        if until(events) or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.2)


async def session(api: httpx.AsyncClient) -> tuple[str, str, str]:
    """Create → execute → delete; returns (sandbox id, owner id, execution id)."""
    created = await api.post("/sandboxes", json={"timeout": 300})
    assert created.status_code == 201, created.text
    sandbox = created.json()
    ran = await api.post(
        f"/sandboxes/{sandbox['id']}/execute", json={"type": "code", "content": "print(6 * 7)"}
    )
    assert ran.status_code == 200, ran.text
    deleted = await api.delete(f"/sandboxes/{sandbox['id']}")
    assert deleted.status_code == 200, deleted.text
    return sandbox["id"], sandbox["ownerId"], ran.json()["executionId"]


def assert_once(events: Events) -> None:
    seqs = Counter(event["seq"] for event in events)
    assert max(seqs.values()) == 1, seqs
    per_event = Counter(
        (event["kind"], event["event"], event.get("executionId")) for event in events
    )
    assert max(per_event.values()) == 1, per_event


async def test_a_whole_session_is_audited_once_even_when_the_subscriber_restarts(
    api: httpx.AsyncClient, stack
) -> None:
    sandbox_id, owner_id, execution_id = await session(api)
    events = await audit(api, lambda found: names(found) >= SESSION, sandboxId=sandbox_id)
    assert names(events) >= SESSION, events
    assert_once(events)
    for event in events:
        assert (event["sandboxId"], event["userId"]) == (sandbox_id, owner_id), event
        assert event["occurredAt"]
        assert event["payload"]
    by_name = {(event["kind"], event["event"]): event for event in events}
    assert by_name[("exec", "completed")]["executionId"] == execution_id
    assert by_name[("exec", "completed")]["outcome"] == "completed"
    assert by_name[("sandbox", "terminated")]["outcome"] == "terminated"
    assert by_name[("exec", "completed")]["payload"]["exitCode"] == 0

    await stack.restart("audit-svc")
    async with stack.stopped("audit-svc"):  # events published meanwhile wait in JetStream
        later_id, _, _ = await session(api)

    later = await audit(api, lambda found: names(found) >= SESSION, sandboxId=later_id)
    assert names(later) >= SESSION, later
    assert_once(later)
    again = await audit(api, lambda _: True, sandboxId=sandbox_id)
    assert again == events


async def test_users_see_only_their_own_events_and_admins_see_everyone(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    admin_sandbox, admin_id, _ = await session(api)
    own_sandbox, own_id, _ = await session(second_user_api)
    await audit(api, lambda found: names(found) >= SESSION, sandboxId=admin_sandbox)

    own = await audit(second_user_api, lambda found: names(found) >= SESSION, sandboxId=own_sandbox)
    assert names(own) >= SESSION, own
    everything = await audit(second_user_api, lambda _: True)
    assert everything
    assert {event["userId"] for event in everything} == {own_id}
    assert await audit(second_user_api, lambda _: True, sandboxId=admin_sandbox) == []
    assert await audit(second_user_api, lambda _: True, userId=admin_id) == []

    seen_by_admin = await audit(
        api, lambda found: names(found) >= SESSION, sandboxId=own_sandbox, userId=own_id
    )
    assert names(seen_by_admin) >= SESSION


async def test_since_and_limit_narrow_the_answer(api: httpx.AsyncClient) -> None:
    sandbox_id, _, _ = await session(api)
    events = await audit(api, lambda found: names(found) >= SESSION, sandboxId=sandbox_id)
    first, *_ = events
    page = await api.get("/audit", params={"sandboxId": sandbox_id, "limit": 2})
    assert page.status_code == 200, page.text
    assert (len(page.json()["events"]), page.json()["hasMore"]) == (2, True)
    last = events[-1]["occurredAt"]
    tail = await api.get("/audit", params={"sandboxId": sandbox_id, "since": last})
    assert [event["seq"] for event in tail.json()["events"]][-1] == events[-1]["seq"]
    assert first["seq"] not in {event["seq"] for event in tail.json()["events"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1700000000"}, "since"),
        ({"sandboxId": "sb-NOPE"}, "sandboxId"),
        ({"userId": "root"}, "userId"),
    ],
)
async def test_bad_parameters_are_refused_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/audit", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["details"]["fields"], error


async def test_the_audit_trail_needs_a_key(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        response = await anonymous.get("/audit")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
