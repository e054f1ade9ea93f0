"""`/users`, `/user`, `/user/apikeys`, `/auth/token`: identities and credentials."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    AccessToken,
    ApiKey,
    Caller,
    CreateApiKeyRequest,
    CreatedApiKey,
    CreatedUser,
    CreateUserRequest,
    ErrorCode,
    Role,
    ServiceError,
    User,
)

from .auth import authenticated, bearer_token, identify
from .bodies import parse_body
from .operation import ApiRoute, Operation, Ref, array, obj
from .state import state_of


@authenticated
async def create_user(request: Request, caller: Caller) -> Response:
    if caller.role is not Role.ADMIN:
        raise ServiceError(ErrorCode.FORBIDDEN, "only admins create users")
    body = await parse_body(
        request, CreateUserRequest, state_of(request)["settings"].max_body_bytes
    )
    user, key = await state_of(request)["accounts"].create_user(
        body.username, body.role, body.email
    )
    return JSONResponse(CreatedUser(user=user, api_key=key).wire(), status_code=201)


@authenticated
async def current_user(request: Request, caller: Caller) -> Response:
    return JSONResponse((await state_of(request)["accounts"].user(caller.user_id)).wire())


@authenticated
async def list_keys(request: Request, caller: Caller) -> Response:
    keys = await state_of(request)["accounts"].keys(caller.user_id)
    return JSONResponse({"apiKeys": [key.wire() for key in keys]})


@authenticated
async def create_key(request: Request, caller: Caller) -> Response:
    body = await parse_body(
        request, CreateApiKeyRequest, state_of(request)["settings"].max_body_bytes
    )
    settings = state_of(request)["settings"]
    created = await state_of(request)["accounts"].create_key(
        caller.user_id, body.name, body.expires_in_days, settings.max_api_keys
    )
    return JSONResponse(created.wire(), status_code=201)


@authenticated
async def revoke_key(request: Request, caller: Caller) -> Response:
    key_id = request.path_params["key_id"][:64]
    return JSONResponse((await state_of(request)["accounts"].revoke_key(caller, key_id)).wire())


async def issue_token(request: Request) -> Response:
    """Exchange an API key (not a token: tokens do not mint tokens) for an access token."""
    credential = bearer_token(request)
    if credential is not None and credential.count(".") == 2:
        raise ServiceError(ErrorCode.UNAUTHORIZED, "exchange an API key, not a token")
    identity = await identify(request, credential)
    return JSONResponse(state_of(request)["accounts"].issue_token(identity).wire())


ROUTES: list[BaseRoute] = [
    ApiRoute(
        "POST",
        "/users",
        create_user,
        Operation(
            "Create a user and their first API key (admins)",
            "users",
            Ref(CreatedUser),
            201,
            body=CreateUserRequest,
            errors=(403, 409),
        ),
    ),
    ApiRoute("GET", "/user", current_user, Operation("The calling user", "users", Ref(User))),
    ApiRoute(
        "GET",
        "/user/apikeys",
        list_keys,
        Operation(
            "Your API keys (never the keys themselves)", "users", obj(apiKeys=array(Ref(ApiKey)))
        ),
    ),
    ApiRoute(
        "POST",
        "/user/apikeys",
        create_key,
        Operation(
            "Create an API key (shown once); 409 past `GATEWAY_MAX_API_KEYS` live keys",
            "users",
            Ref(CreatedApiKey),
            201,
            body=CreateApiKeyRequest,
            errors=(409,),
        ),
    ),
    ApiRoute(
        "DELETE",
        "/user/apikeys/{key_id}",
        revoke_key,
        Operation("Revoke an API key", "users", Ref(ApiKey), errors=(404,)),
    ),
    ApiRoute(
        "POST",
        "/auth/token",
        issue_token,
        Operation("Exchange an API key for a short-lived access token", "users", Ref(AccessToken)),
    ),
]
