"""What the SDK hands back: the contracts' own models, re-exported under the SDK's names,
and the execution result with what a caller wants on top."""

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic.alias_generators import to_camel

from llmsafespace.contracts import (
    Contract,
    DisplayResult,
    EndedBy,
    ExecutionError,
    ExecutionStatus,
    NetworkAccess,
    Pagination,
    Resources,
    Sandbox,
    SandboxPage,
    SandboxStatusReport,
    Snapshot,
    SnapshotPage,
    Template,
    Usage,
    WarmPool,
    WarmPoolStatus,
)

__all__ = [
    "ExecutionResult",
    "Pagination",
    "Result",
    "SandboxInfo",
    "SandboxPage",
    "SandboxStatusInfo",
    "SnapshotInfo",
    "SnapshotPage",
    "TemplateInfo",
    "WarmPoolInfo",
    "WarmPoolStatus",
    "network_body",
    "resources_body",
]

SandboxInfo = Sandbox
"""A sandbox as its owner sees it (`llmsafespace.contracts.Sandbox`)."""

SnapshotInfo = Snapshot
"""A snapshot of a sandbox's workspace, env, metadata and runtime (not its memory)."""


SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/svg+xml": ".svg",
    "text/html": ".html",
    "text/markdown": ".md",
    "text/latex": ".tex",
    "application/json": ".json",
    "text/plain": ".txt",
}
"""Each type a result may carry and its file suffix, richest first."""


class Result(DisplayResult):
    """One rich result (a MIME bundle): what `display()`, a matplotlib figure or the
    trailing expression (`is_main_result`) produced. `data` has every type as sent."""

    def _str(self, mime: str) -> str | None:
        value = self.data.get(mime)
        return value if isinstance(value, str) else None

    def _bytes(self, mime: str) -> bytes | None:
        value = self._str(mime)
        return base64.b64decode(value) if value is not None else None

    @property
    def text(self) -> str | None:
        return self._str("text/plain")

    @property
    def png(self) -> bytes | None:
        return self._bytes("image/png")

    @property
    def jpeg(self) -> bytes | None:
        return self._bytes("image/jpeg")

    @property
    def svg(self) -> str | None:
        return self._str("image/svg+xml")

    @property
    def html(self) -> str | None:
        return self._str("text/html")

    @property
    def markdown(self) -> str | None:
        return self._str("text/markdown")

    @property
    def latex(self) -> str | None:
        return self._str("text/latex")

    @property
    def json(self) -> Any:
        """The `application/json` data itself (None if absent)."""
        return self.data.get("application/json")

    @property
    def formats(self) -> list[str]:
        """The MIME types this result carries."""
        return list(self.data)

    def save(self, path: str | Path) -> Path:
        """Write the result to `path`: the type its suffix names (`.png`, `.svg`, `.html`,
        …) if the result has it, else its richest type. Returns the path."""
        target = Path(path)
        named = [mime for mime, suffix in SUFFIXES.items() if suffix == target.suffix.lower()]
        if target.suffix.lower() == ".jpeg":
            named = ["image/jpeg"]
        mime = next((m for m in [*named, *SUFFIXES] if m in self.data), None)
        if mime is None:
            raise ValueError("the result has no data to save")
        if mime in ("image/png", "image/jpeg"):
            target.write_bytes(self._bytes(mime) or b"")
        elif mime == "application/json":
            target.write_text(json.dumps(self.data[mime], indent=2))
        else:
            target.write_text(str(self.data[mime]))
        return target


class ExecutionResult(Contract):
    """The outcome of one `run_code` / `run_command` (or of a finished stream)."""

    execution_id: str
    status: ExecutionStatus
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    results: list[Result] = []
    error: ExecutionError | None = None
    output_truncated: bool = False
    ended_by: EndedBy | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float = 0.0
    usage: Usage | None = None

    @property
    def success(self) -> bool:
        """Completed with exit code 0 and no exception."""
        return self.status is ExecutionStatus.COMPLETED and self.exit_code == 0

    @property
    def duration(self) -> float:
        """Wall-clock duration in seconds."""
        return self.duration_ms / 1000


SandboxStatusInfo = SandboxStatusReport
"""`GET /sandboxes/{id}/status` (`llmsafespace.contracts.SandboxStatusReport`)."""

WarmPoolInfo = WarmPool
"""A warm pool as its owner sees it (`llmsafespace.contracts.WarmPool`)."""

TemplateInfo = Template
"""A template: its spec, `status` (building, ready, failed), `reason` and `log_tail`
(`llmsafespace.contracts.Template`)."""


def network_body(network_access: NetworkAccess | dict[str, Any]) -> dict[str, Any]:
    """`networkAccess` as the API wants it, from the model or a plain dict (the server
    validates it). Only the fields given are sent: `egress` means `enabled: true`, and a
    model's default rules sent with `enabled: false` would be a 400."""
    if isinstance(network_access, NetworkAccess):
        dumped: dict[str, Any] = network_access.model_dump(
            mode="json", by_alias=True, exclude_unset=True
        )
        return dumped
    return network_access


def resources_body(resources: Resources | dict[str, Any]) -> dict[str, Any]:
    """`resources` as the API wants it (camelCase), from the model or a plain dict; the
    server validates it."""
    fields = resources.wire() if isinstance(resources, Resources) else resources
    return {to_camel(key): value for key, value in fields.items()}
