"""Errors raised by sandbox drivers and the agent client."""


class DriverError(Exception):
    """A sandbox runtime operation failed."""


class UnknownRuntime(DriverError):
    """The spec asks for a runtime this driver does not provide."""


class UnsupportedSpec(DriverError):
    """The spec asks for something this host cannot provide (the message says what to install)."""


class RuntimeUnavailable(DriverError):
    """The driver cannot run sandboxes here, or a sandbox did not come up."""


class AgentUnavailable(DriverError):
    """The in-sandbox agent cannot be reached or stopped answering."""
