"""``python -m llmsafespace.agent (--socket PATH | --listen HOST:PORT) --token-file PATH``.

Runs the in-sandbox agent on a Unix socket (local driver) or TCP (Kubernetes Pods)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from . import jsworker, landlock, secret, signals
from .interpreter import Interpreter
from .server import Agent, AgentConfig
from .userpath import USER_PYTHONPATH


def _read_token(path: str) -> str:
    """Read the token, then delete its file so user code cannot read it."""
    with open(path) as file:
        token = file.read().strip()
    with contextlib.suppress(OSError):
        os.unlink(path)
    if not token:
        raise SystemExit(f"agent: empty token in {path}")
    return token


def _confine(args: argparse.Namespace, agent_root: str) -> None:
    """Apply Landlock before serving; say so in the log when the kernel lacks it."""
    socket_dir = os.path.dirname(os.path.abspath(args.socket)) if args.socket else args.workspace
    rules = landlock.sandbox_rules(args.workspace, agent_root, socket_dir)
    ports = None if args.tcp_ports is None else [int(p) for p in args.tcp_ports.split(",") if p]
    abi = landlock.restrict(rules, ports)
    if abi == 0:
        print("agent: landlock_unavailable", file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    user_path = env.pop(USER_PYTHONPATH, None)  # the agent's own path never reaches user code
    if user_path:
        env["PYTHONPATH"] = user_path
    token = _read_token(args.token_file)
    config = AgentConfig(token=token, env=env, workspace=args.workspace)
    worker = jsworker.command(env.get("PATH")) if args.language == "javascript" else None
    interpreter = Interpreter(args.workspace, env, token, worker)
    interpreter.warm()  # a fork: the worker gets ready alongside the first connection
    agent = Agent(config, interpreter)
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        agent.serve_tcp(host.strip("[]") or "0.0.0.0", int(port))
    else:
        agent.serve(args.socket)


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(prog="llmsafespace.agent")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="serve on this Unix socket")
    where.add_argument("--listen", metavar="HOST:PORT", help="serve on TCP")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--workspace", default="/workspace")
    parser.add_argument("--landlock", action="store_true", help="restrict to the sandbox paths")
    parser.add_argument(
        "--language",
        choices=("python", "javascript"),
        default=os.environ.get("LLMSAFESPACE_LANGUAGE", "python"),  # an image's own
        help="of run_code (default: $LLMSAFESPACE_LANGUAGE, else python)",
    )
    parser.add_argument("--tcp-ports", help="with --landlock: the only TCP ports to connect to")
    args = parser.parse_args()
    agent_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    secret.set_dumpable(False)  # before the token is read: see ``secret``
    if args.landlock:
        _confine(args, agent_root)
    if not signals.protect():  # before any user code: nothing it starts may signal us
        print("agent: signal_guard_unavailable", file=sys.stderr, flush=True)
    _serve(args)


if __name__ == "__main__":
    main()
