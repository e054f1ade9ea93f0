"""Bad input gets the error envelope with the right status — never a 500 or a hang."""

import httpx
import pytest

pytestmark = pytest.mark.stack


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "print(1)"}, "type"),
        ({"type": "cobol", "content": "x"}, "type"),
        ({"type": "code", "content": ""}, "content"),
        ({"type": "code", "content": "x", "timeout": -1}, "timeout"),
        ({"type": "code", "content": "x", "timeout": "long"}, "timeout"),
        ({"type": "code", "content": 5}, "content"),
    ],
)
async def test_execute_names_the_bad_field(
    api: httpx.AsyncClient, sandbox_id: str, body: dict[str, object], field: str
) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body)
    error = assert_error(response, 400, "invalid_request")
    assert field in error["details"]["fields"]


@pytest.mark.parametrize(
    "raw", [b"{", b"[1, 2]", b"\xff\xfe", b'{"type": "code", "content": "x",}']
)
async def test_malformed_json_is_a_400(api: httpx.AsyncClient, sandbox_id: str, raw: bytes) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/execute", content=raw)
    assert_error(response, 400, "invalid_request")


async def test_create_names_the_bad_field(api: httpx.AsyncClient) -> None:
    response = await api.post("/sandboxes", json={"timeout": 0, "resources": {"cpu": "x"}})
    error = assert_error(response, 400, "invalid_request")
    assert {"timeout", "resources.cpu"} <= set(error["details"]["fields"])


async def test_an_unknown_runtime_is_a_400_naming_the_available_ones(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/sandboxes", json={"runtime": "fortran:77"})
    error = assert_error(response, 400, "invalid_request")
    assert "python:3.11" in str(error["message"])


@pytest.mark.parametrize("sandbox_id", ["sb-doesnotexist0", "nope", "sb-../../etc"])
async def test_unknown_sandboxes_are_404_on_every_route(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    assert_error(await api.get(f"/sandboxes/{sandbox_id}"), 404, "not_found")
    assert_error(await api.delete(f"/sandboxes/{sandbox_id}"), 404, "not_found")
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "1"}
    )
    assert_error(response, 404, "not_found")


async def test_oversized_bodies_are_413(api: httpx.AsyncClient, sandbox_id: str) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/execute", content=b"x" * (2 * 1024 * 1024))
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer lsp_wrong"}, {"Authorization": "Basic abc"}],
)
async def test_requests_without_a_valid_key_are_401(stack, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as anonymous:
        assert_error(await anonymous.post("/sandboxes", json={}), 401, "unauthorized")
        assert_error(await anonymous.get("/sandboxes/sb-aaaaaaaaaaaa"), 401, "unauthorized")


async def test_unknown_routes_and_methods_use_the_envelope(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/nothing-here"), 404, "not_found")
    assert_error(await api.put("/sandboxes"), 405, "invalid_request")


async def test_another_users_sandbox_is_404(
    api: httpx.AsyncClient, sandbox_id: str, second_user_api: httpx.AsyncClient
) -> None:
    assert_error(await second_user_api.get(f"/sandboxes/{sandbox_id}"), 404, "not_found")
    response = await second_user_api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "1"}
    )
    assert_error(response, 404, "not_found")
    assert_error(await second_user_api.delete(f"/sandboxes/{sandbox_id}"), 404, "not_found")
    assert (await api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "running"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/sandboxes", {"metadata": {"k": "a\u0000b"}}),
        ("/sandboxes", {"env": {"A": "\u0000"}}),
        ("/warmpools", {"name": "nul-script", "preloadScripts": ["x = 1\u0000"]}),
    ],
)
async def test_nul_characters_that_postgresql_cannot_store_are_a_400(
    api: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    response = await api.post(path, json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_request")
