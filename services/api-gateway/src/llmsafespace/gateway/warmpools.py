"""`/api/v1/warmpools…`: pools addressed by name; each request is one warmpool-svc command."""

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmsafespace.contracts import (
    Caller,
    CreateWarmPool,
    ErrorCode,
    ListWarmPools,
    ServiceError,
    UpdateWarmPool,
    WarmPool,
    WarmPoolRef,
    WarmPoolSpec,
    WarmPoolUpdate,
    commands,
)
from llmsafespace.contracts.warmpool import POOL_NAME_PATTERN

from .auth import authenticated
from .bodies import parse_body
from .state import state_of

_POOL_NAME = re.compile(POOL_NAME_PATTERN)


def _ref(request: Request, caller: Caller) -> WarmPoolRef:
    """The path's pool name; one that cannot exist is as unknown as one that does not."""
    name = request.path_params["name"]
    if len(name) > 63 or not _POOL_NAME.fullmatch(name):
        raise ServiceError(ErrorCode.NOT_FOUND, f"warm pool {name[:64]!r} not found")
    return WarmPoolRef(caller=caller, name=name)


def _status(pool: WarmPool) -> dict[str, object]:
    return {"name": pool.name, **pool.status.wire()}


@authenticated
async def create(request: Request, caller: Caller) -> Response:
    spec = await parse_body(request, WarmPoolSpec, state_of(request)["settings"].max_body_bytes)
    pool = await state_of(request)["bus"].request(
        commands.WARMPOOL_CREATE, CreateWarmPool(caller=caller, spec=spec)
    )
    return JSONResponse(pool.wire(), status_code=201)


@authenticated
async def list_pools(request: Request, caller: Caller) -> Response:
    pools = await state_of(request)["bus"].request(
        commands.WARMPOOL_LIST, ListWarmPools(caller=caller)
    )
    return JSONResponse({"warmPools": [pool.wire() for pool in pools.pools]})


@authenticated
async def statuses(request: Request, caller: Caller) -> Response:
    pools = await state_of(request)["bus"].request(
        commands.WARMPOOL_LIST, ListWarmPools(caller=caller)
    )
    return JSONResponse({"warmPools": [_status(pool) for pool in pools.pools]})


@authenticated
async def get(request: Request, caller: Caller) -> Response:
    pool = await state_of(request)["bus"].request(commands.WARMPOOL_GET, _ref(request, caller))
    return JSONResponse(pool.wire())


@authenticated
async def status(request: Request, caller: Caller) -> Response:
    pool = await state_of(request)["bus"].request(commands.WARMPOOL_GET, _ref(request, caller))
    return JSONResponse(_status(pool))


@authenticated
async def update(request: Request, caller: Caller) -> Response:
    ref = _ref(request, caller)
    body = await parse_body(request, WarmPoolUpdate, state_of(request)["settings"].max_body_bytes)
    command = UpdateWarmPool(caller=caller, name=ref.name, update=body)
    pool = await state_of(request)["bus"].request(commands.WARMPOOL_UPDATE, command)
    return JSONResponse(pool.wire())


@authenticated
async def delete(request: Request, caller: Caller) -> Response:
    pool = await state_of(request)["bus"].request(commands.WARMPOOL_DELETE, _ref(request, caller))
    return JSONResponse(pool.wire())


ROUTES: list[BaseRoute] = [
    Route("/warmpools", create, methods=["POST"]),
    Route("/warmpools", list_pools, methods=["GET"]),
    Route("/warmpools/status", statuses, methods=["GET"]),
    Route("/warmpools/{name}", get, methods=["GET"]),
    Route("/warmpools/{name}", update, methods=["PATCH"]),
    Route("/warmpools/{name}", delete, methods=["DELETE"]),
    Route("/warmpools/{name}/status", status, methods=["GET"]),
]
