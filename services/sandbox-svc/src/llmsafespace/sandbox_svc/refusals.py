"""The refusals of calls that need a sandbox in another state than it is."""

from llmsafespace.contracts import ErrorCode, Sandbox, SandboxStatus, ServiceError


def not_running(sandbox: Sandbox, during: str = "") -> ServiceError:
    """The refusal of a call that needs the sandbox running: `sandbox_paused` (409) for a
    paused one, as every call on it says, else `sandbox_not_running`; `during` names the
    work it ended or paused in the middle of (e.g. "during the snapshot")."""
    paused = sandbox.status is SandboxStatus.PAUSED
    became = f"was {sandbox.status} {during}" if during else f"is {sandbox.status}"
    return ServiceError(
        ErrorCode.SANDBOX_PAUSED if paused else ErrorCode.SANDBOX_NOT_RUNNING,
        f"sandbox {sandbox.id} {became}",
        {"status": sandbox.status},
    )


def ended_while_created(sandbox_id: str) -> ServiceError:
    """The refusal of a create whose sandbox ended (deleted, expired) before it ran, on a
    warm runtime or a cold one."""
    return ServiceError(
        ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {sandbox_id} ended while being created"
    )
