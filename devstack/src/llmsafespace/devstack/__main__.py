"""`python -m llmsafespace.devstack up`: run the whole stack in the foreground."""

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

import structlog

from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.security_levels import describe, missing_by_level
from llmsafespace.devstack.stack import Stack

DEFAULT_HOME = ".llmsafespace"
DEFAULT_PORT = 8080


def write_env_file(path: Path, stack: Stack) -> None:
    """STATE/env (mode 0600): the two lines a shell `source`s to talk to the stack,
    exported, so that what it starts next (the SDK, the CLI, an example) sees them too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"export LLMSAFESPACE_API_URL={shlex.quote(stack.api_url)}\n")
        file.write(f"export LLMSAFESPACE_API_KEY={shlex.quote(stack.admin_key)}\n")
    path.chmod(0o600)


def banner(stack: Stack, env_path: Path, levels: str) -> str:
    others = stack.api_urls[1:]
    return "\n".join(
        [
            "LLMSafeSpace is up.",
            f"LLMSAFESPACE_API_URL={stack.api_url}",
            f"LLMSAFESPACE_API_KEY={stack.admin_key}",
            f"(also written to {env_path}; `source {env_path}`)",
            *([f"More gateways: {' '.join(others)}"] if others else []),
            levels,
            'Try: curl -s -H "Authorization: Bearer $LLMSAFESPACE_API_KEY" '
            "-X POST $LLMSAFESPACE_API_URL/sandboxes -d '{}'",
        ]
    )


async def up(state_dir: Path, port: int, keep_sandboxes: bool = False) -> int:
    stack = Stack(state_dir, port, keep_sandboxes=keep_sandboxes)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stack.start()
    except StackError as error:
        print(error, file=sys.stderr)
        return 1
    env_path = state_dir / "env"
    write_env_file(env_path, stack)
    levels = describe(await missing_by_level(stack.services["sandbox-svc"].ready_url))
    print(banner(stack, env_path, levels), flush=True)
    try:
        await stopping.wait()
    finally:
        print("Stopping LLMSafeSpace...", flush=True)
        await stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m llmsafespace.devstack")
    parser.add_argument("command", choices=["up"], help="up: run the stack in the foreground")
    parser.parse_args()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    state_dir = Path(os.environ.get("LLMSAFESPACE_HOME") or DEFAULT_HOME)
    port = int(os.environ.get("LLMSAFESPACE_PORT") or DEFAULT_PORT)
    keep = os.environ.get("LLMSAFESPACE_KEEP_SANDBOXES", "") not in ("", "0")
    return asyncio.run(up(state_dir, port, keep))


if __name__ == "__main__":
    sys.exit(main())
