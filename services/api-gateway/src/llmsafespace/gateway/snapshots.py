"""`/api/v1/snapshots…` and `POST /sandboxes/{id}/snapshots`: one bus command each
(sandbox-svc owns snapshots)."""

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    Caller,
    CreateSnapshot,
    CreateSnapshotRequest,
    ListSnapshots,
    Snapshot,
    SnapshotPage,
    SnapshotRef,
    commands,
)
from llmsafespace.contracts.ids import SNAPSHOT_ID_PATTERN

from .auth import authenticated
from .bodies import parse_body
from .operation import ApiRoute, Operation, Ref
from .paths import known_id, sandbox_ref
from .state import state_of
from .validation import validated

_SNAPSHOT_ID = re.compile(SNAPSHOT_ID_PATTERN)


def _snapshot_ref(request: Request, caller: Caller) -> SnapshotRef:
    """The path's snapshot id; one that cannot exist is as unknown as one that does not."""
    snapshot_id = known_id(request.path_params["snapshot_id"], _SNAPSHOT_ID, "snapshot")
    return SnapshotRef(caller=caller, snapshot_id=snapshot_id)


@authenticated
async def create(request: Request, caller: Caller) -> Response:
    settings = state_of(request)["settings"]
    ref = sandbox_ref(request, caller)
    body = await parse_body(request, CreateSnapshotRequest, settings.max_body_bytes)
    command = CreateSnapshot(caller=caller, sandbox_id=ref.sandbox_id, request=body)
    snapshot = await state_of(request)["bus"].request(
        commands.SNAPSHOT_CREATE, command, timeout=settings.workspace_timeout
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
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/snapshots",
        create,
        Operation(
            "Snapshot a running sandbox's workspace, env, metadata and runtime",
            "snapshots",
            Ref(Snapshot),
            201,
            body=CreateSnapshotRequest,
            errors=(404, 409, 429, 503),
            description="Durable and immutable: the whole `/workspace` (packages installed into"
            " `/workspace/.packages` and `node_modules` included), the env the sandbox was"
            " created with, its metadata and runtime. The interpreter's memory (variables,"
            " running processes) is NOT part of a snapshot. Stored as content-addressed"
            " chunks: `storedBytes` is what this one added. Start a sandbox from it with `POST"
            ' /sandboxes {"snapshot": id}`. Per-user quotas on count and bytes (429).',
        ),
    ),
    ApiRoute(
        "GET",
        "/snapshots",
        list_snapshots,
        Operation(
            "List your snapshots (admins: all)",
            "snapshots",
            Ref(SnapshotPage),
            query=ListSnapshots,
            query_fields=("limit", "offset"),
        ),
    ),
    ApiRoute(
        "GET",
        "/snapshots/{snapshot_id}",
        get,
        Operation("Get a snapshot", "snapshots", Ref(Snapshot), errors=(404,)),
    ),
    ApiRoute(
        "DELETE",
        "/snapshots/{snapshot_id}",
        delete,
        Operation(
            "Delete a snapshot (chunks no other snapshot uses are freed)",
            "snapshots",
            Ref(Snapshot),
            errors=(404, 409),
            description="409 while a warm pool is built from it (delete the pool first).",
        ),
    ),
]
