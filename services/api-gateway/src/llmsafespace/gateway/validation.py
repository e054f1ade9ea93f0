"""Building contract types from what clients sent, so validation stays on the types: the
one place a `ValidationError` becomes `400 invalid_request` with per-field details."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.servicekit import validation_details

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: Any, source: str) -> ModelT:
    """`model` built from `data` (the request's `source`: "request body", "query
    parameters"); a validation failure is `400 invalid_request` naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ServiceError(
            ErrorCode.INVALID_REQUEST, f"invalid {source}", validation_details(exc)
        ) from exc


def frame_details(error: ValidationError) -> dict[str, Any]:
    """The per-field details of a socket message, validated as a union tagged by its
    `type`: its fields as the client named them (pydantic puts the tag first)."""
    fields: dict[str, str] = {}
    for item in error.errors():
        fields[".".join(str(part) for part in item["loc"][1:]) or "message"] = item["msg"]
    return {"fields": fields}


def problems(details: dict[str, Any]) -> str:
    """`frame_details` on one line (`field: problem; ...`), for a socket error's message."""
    return "; ".join(f"{field}: {problem}" for field, problem in details["fields"].items())
