"""`/api/v1/templates…`: templates addressed by name; each request is one sandbox-svc
command (sandbox-svc owns templates: it has the catalog and the driver)."""

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from llmsafespace.contracts import (
    Caller,
    CreateTemplate,
    ErrorCode,
    ListTemplates,
    ServiceError,
    TemplateRef,
    TemplateSpec,
    commands,
)
from llmsafespace.contracts.templates import TEMPLATE_NAME_PATTERN

from .auth import authenticated
from .bodies import parse_body
from .state import state_of

_NAME = re.compile(TEMPLATE_NAME_PATTERN)


def _ref(request: Request, caller: Caller) -> TemplateRef:
    """The path's template name; one that cannot exist is as unknown as one that does not."""
    name = request.path_params["name"]
    if len(name) > 63 or not _NAME.match(name):
        raise ServiceError(ErrorCode.NOT_FOUND, f"template {name[:64]!r} not found")
    return TemplateRef(caller=caller, name=name)


@authenticated
async def create(request: Request, caller: Caller) -> Response:
    spec = await parse_body(request, TemplateSpec, state_of(request)["settings"].max_body_bytes)
    template = await state_of(request)["bus"].request(
        commands.TEMPLATE_CREATE, CreateTemplate(caller=caller, spec=spec)
    )
    return JSONResponse(template.public(), status_code=201)


@authenticated
async def list_templates(request: Request, caller: Caller) -> Response:
    templates = await state_of(request)["bus"].request(
        commands.TEMPLATE_LIST, ListTemplates(caller=caller)
    )
    return JSONResponse({"templates": [template.public() for template in templates.templates]})


@authenticated
async def get(request: Request, caller: Caller) -> Response:
    template = await state_of(request)["bus"].request(commands.TEMPLATE_GET, _ref(request, caller))
    return JSONResponse(template.public())


@authenticated
async def delete(request: Request, caller: Caller) -> Response:
    template = await state_of(request)["bus"].request(
        commands.TEMPLATE_DELETE, _ref(request, caller)
    )
    return JSONResponse(template.public())


ROUTES: list[BaseRoute] = [
    Route("/templates", create, methods=["POST"]),
    Route("/templates", list_templates, methods=["GET"]),
    Route("/templates/{name}", get, methods=["GET"]),
    Route("/templates/{name}", delete, methods=["DELETE"]),
]
