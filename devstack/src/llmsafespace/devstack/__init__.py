"""Run LLMSafeSpace on one machine: embedded NATS, PostgreSQL, Redis and the four services."""

from llmsafespace.devstack.errors import AlreadyRunningError, StackError, StartupError
from llmsafespace.devstack.stack import Stack

__all__ = ["AlreadyRunningError", "Stack", "StackError", "StartupError"]
