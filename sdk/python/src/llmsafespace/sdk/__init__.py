"""The LLMSafeSpace Python SDK: run untrusted code in sandboxes from Python.

    from llmsafespace.sdk import Sandbox

    with Sandbox() as sandbox:           # LLMSAFESPACE_API_URL / LLMSAFESPACE_API_KEY
        print(sandbox.run_code("print(6 * 7)").stdout)

`AsyncSandbox` is the implementation; `Sandbox` runs it for synchronous code."""

from llmsafespace.contracts import (
    AccessToken,
    ApiKey,
    CreatedApiKey,
    EgressRule,
    FileInfo,
    FileWritten,
    NetworkAccess,
    User,
)

from .async_sandbox import AsyncSandbox
from .config import ClientConfig
from .errors import (
    ERRORS,
    APIConnectionError,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    LLMSafeSpaceError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    SandboxError,
    SandboxPausedError,
    ServiceUnavailableError,
    StreamUnavailableError,
    TimeoutError,
    ValidationError,
)
from .events import Complete, Display, Error, Event, Stderr, Stdout
from .files import AsyncFiles, Files
from .keys import ApiKeys, AsyncApiKeys, awhoami, whoami
from .models import (
    ExecutionResult,
    Pagination,
    Result,
    SandboxInfo,
    SandboxPage,
    SandboxStatusInfo,
    SnapshotInfo,
    SnapshotPage,
    TemplateInfo,
    WarmPoolInfo,
    WarmPoolStatus,
)
from .sandbox import ExecutionStream, Sandbox
from .snapshot import AsyncSnapshot, Snapshot
from .streaming import AsyncExecutionStream, AsyncInstallStream
from .template import AsyncTemplate, Template
from .terminal import AsyncTerminal, Terminal
from .tools import TOOL_SPECS, SandboxTools, ToolSpec
from .warmpool import AsyncWarmPool, WarmPool

__all__ = [
    "APIConnectionError",
    "AccessToken",
    "ApiKey",
    "ApiKeys",
    "AsyncApiKeys",
    "AsyncExecutionStream",
    "AsyncFiles",
    "AsyncInstallStream",
    "AsyncSandbox",
    "AsyncSnapshot",
    "AsyncTemplate",
    "AsyncTerminal",
    "AsyncWarmPool",
    "AuthenticationError",
    "ClientClosedError",
    "ClientConfig",
    "Complete",
    "ConflictError",
    "CreatedApiKey",
    "Display",
    "ERRORS",
    "EgressRule",
    "Error",
    "Event",
    "ExecutionResult",
    "ExecutionStream",
    "FileInfo",
    "FileWritten",
    "Files",
    "LLMSafeSpaceError",
    "NetworkAccess",
    "NotFoundError",
    "Pagination",
    "QuotaExceededError",
    "RateLimitError",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxInfo",
    "SandboxPage",
    "SandboxPausedError",
    "SandboxStatusInfo",
    "SandboxTools",
    "ServiceUnavailableError",
    "Snapshot",
    "SnapshotInfo",
    "SnapshotPage",
    "Stderr",
    "Stdout",
    "StreamUnavailableError",
    "TOOL_SPECS",
    "Template",
    "TemplateInfo",
    "Terminal",
    "TimeoutError",
    "ToolSpec",
    "User",
    "ValidationError",
    "WarmPool",
    "WarmPoolInfo",
    "WarmPoolStatus",
    "awhoami",
    "whoami",
]
