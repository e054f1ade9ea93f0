"""The base every contract model derives from: frozen, camelCase on the wire."""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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
