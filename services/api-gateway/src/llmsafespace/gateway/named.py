"""Endpoints for a resource addressed by name and owned by its creator (templates, warm
pools): create from a body, list, and answer one by the `{name}` in the path, each
request one bus command."""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from llmsafespace.contracts import Caller, Command, Contract, ErrorCode, ServiceError

from .auth import Endpoint, authenticated
from .bodies import parse_body
from .state import state_of

RefT = TypeVar("RefT", bound=Contract)
ItemT = TypeVar("ItemT", bound=Contract)
SpecT = TypeVar("SpecT", bound=BaseModel)
CreateT = TypeVar("CreateT", bound=Contract)
ListT = TypeVar("ListT", bound=Contract)
PageT = TypeVar("PageT", bound=Contract)


@dataclass(frozen=True)
class NamedResource(Generic[RefT, ItemT]):
    """`kind` names it in errors; a name that does not match `pattern` cannot exist, so
    it is as unknown (404) as one that does not. `ref` is the command payload naming one
    (`caller=`, `name=`); `wire` is an item's public body."""

    kind: str
    pattern: str
    ref: type[RefT]
    wire: Callable[[ItemT], dict[str, object]]

    def ref_of(self, request: Request, caller: Caller) -> RefT:
        """The path's `{name}`, on behalf of `caller`."""
        name = request.path_params["name"]
        if len(name) > 63 or not re.fullmatch(self.pattern, name):
            raise ServiceError(ErrorCode.NOT_FOUND, f"{self.kind} {name[:64]!r} not found")
        return self.ref(caller=caller, name=name)

    def create_endpoint(self, spec: type[SpecT], command: Command[CreateT, ItemT]) -> Endpoint:
        """Validate the body as `spec`, send it as `command.request(caller, spec)`; 201."""

        @authenticated
        async def create(request: Request, caller: Caller) -> Response:
            state = state_of(request)
            body = await parse_body(request, spec, state["settings"].max_body_bytes)
            item = await state["bus"].request(command, command.request(caller=caller, spec=body))
            return JSONResponse(self.wire(item), status_code=201)

        return create

    def list_endpoint(
        self,
        command: Command[ListT, PageT],
        key: str,
        items: Callable[[PageT], Iterable[ItemT]],
        wire: Callable[[ItemT], dict[str, object]] | None = None,
    ) -> Endpoint:
        """The caller's items (`command.request(caller)`), as `{key: [wire(item), ...]}`."""
        shown = wire or self.wire

        @authenticated
        async def list_all(request: Request, caller: Caller) -> Response:
            page = await state_of(request)["bus"].request(command, command.request(caller=caller))
            return JSONResponse({key: [shown(item) for item in items(page)]})

        return list_all

    def item_endpoint(
        self,
        command: Command[RefT, ItemT],
        wire: Callable[[ItemT], dict[str, object]] | None = None,
    ) -> Endpoint:
        """`command` on the path's item (get, delete), answered with `wire(item)`."""
        shown = wire or self.wire

        @authenticated
        async def one(request: Request, caller: Caller) -> Response:
            item = await state_of(request)["bus"].request(command, self.ref_of(request, caller))
            return JSONResponse(shown(item))

        return one
