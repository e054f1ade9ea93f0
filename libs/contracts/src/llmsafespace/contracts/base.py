"""The base every contract model derives from: frozen, camelCase on the wire."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SerializationInfo, model_serializer
from pydantic.alias_generators import to_camel

# The serialization context of a message the bus carries (`Bus` dumps with it).
BUS = {"bus": True}


class Contract(BaseModel):
    """A message on the bus or a JSON body: immutable, camelCase aliases, snake_case in code."""

    model_config = ConfigDict(
        frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore"
    )

    def wire(self) -> dict[str, object]:
        """The JSON-ready camelCase form."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Request(Contract):
    """A body a client sends: unknown fields are refused, so typos surface as 400s."""

    model_config = ConfigDict(extra="forbid")


class GivenRequest(Request):
    """A body whose receiving service asks whether the client gave a field, not only its
    value (`model_fields_set`: e.g. a create naming a template may omit `runtime`, but not
    name another). On the bus those fields (`GIVEN`, by their aliases) travel only when
    given, so they are unset at the receiver too; elsewhere (replies, stored rows) every
    field is written as usual."""

    GIVEN: ClassVar[tuple[str, ...]] = ()

    # No return annotation: with one, pydantic's JSON schema of the model would be the
    # annotation's (a bare object), not the model's fields.
    @model_serializer(mode="wrap")
    def _unset_stays_unset(self, handler, info: SerializationInfo):  # type: ignore[no-untyped-def]
        data = handler(self)
        if info.context is BUS:
            for name in self.GIVEN:
                if name not in self.model_fields_set:
                    data.pop(type(self).model_fields[name].alias or name, None)
        return data
