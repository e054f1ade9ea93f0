"""Which browser pages may open the gateway's WebSockets (cross-site WebSocket hijacking
is refused before the upgrade)."""

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from llmsafespace.contracts import ErrorCode, ServiceError


def admit_origin(connection: HTTPConnection, allowed: list[str]) -> None:
    """Clients that send no Origin (SDKs, CLIs), pages served by the gateway itself (the
    web console: its Origin names the host it connects to), and `allowed` origins ('*'
    for any) pass; any other page is refused with 403."""
    origin = connection.headers.get("origin")
    if origin is None or origin in allowed or "*" in allowed:
        return
    if urlsplit(origin).netloc == connection.headers.get("host"):
        return
    raise ServiceError(ErrorCode.FORBIDDEN, f"origin {origin} is not allowed")
