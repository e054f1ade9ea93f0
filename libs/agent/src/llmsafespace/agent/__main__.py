"""``python -m llmsafespace.agent --socket PATH --token-file PATH``: run the in-sandbox agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

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


async def _serve(args: argparse.Namespace, agent_root: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    worker_env = {**env, "PYTHONPATH": agent_root}
    config = AgentConfig(token=_read_token(args.token_file), env=env, workspace=args.workspace)
    interpreter = Interpreter(sys.executable, args.workspace, worker_env)
    await Agent(config, interpreter).serve(args.socket)


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(prog="llmsafespace.agent")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--workspace", default="/workspace")
    asyncio.run(_serve(parser.parse_args(), str(Path(__file__).resolve().parents[2])))


if __name__ == "__main__":
    main()
