"""`/api/v1/runtimes[/{id}]` and `/api/v1/profiles[/{id}]`: the catalog sandbox-svc offers."""

from collections.abc import Iterable
from typing import Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    Caller,
    Catalog,
    CatalogQuery,
    ErrorCode,
    Profile,
    RuntimeInfo,
    ServiceError,
    commands,
)

from .auth import authenticated
from .operation import ApiRoute, Operation, Ref, array, obj
from .state import state_of


async def _catalog(request: Request, caller: Caller) -> Catalog:
    catalog: Catalog = await state_of(request)["bus"].request(
        commands.SANDBOX_CATALOG, CatalogQuery(caller=caller)
    )
    return catalog


@authenticated
async def list_runtimes(request: Request, caller: Caller) -> Response:
    catalog = await _catalog(request, caller)
    return JSONResponse({"runtimes": [runtime.public() for runtime in catalog.runtimes]})


class _Entry(Protocol):
    @property
    def id(self) -> str: ...


EntryT = TypeVar("EntryT", bound=_Entry)


def _entry(entries: Iterable[EntryT], wanted: str, kind: str) -> EntryT:
    """The catalog entry whose id is `wanted`; 404 when there is none."""
    for entry in entries:
        if entry.id == wanted:
            return entry
    raise ServiceError(ErrorCode.NOT_FOUND, f"{kind} {wanted[:64]!r} not found")


@authenticated
async def get_runtime(request: Request, caller: Caller) -> Response:
    catalog = await _catalog(request, caller)
    runtime = _entry(catalog.runtimes, request.path_params["runtime_id"], "runtime")
    return JSONResponse(runtime.public())


@authenticated
async def list_profiles(request: Request, caller: Caller) -> Response:
    catalog = await _catalog(request, caller)
    return JSONResponse({"profiles": [profile.wire() for profile in catalog.profiles]})


@authenticated
async def get_profile(request: Request, caller: Caller) -> Response:
    catalog = await _catalog(request, caller)
    profile = _entry(catalog.profiles, request.path_params["profile_id"], "profile")
    return JSONResponse(profile.wire())


ROUTES: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/runtimes",
        list_runtimes,
        Operation(
            "Runtimes sandboxes can start from", "catalog", obj(runtimes=array(Ref(RuntimeInfo)))
        ),
    ),
    ApiRoute(
        "GET",
        "/runtimes/{runtime_id:path}",
        get_runtime,
        Operation("Get a runtime", "catalog", Ref(RuntimeInfo), errors=(404,)),
    ),
    ApiRoute(
        "GET",
        "/profiles",
        list_profiles,
        Operation("Security and resource presets", "catalog", obj(profiles=array(Ref(Profile)))),
    ),
    ApiRoute(
        "GET",
        "/profiles/{profile_id}",
        get_profile,
        Operation("Get a profile", "catalog", Ref(Profile), errors=(404,)),
    ),
]
