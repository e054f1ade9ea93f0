"""What every CLI command shares: where the API is and which key to use."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import click


class ClientArgs(TypedDict):
    api_url: str | None
    api_key: str | None


@dataclass(frozen=True)
class CliSettings:
    """From `--api-url` / `--api-key`, else the SDK reads `LLMSAFESPACE_API_URL` /
    `LLMSAFESPACE_API_KEY` itself."""

    api_url: str | None = None
    api_key: str | None = None

    def client(self) -> ClientArgs:
        return {"api_url": self.api_url, "api_key": self.api_key}


pass_settings = click.make_pass_decorator(CliSettings)


def key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    """`("a=1", "b=2")` → `{"a": "1", "b": "2"}`; a pair without `=` is a usage error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        result[key] = value
    return result
