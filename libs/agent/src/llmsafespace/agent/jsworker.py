"""The JavaScript worker: ``node repl.js``, exec'd (not forked) and spoken to like the
Python worker (requests on its fd 3, replies on fd 4, output on its stdout and stderr)."""

from __future__ import annotations

import os

REQUEST_FD, REPLY_FD = 3, 4
SCRIPT = os.path.join(os.path.dirname(__file__), "repl.js")


def command(path: str | None = None) -> list[str]:
    """``node`` (found on ``path``, the sandbox's ``PATH``) running the REPL script."""
    import shutil  # only for JavaScript sandboxes

    node = shutil.which("node", path=path)
    if node is None:
        raise SystemExit("agent: --language javascript needs node on PATH")
    return [node, SCRIPT]


def spawn(argv: list[str], pipes: tuple[int, int, int, int], cwd: str, env: dict[str, str]) -> int:
    """Start ``argv`` on the worker's pipes (request, reply, stdout, stderr) in its own
    session; returns its pid (a child of ours, reaped by the caller)."""
    request_fd, reply_fd, out_fd, err_fd = pipes
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, request_fd, REQUEST_FD),
            (os.POSIX_SPAWN_DUP2, reply_fd, REPLY_FD),
            (os.POSIX_SPAWN_DUP2, null, 0),
            (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, err_fd, 2),
        ]
        # posix_spawn has no cwd: the node process changes into it first thing.
        return os.posix_spawn(argv[0], [*argv, cwd], env, file_actions=actions, setsid=True)
    finally:
        os.close(null)
