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


def problems(error: ValidationError) -> str:
    """The same per-field details on one line (`field: problem; ...`), for a WebSocket
    message's error, which has no details object."""
    fields = validation_details(error)["fields"]
    return "; ".join(f"{field}: {problem}" for field, problem in fields.items())
