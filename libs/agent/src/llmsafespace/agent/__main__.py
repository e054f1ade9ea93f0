"""``python -m llmsafespace.agent --socket PATH --token-file PATH``: run the in-sandbox agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

from . import landlock
from .interpreter import Interpreter
from .server import Agent, AgentConfig


def _read_token(path: Path) -> str:
    """Read the token, then delete its file so user code cannot read it."""
    token = path.read_text().strip()
    with contextlib.suppress(OSError):
        path.unlink()
    if not token:
        raise SystemExit(f"agent: empty token in {path}")
    return token


def _confine(args: argparse.Namespace, agent_root: str) -> None:
    """Apply Landlock before serving; say so in the log when the kernel lacks it."""
    rules = landlock.sandbox_rules(args.workspace, agent_root, str(Path(args.socket).parent))
    abi = landlock.restrict(rules)
    if abi == 0:
        print("agent: landlock_unavailable", file=sys.stderr, flush=True)


async def _serve(args: argparse.Namespace, agent_root: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    worker_env = {**env, "PYTHONPATH": agent_root}
    config = AgentConfig(token=_read_token(args.token_file), env=env, workspace=args.workspace)
    interpreter = Interpreter(sys.executable, args.workspace, worker_env)
    warming = asyncio.create_task(interpreter.warm())  # alongside the first connection
    await Agent(config, interpreter).serve(args.socket)
    warming.cancel()


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(prog="llmsafespace.agent")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--workspace", default="/workspace")
    parser.add_argument("--landlock", action="store_true", help="restrict to the sandbox paths")
    args = parser.parse_args()
    agent_root = str(Path(__file__).resolve().parents[2])
    if args.landlock:
        _confine(args, agent_root)
    asyncio.run(_serve(args, agent_root))


if __name__ == "__main__":
    main()
