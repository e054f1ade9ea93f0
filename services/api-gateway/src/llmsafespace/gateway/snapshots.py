"""`/api/v1/snapshots…` and `POST /sandboxes/{id}/snapshots`: one bus command each
(sandbox-svc owns snapshots)."""

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmsafespace.contracts import (
    Caller,
    CreateSnapshot,
    CreateSnapshotRequest,
    ErrorCode,
    ListSnapshots,
    ServiceError,
    SnapshotRef,
    commands,
)
from llmsafespace.contracts.ids import SNAPSHOT_ID_PATTERN

from .auth import authenticated
from .bodies import parse_body
from .paths import sandbox_ref
from .state import state_of
from .validation import validated

_SNAPSHOT_ID = re.compile(SNAPSHOT_ID_PATTERN)


def _snapshot_ref(request: Request, caller: Caller) -> SnapshotRef:
    """The path's snapshot id; one that cannot exist is as unknown as one that does not."""
    snapshot_id = request.path_params["snapshot_id"]
    if not _SNAPSHOT_ID.match(snapshot_id):
        raise ServiceError(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id[:64]} not found")
    return SnapshotRef(caller=caller, snapshot_id=snapshot_id)


@authenticated
async def create(request: Request, caller: Caller) -> Response:
    settings = state_of(request)["settings"]
    ref = sandbox_ref(request, caller)
    body = await parse_body(request, CreateSnapshotRequest, settings.max_body_bytes)
    command = CreateSnapshot(caller=caller, sandbox_id=ref.sandbox_id, request=body)
    snapshot = await state_of(request)["bus"].request(
        commands.SNAPSHOT_CREATE, command, timeout=settings.create_timeout
    )
    return JSONResponse(snapshot.wire(), status_code=201)


@authenticated
async def list_snapshots(request: Request, caller: Caller) -> Response:
    params = request.query_params
    query = validated(
        ListSnapshots,
        {"caller": caller, "limit": params.get("limit", 20), "offset": params.get("offset", 0)},
        "query parameters",
    )
    page = await state_of(request)["bus"].request(commands.SNAPSHOT_LIST, query)
    return JSONResponse(page.wire())


@authenticated
async def get(request: Request, caller: Caller) -> Response:
    ref = _snapshot_ref(request, caller)
    snapshot = await state_of(request)["bus"].request(commands.SNAPSHOT_GET, ref)
    return JSONResponse(snapshot.wire())


@authenticated
async def delete(request: Request, caller: Caller) -> Response:
    ref = _snapshot_ref(request, caller)
    snapshot = await state_of(request)["bus"].request(commands.SNAPSHOT_DELETE, ref)
    return JSONResponse(snapshot.wire())


ROUTES: list[BaseRoute] = [
    Route("/sandboxes/{sandbox_id}/snapshots", create, methods=["POST"]),
    Route("/snapshots", list_snapshots, methods=["GET"]),
    Route("/snapshots/{snapshot_id}", get, methods=["GET"]),
    Route("/snapshots/{snapshot_id}", delete, methods=["DELETE"]),
]
