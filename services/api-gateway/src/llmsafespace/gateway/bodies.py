"""Reading request bodies: size-limited, JSON-checked, validated by the contract type."""

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from llmsafespace.contracts import ErrorCode, ServiceError

from .validation import validated

ModelT = TypeVar("ModelT", bound=BaseModel)
# `\\uD800`-`\\uDFFF` escapes: a JSON text may pair them (one character) or leave one
# alone, which Python accepts and nothing downstream can encode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class MalformedJson(ValueError):
    """Not JSON this API accepts: a syntax error, nesting past the parser's depth, an
    integer past Python's 4300 digits, `NaN` or `Infinity` (not JSON; Python reads them),
    invalid UTF-8 or an unpaired surrogate."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(raw: bytes | str) -> Any:
    """A request body's or a socket frame's JSON, or `MalformedJson`."""
    try:
        text = raw if isinstance(raw, str) else raw.decode()  # JSON on the wire is UTF-8
        data = json.loads(text, parse_constant=_no_constant)
    except (RecursionError, ValueError) as exc:  # UnicodeDecodeError, JSONDecodeError too
        raise MalformedJson(str(exc)) from exc
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise MalformedJson("unpaired surrogate in a string (\\ud800-\\udfff)") from exc
    return data


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
        data = decode_json(raw) if raw.strip() else {}
    except MalformedJson as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ServiceError(ErrorCode.INVALID_REQUEST, "the body must be a JSON object")
    return validated(model, data, "request body")
