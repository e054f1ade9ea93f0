"""What an agent's failure becomes for exec-svc's caller, written once.

The agent refusing a request (`AgentRequestError`) answers with its own code; an agent
that cannot be reached or stopped answering makes the sandbox `sandbox_not_running` (or
`sandbox_paused`, when it was paused meanwhile: a request outlasting its own timeout in a
frozen sandbox, or a Kubernetes pause, whose Pod is gone), and its connection is forgotten
so the next call resolves and connects again.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.runtime import AgentRequestError, AgentUnavailable, DriverError

from .agents import Agents


def service_error(
    exc: DriverError, sandbox_id: str, during: str = "", paused: bool = False
) -> ServiceError:
    """What an agent failure becomes for the caller (`during`: what it stopped answering
    in, for the message; `paused`: the sandbox was paused meanwhile)."""
    if isinstance(exc, AgentRequestError):
        try:
            code = ErrorCode(exc.code)
        except ValueError:
            code = ErrorCode.INTERNAL_ERROR
        fields = None if exc.field is None else {"fields": {exc.field: str(exc)}}
        return ServiceError(code, str(exc), fields)
    during = f" during {during}" if during else ""
    if paused:
        return ServiceError(ErrorCode.SANDBOX_PAUSED, f"sandbox {sandbox_id} was paused{during}")
    return ServiceError(
        ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {sandbox_id} stopped answering{during}"
    )


@contextmanager
def agent_failures(agents: Agents, sandbox_id: str, during: str = "") -> Iterator[None]:
    """Raise the agent failures of the block as `service_error`s, forgetting the sandbox's
    connection when its agent is unavailable."""
    try:
        yield
    except AgentUnavailable as exc:
        paused = agents.paused(sandbox_id)
        agents.forget(sandbox_id)
        raise service_error(exc, sandbox_id, during, paused) from exc
    except DriverError as exc:
        raise service_error(exc, sandbox_id, during) from exc
