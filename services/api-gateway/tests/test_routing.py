"""The gateway's routing answers: a wrong method is `405 method_not_allowed` naming
every method the path serves, and a path with a trailing slash is not found, never
redirected to a `Location` made from the client's `Host`."""

import pytest
from starlette.testclient import TestClient

from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.settings import Settings


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The gateway's real routes; no lifespan (nothing here reaches an endpoint)."""
    return TestClient(create_app(Settings()), follow_redirects=False)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/sandboxes", "GET, HEAD, POST"),
        ("PATCH", "/api/v1/sandboxes/sb-aaaaaaaaaaaa", "DELETE, GET, HEAD"),
        ("POST", "/api/v1/sandboxes/sb-aaaaaaaaaaaa/files/workspace/a.txt", None),
    ],
)
def test_a_wrong_method_is_405_method_not_allowed_with_every_allowed_method(
    client: TestClient, method: str, path: str, allowed: str | None
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.json()["error"]["code"] == "method_not_allowed"
    methods = response.headers["allow"]
    if allowed is not None:
        assert methods == allowed
    else:  # files: GET, PUT and DELETE on one path, each an ApiRoute of its own
        assert {"GET", "PUT", "DELETE"} <= set(methods.split(", ")), methods


@pytest.mark.parametrize(
    "path", ["/api/v1/sandboxes/", "/api/v1/snapshots/", "/api/v1/", "/health/", "/api/v1"]
)
def test_a_trailing_slash_is_not_found_and_never_redirected(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404, response.headers
    assert "location" not in response.headers
    assert response.json()["error"]["code"] == "not_found"


def test_the_console_redirect_names_a_path_not_the_clients_host(client: TestClient) -> None:
    response = client.get("/console", headers={"Host": "evil.example"})
    assert response.status_code in (301, 302, 307, 308)
    assert response.headers["location"] == "/console/"
