"""The worker's own setup, run in a child process (it changes process-wide state)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.interpreter import Interpreter

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


def test_the_warm_up_leaves_no_trace_the_first_cell_could_see() -> None:
    """The worker walks a cell's path before its first request: unseen by that cell."""
    outputs: list[str] = []
    with tempfile.TemporaryDirectory() as cwd:
        interpreter = Interpreter(cwd, {"PATH": "/usr/bin:/bin"})
        try:
            outcome = interpreter.run(
                "import linecache\n"
                "print(sorted(k for k in globals() if not k.startswith('__')))\n"
                "print('<warm-up>' in linecache.cache)\n"
                "1 / 0",
                time_limit=30,
                sink=lambda stream, text: outputs.append(text),
                cancel=Cancel(),
            )
        finally:
            interpreter.close()
    printed = "".join(outputs).splitlines()
    assert printed[:2] == ["['linecache']", "False"]
    assert outcome.error is not None
    assert 'File "<cell-1>", line 4' in outcome.error["traceback"]
