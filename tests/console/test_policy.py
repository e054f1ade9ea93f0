"""The console's Content-Security-Policy and which pages may open the gateway's WebSockets."""

import pytest
from starlette.requests import HTTPConnection

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.gateway.console import content_security_policy
from llmsafespace.gateway.origins import admit_origin


def connection(**headers: str) -> HTTPConnection:
    encoded = [(name.encode(), value.encode()) for name, value in headers.items()]
    return HTTPConnection({"type": "websocket", "headers": encoded})


def test_sockets_are_allowed_to_the_host_the_page_came_from() -> None:
    policy = content_security_policy("127.0.0.1:8080")
    assert "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080" in policy
    assert "connect-src 'self' ws://[::1]:80 wss://[::1]:80" in content_security_policy("[::1]:80")


@pytest.mark.parametrize(
    "host", ["evil.test; script-src *", "a b", "gw:8080\n", "", None, "x" * 300]
)
def test_a_strange_host_header_adds_nothing_to_the_policy(host: str | None) -> None:
    policy = content_security_policy(host)
    assert "connect-src 'self';" in policy
    assert policy.count("script-src") == 1
    assert "script-src 'self';" in policy


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"host": "gw:8080"}, []),  # no Origin: an SDK or CLI
        ({"host": "gw:8080", "origin": "http://gw:8080"}, []),  # the console itself
        ({"host": "gw:8080", "origin": "https://app.test"}, ["https://app.test"]),
        ({"host": "gw:8080", "origin": "https://app.test"}, ["*"]),
    ],
)
def test_these_pages_may_open_a_websocket(headers: dict[str, str], allowed: list[str]) -> None:
    admit_origin(connection(**headers), allowed)


@pytest.mark.parametrize(
    "origin", ["https://evil.test", "http://gw:8081", "http://gw.evil.test:8080", "null"]
)
def test_other_pages_are_refused(origin: str) -> None:
    with pytest.raises(ServiceError) as refused:
        admit_origin(connection(host="gw:8080", origin=origin), ["https://app.test"])
    assert refused.value.code is ErrorCode.FORBIDDEN
