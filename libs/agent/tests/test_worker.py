"""The worker's own setup, run in a child process (it changes process-wide state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

WANTED = {"KEPT": "same", "CHANGED": "new", "ADDED": "value"}


def test_set_environ_leaves_exactly_the_given_variables() -> None:
    """In ``os.environ`` and in the process's environment (what a child inherits)."""
    probe = (
        "import json, os, subprocess, sys;"
        "from llmsafespace.agent.worker import set_environ;"
        f"set_environ({WANTED!r});"
        "print(json.dumps(dict(os.environ)), flush=True);"
        "subprocess.run(['env'], check=True)"
    )
    env = {"KEPT": "same", "CHANGED": "old", "REMOVED": "gone"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert json.loads(shown[0]) == WANTED
    assert dict(line.split("=", 1) for line in shown[1:]) == WANTED
