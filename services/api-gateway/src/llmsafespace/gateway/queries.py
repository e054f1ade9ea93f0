"""Reading query strings into contract types, so validation stays on the types."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.servicekit import validation_details

ModelT = TypeVar("ModelT", bound=BaseModel)


def validated(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """`model` built from `data`; a validation failure is `400 invalid_request`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ServiceError(
            ErrorCode.INVALID_REQUEST, "invalid query parameters", validation_details(exc)
        ) from exc
