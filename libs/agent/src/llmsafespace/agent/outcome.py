"""Where an execution's output goes, and the outcome of one that was stopped."""

from __future__ import annotations

from collections.abc import Callable

from .cancel import Cancel
from .frames import CANCELLED_EXIT_CODE, TIMEOUT_EXIT_CODE, Outcome, Usage
from .protocol import Frame

Sink = Callable[[str, str], None]
"""Receives output as it arrives: (stream, text)."""

DisplaySink = Callable[[Frame], None]
"""Receives rich results (MIME bundles) as the code displays them, in order with output."""


def discard_display(bundle: Frame) -> None:
    """Drop results nobody asked for."""


def stopped(reason: str, usage: Usage) -> Outcome:
    """The outcome of an execution stopped by ``reason`` ("timeout" or "cancelled")."""
    code = TIMEOUT_EXIT_CODE if reason == "timeout" else CANCELLED_EXIT_CODE
    return Outcome(status=reason, exit_code=code, ended_by=reason, usage=usage)


def cut_short(cancel: Cancel, usage: Usage) -> Outcome:
    """The outcome of a process that did not exit on its own: stopped by ``cancel`` if it
    was set, else by its deadline."""
    return stopped("cancelled" if cancel.is_set() else "timeout", usage)
