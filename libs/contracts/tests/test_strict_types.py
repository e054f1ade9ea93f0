"""What a client sends is taken at its JSON type: `true` is no number and `1` no flag.

Lax pydantic reads `true` as 1 and `1` as true, so a client's type confusion would pass
as a valid request (`"pausedTimeout": true` a one-second pause). Every number and flag a
client sends (every field of every `Request`) is strict; the walk below finds each one,
so a field added later without `strict=True` fails here.
"""

import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

import llmsafespace.contracts  # noqa: F401  (defines every Request subclass)
from llmsafespace.contracts.base import Request


def _requests(model: type[Request]) -> Iterator[type[Request]]:
    for sub in model.__subclasses__():
        yield sub
        yield from _requests(sub)


def _confused(annotation: Any) -> Any:
    """A JSON value of the wrong scalar type for `annotation`, lax-coercible to it; None
    when the field holds no number or flag."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(annotation):
            if (value := _confused(arm)) is not None:
                return value
        return None
    if origin is typing.Annotated:
        return _confused(typing.get_args(annotation)[0])
    if origin is list:
        item = _confused(typing.get_args(annotation)[0])
        return None if item is None else [item]
    if annotation is bool:
        return 1
    if annotation in (int, float):
        return True
    return None


FIELDS = sorted(
    (model.__name__, model, field.alias or name, value)
    for model in set(_requests(Request))
    for name, field in model.model_fields.items()
    if (value := _confused(field.annotation)) is not None
)


def test_the_walk_finds_the_fields_that_were_lax() -> None:
    found = {(name, alias) for name, _, alias, _ in FIELDS}
    assert {
        ("CreateSandboxRequest", "pausedTimeout"),
        ("WarmPoolSpec", "minSize"),
        ("WarmPoolUpdate", "maxSize"),
        ("AutoScaling", "scaleDownDelay"),
        ("AutoScaling", "targetUtilization"),
        ("ExecuteRequest", "stream"),
        ("EgressRule", "ports"),
    } <= found


@pytest.mark.parametrize(
    ("model", "alias", "value"),
    [(model, alias, value) for _, model, alias, value in FIELDS],
    ids=[f"{name}.{alias}" for name, _, alias, _ in FIELDS],
)
def test_a_number_sent_as_true_or_a_flag_sent_as_1_is_refused(
    model: type[Request], alias: str, value: Any
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate({alias: value})
    assert any(error["loc"][0] == alias for error in raised.value.errors()), (
        f"{model.__name__}.{alias} took {value!r}"
    )
