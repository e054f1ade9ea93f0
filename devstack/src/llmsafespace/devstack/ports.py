"""Local TCP ports: pick a free one, check one is free."""

import socket

HOST = "127.0.0.1"

_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now, and that this process has
    not handed out before. The kernel offers ports it offered shortly before again (26-39
    of a thousand binds in a row here): two services of one stack would then share a
    port, and the one that binds it answers the other's readiness probe and requests."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_is_free(port: int) -> bool:
    """True if a server could bind 127.0.0.1:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True
