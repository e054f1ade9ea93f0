"""Reading request bodies: size-limited, JSON-checked, validated by the contract type."""

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.servicekit import validation_details

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"body larger than {limit} bytes", {"limit": limit}
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"body larger than {limit} bytes", {"limit": limit}
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(request: Request, model: type[ModelT], limit: int) -> ModelT:
    """The body as `model`; an empty body means `{}` (every field defaulted)."""
    raw = await read_limited(request, limit)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ServiceError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ServiceError(
            ErrorCode.INVALID_REQUEST, "invalid request body", validation_details(exc)
        ) from exc
