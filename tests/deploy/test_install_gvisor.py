"""Issue 14 item 5: setup printed "apt offers no runsc here" on a machine whose apt did
offer runsc a minute later — its one `apt-get update` failed (or raced another apt) and
its output was thrown away. scripts/install-gvisor.sh retries the update once and prints
apt's own error when the retry fails too. apt-get and apt-cache are stand-ins here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "install-gvisor.sh"
LOCK_ERROR = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242"

APT_GET = """#!/bin/sh
state="$APT_STATE"
echo "$*" >> "$state/calls"
case "$1" in
  update)
    n=$(cat "$state/updates" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$state/updates"
    if [ "$n" -le "$FAILING_UPDATES" ]; then echo "$LOCK_ERROR" >&2; exit 100; fi
    touch "$state/updated";;
  install) touch "$state/installed";;
esac
"""
APT_CACHE = """#!/bin/sh
if [ -e "$APT_STATE/updated" ] && [ "$OFFERS_RUNSC" = yes ]; then
  echo "runsc:"; echo "  Candidate: 20240212.0-1"
else
  echo "runsc:"; echo "  Candidate: (none)"
fi
# A version table longer than a pipe holds: a reader that stops at the candidate line
# leaves this writer to die of SIGPIPE.
i=0
while [ $i -lt "${TABLE_LINES:-0}" ]; do echo "     0.0~$i 500 http://x"; i=$((i+1)); done
"""


def _run(
    tmp_path: Path, failing_updates: int, offers: bool, table_lines: int = 0
) -> tuple[str, Path]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in (("apt-get", APT_GET), ("apt-cache", APT_CACHE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "RUNSC": str(tmp_path / "runsc"),
        "APT_RETRY_DELAY": "0",
        "APT_STATE": str(state),
        "FAILING_UPDATES": str(failing_updates),
        "OFFERS_RUNSC": "yes" if offers else "no",
        "LOCK_ERROR": LOCK_ERROR,
        "TABLE_LINES": str(table_lines),
    }
    ran = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stderr, state


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the script installs as root only")


def test_a_failed_update_is_retried_and_runsc_installed(tmp_path: Path) -> None:
    stderr, state = _run(tmp_path, failing_updates=1, offers=True)
    assert (state / "installed").exists(), stderr
    assert (state / "calls").read_text().count("update") == 2
    assert "offers no runsc" not in stderr


def test_a_candidate_followed_by_a_long_version_table_is_found(tmp_path: Path) -> None:
    """A fresh machine's apt-cache printed more after the candidate line than grep -q
    waited for: the candidate was missed and runsc never installed."""
    stderr, state = _run(tmp_path, failing_updates=0, offers=True, table_lines=20_000)
    assert (state / "installed").exists(), stderr


def test_an_update_failing_twice_shows_apts_own_error(tmp_path: Path) -> None:
    stderr, state = _run(tmp_path, failing_updates=2, offers=True)
    assert not (state / "installed").exists()
    assert LOCK_ERROR in stderr
    assert "offers no runsc" not in stderr  # not the wrong diagnosis


def test_no_candidate_after_a_good_update_says_so(tmp_path: Path) -> None:
    stderr, state = _run(tmp_path, failing_updates=0, offers=False)
    assert not (state / "installed").exists()
    assert "apt offers no runsc here" in stderr
