"""`/api/v1/warmpools…`: pools addressed by name; each request is one warmpool-svc command."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    Caller,
    UpdateWarmPool,
    WarmPool,
    WarmPoolRef,
    WarmPoolSpec,
    WarmPoolStatus,
    WarmPoolUpdate,
    commands,
)
from llmsafespace.contracts.warmpool import POOL_NAME_PATTERN

from .auth import authenticated
from .bodies import parse_body
from .named import NamedResource
from .operation import ApiRoute, Operation, Ref, array, merged, obj
from .state import state_of

POOLS: NamedResource[WarmPoolRef, WarmPool] = NamedResource(
    "warm pool", POOL_NAME_PATTERN, WarmPoolRef, WarmPool.wire
)
_STATUS = merged(WarmPoolStatus, name={"type": "string"})
_BY_NAME = (
    "Your pool by that name. An admin reaches another user's too, while no other pool has"
    " the name; else `409 conflict`, `details.ownerIds` listing the owners."
)


def _status(pool: WarmPool) -> dict[str, object]:
    return {"name": pool.name, **pool.status.wire()}


@authenticated
async def update(request: Request, caller: Caller) -> Response:
    ref = POOLS.ref_of(request, caller)
    body = await parse_body(request, WarmPoolUpdate, state_of(request)["settings"].max_body_bytes)
    command = UpdateWarmPool(caller=caller, name=ref.name, update=body)
    pool = await state_of(request)["bus"].request(commands.WARMPOOL_UPDATE, command)
    return JSONResponse(pool.wire())


ROUTES: list[BaseRoute] = [
    ApiRoute(
        "POST",
        "/warmpools",
        POOLS.create_endpoint(WarmPoolSpec, commands.WARMPOOL_CREATE),
        Operation(
            "Create a warm pool",
            "warmpools",
            Ref(WarmPool),
            201,
            body=WarmPoolSpec,
            errors=(403, 404, 409),
            description="A `snapshot` (a pool of warm copies of it) that does not exist, or"
            " is another user's, is a 404. An ordinary user's pool larger than"
            " `WARMPOOL_SVC_MAX_POOL_SIZE` is a 403.",
        ),
    ),
    ApiRoute(
        "GET",
        "/warmpools",
        POOLS.list_endpoint(commands.WARMPOOL_LIST, "warmPools", lambda page: page.pools),
        Operation("List warm pools", "warmpools", obj(warmPools=array(Ref(WarmPool)))),
    ),
    ApiRoute(
        "GET",
        "/warmpools/status",
        POOLS.list_endpoint(commands.WARMPOOL_LIST, "warmPools", lambda page: page.pools, _status),
        Operation("Every pool's status", "warmpools", obj(warmPools=array(_STATUS))),
    ),
    ApiRoute(
        "GET",
        "/warmpools/{name}",
        POOLS.item_endpoint(commands.WARMPOOL_GET),
        Operation(
            "Get a warm pool", "warmpools", Ref(WarmPool), errors=(404, 409), description=_BY_NAME
        ),
    ),
    ApiRoute(
        "PATCH",
        "/warmpools/{name}",
        update,
        Operation(
            "Update a warm pool",
            "warmpools",
            Ref(WarmPool),
            body=WarmPoolUpdate,
            errors=(403, 404, 409),
            description=_BY_NAME + " Growing an ordinary user's pool past"
            " `WARMPOOL_SVC_MAX_POOL_SIZE` is a 403.",
        ),
    ),
    ApiRoute(
        "DELETE",
        "/warmpools/{name}",
        POOLS.item_endpoint(commands.WARMPOOL_DELETE),
        Operation(
            "Delete a warm pool",
            "warmpools",
            Ref(WarmPool),
            errors=(404, 409),
            description=_BY_NAME,
        ),
    ),
    ApiRoute(
        "GET",
        "/warmpools/{name}/status",
        POOLS.item_endpoint(commands.WARMPOOL_GET, _status),
        Operation("A pool's status", "warmpools", _STATUS, errors=(404, 409), description=_BY_NAME),
    ),
]
