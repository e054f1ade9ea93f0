"""LLMSafeSpace contracts: every payload that crosses a boundary, and nothing that does I/O."""

from . import subjects
from .base import Contract, Request
from .caller import Caller, Role
from .errors import HTTP_STATUS, ErrorBody, ErrorCode, ErrorEnvelope, ServiceError
from .execution import (
    MAX_CODE_BYTES,
    MAX_SYNC_OUTPUT_BYTES,
    TIMEOUT_EXIT_CODE,
    ExecuteRequest,
    ExecutionError,
    ExecutionEvent,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    RunExecution,
    Usage,
)
from .ids import (
    ExecutionId,
    SandboxId,
    UserId,
    new_execution_id,
    new_sandbox_id,
    new_user_id,
)
from .sandbox import (
    CreateSandbox,
    CreateSandboxRequest,
    ResolvedSandbox,
    Resources,
    Sandbox,
    SandboxRef,
    SandboxStatus,
    SecurityLevel,
    quantity_bytes,
)
from .warmpool import ClaimResult, ClaimWarmSandbox

__all__ = [
    "Caller",
    "ClaimResult",
    "ClaimWarmSandbox",
    "Contract",
    "CreateSandbox",
    "CreateSandboxRequest",
    "ErrorBody",
    "ErrorCode",
    "ErrorEnvelope",
    "ExecuteRequest",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionId",
    "ExecutionResult",
    "ExecutionStatus",
    "ExecutionType",
    "HTTP_STATUS",
    "MAX_CODE_BYTES",
    "MAX_SYNC_OUTPUT_BYTES",
    "Request",
    "ResolvedSandbox",
    "Resources",
    "Role",
    "RunExecution",
    "Sandbox",
    "SandboxId",
    "SandboxRef",
    "SandboxStatus",
    "SecurityLevel",
    "ServiceError",
    "TIMEOUT_EXIT_CODE",
    "Usage",
    "UserId",
    "new_execution_id",
    "new_sandbox_id",
    "new_user_id",
    "quantity_bytes",
    "subjects",
]
