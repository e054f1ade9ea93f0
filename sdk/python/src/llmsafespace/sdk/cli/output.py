"""How the CLI prints: JSON for `--json`, a rich table otherwise, one-line errors."""

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table


def emit_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """Print camelCase JSON, as the API would (scripts can pipe it to `jq`)."""
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, dict):
        data = value
    else:
        data = [item.model_dump(mode="json", by_alias=True) for item in value]
    print(json.dumps(data, indent=2))


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain table on stdout (no colours, and no cells cut short, when piped)."""
    grid = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 10_000  # scripts grep the whole line; the table keeps its own width
    console.print(grid)


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    """`key  value` lines for one object."""
    width = max(len(key) for key, _ in pairs)
    for key, value in pairs:
        print(f"{key.ljust(width)}  {'' if value is None else value}")
