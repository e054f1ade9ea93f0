"""``python -m llmsafespace.agent (--socket PATH | --listen HOST:PORT) --token-file PATH``.

Runs the in-sandbox agent on a Unix socket (local driver) or TCP (Kubernetes Pods)."""

from __future__ import annotations

import contextlib
import os
import sys

from . import jsworker, landlock, secret, signals
from .arguments import Arguments, parse
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


def _confine(args: Arguments, agent_root: str) -> None:
    """Apply Landlock before serving; say so in the log when the kernel lacks it."""
    socket_dir = os.path.dirname(os.path.abspath(args.socket)) if args.socket else args.workspace
    rules = landlock.sandbox_rules(args.workspace, agent_root, socket_dir)
    ports = None if args.tcp_ports is None else [int(p) for p in args.tcp_ports.split(",") if p]
    abi = landlock.restrict(rules, ports)
    if abi == 0:
        print("agent: landlock_unavailable", file=sys.stderr, flush=True)


def _serve(args: Arguments) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    user_path = env.pop(USER_PYTHONPATH, None)  # the agent's own path never reaches user code
    if user_path:
        env["PYTHONPATH"] = user_path
    worker = jsworker.command(env.get("PATH")) if args.language == "javascript" else None
    interpreter = Interpreter(args.workspace, env, command=worker)
    # Forked before the token is read, the first worker never held it: it skips the wipe
    # (~8 ms) and gets ready alongside the first connection. Later workers wipe it.
    interpreter.warm()
    token = _read_token(args.token_file)
    interpreter.guard(token)
    config = AgentConfig(token=token, env=env, workspace=args.workspace)
    agent = Agent(config, interpreter)
    if args.socket is not None:
        agent.serve(args.socket)
    elif args.listen is not None:
        host, _, port = args.listen.rpartition(":")
        agent.serve_tcp(host.strip("[]") or "0.0.0.0", int(port))


def main() -> None:
    """Parse arguments and serve until killed."""
    args = parse(sys.argv[1:], os.environ.get("LLMSAFESPACE_LANGUAGE", "python"))
    agent_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    secret.set_dumpable(False)  # before the token is read: see ``secret``
    if args.landlock:
        _confine(args, agent_root)
    if not signals.protect():  # before any user code: nothing it starts may signal us
        print("agent: signal_guard_unavailable", file=sys.stderr, flush=True)
    _serve(args)


if __name__ == "__main__":
    main()
