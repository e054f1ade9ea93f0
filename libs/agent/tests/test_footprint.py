"""What the agent loads at start: every sandbox pays for it in memory and start time."""

from __future__ import annotations

import json
import subprocess
import sys

# asyncio (~5 MB with its dependencies), typing and argparse (~0.9 MB), OpenSSL (hashlib,
# ssl), subprocess, the Python wrappers of the C modules the agent runs on (threading,
# queue, socket, selectors, signal: ~1 MB, see the agent's ``threads``), the worker's own
# modules (loaded before the first fork, not at import: a JavaScript sandbox never needs
# them) and what only some requests need.
NOT_AT_START = (
    "asyncio",
    "typing",
    "argparse",
    "dataclasses",
    "ssl",
    "hashlib",
    "subprocess",
    "threading",
    "queue",
    "socket",
    "selectors",
    "signal",
    "llmsafespace.agent.worker",
    "llmsafespace.agent.display",
    "llmsafespace.agent.files",
    "llmsafespace.agent.commands",
    "llmsafespace.agent.terminal",
    "termios",
)


def test_the_agent_starts_without_asyncio_typing_openssl_or_the_workers_modules() -> None:
    probe = (
        "import json, sys; import llmsafespace.agent.__main__; print(json.dumps(list(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-s", "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [name for name in NOT_AT_START if name in loaded] == []


def test_the_agent_and_its_worker_share_one_loaded_c_library() -> None:
    """Loaded per call, each ``CDLL`` (a class of its own) would be built again in the
    worker, in pages it shares with the agent."""
    probe = (
        "import ctypes, gc; from llmsafespace.agent import landlock, secret, signals;"
        "landlock.abi_version(); secret.set_dumpable(True); signals.protect();"
        "secret.set_dumpable(True);"
        "print(sum(type(o) is ctypes.CDLL for o in gc.get_objects()))"
    )
    loaded = subprocess.run(
        [sys.executable, "-s", "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "1"
