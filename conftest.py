"""For every test run (any path): a summary line of the tests skipped for lack of a host
feature, so a missing gVisor or network mode is noticed rather than lost among the skips.

A skip reason that starts with `HOST_FEATURE` ("host feature: ") is of that kind."""

from collections import Counter

import pytest
from _pytest.terminal import TerminalReporter

HOST_FEATURE = "host feature: "


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    reasons = Counter(
        reason.removeprefix(HOST_FEATURE)
        for report in terminalreporter.stats.get("skipped", [])
        if (reason := _reason(report)).startswith(HOST_FEATURE)
    )
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.write_sep(
        "=", f"{total} skipped for lack of a host feature", yellow=True, bold=True
    )
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count:4d} x {reason}")
