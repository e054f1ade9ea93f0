"""The agent's signal guard: what runs under it cannot signal the process that set it."""

from __future__ import annotations

import subprocess
import sys

GUARDED = r"""
import os, signal, subprocess, sys, fcntl
from llmsafespace.agent import signals
os.setpgid(0, 0)  # the agent leads its process group (bwrap --new-session)
assert signals.protect()
probe = '''
import errno, fcntl, os, signal, socket
agent = os.getppid()
results = []
for name, call in [
    ("kill", lambda: os.kill(agent, signal.SIGSTOP)),
    ("killpg", lambda: os.killpg(agent, signal.SIGSTOP)),
    ("kill-1", lambda: os.kill(-1, 0)),
    ("pidfd", lambda: signal.pidfd_send_signal(os.open(f"/proc/{agent}", os.O_DIRECTORY), 0)),
    ("setown", lambda: fcntl.fcntl(socket.socket().fileno(), fcntl.F_SETOWN, agent)),
    ("setsig", lambda: fcntl.fcntl(socket.socket().fileno(), 10, signal.SIGSTOP)),
]:
    try:
        call()
        results.append(name + "=allowed")
    except PermissionError:
        results.append(name + "=EPERM")
os.kill(os.getpid(), 0)  # signalling anything else is fine
print(" ".join(results))
'''
child = subprocess.run(
    [sys.executable, "-c", probe], capture_output=True, text=True, start_new_session=True
)
print(child.stdout.strip() or child.stderr)
sleeper = subprocess.Popen(["sleep", "30"])
os.kill(sleeper.pid, signal.SIGKILL)  # the agent still signals its children
print("child killed:", sleeper.wait())
"""


def test_code_the_agent_starts_cannot_signal_or_stop_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", GUARDED], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.split() == [
        "kill=EPERM",
        "killpg=EPERM",
        "kill-1=EPERM",
        "pidfd=EPERM",
        "setown=EPERM",
        "setsig=EPERM",
    ]
    assert second == "child killed: -9"
