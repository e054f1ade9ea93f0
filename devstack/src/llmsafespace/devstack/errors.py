"""Errors raised while starting or running the devstack."""


class StackError(RuntimeError):
    """The devstack could not do what was asked."""


class AlreadyRunningError(StackError):
    """Another devstack holds the lock on this state directory."""


class StartupError(StackError):
    """A server or service did not become ready; the message ends with its log tail."""
