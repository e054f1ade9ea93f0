"""Bad input gets the error envelope with the right status — never a 500 or a hang."""

import json
from typing import Any

import httpx
import pytest
import websockets

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


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/execute", '{"type": "code", "content": "1", "timeout": NaN}'),
        ("/execute", '{"type": "code", "content": "1", "idleTimeout": Infinity}'),
        ("", '{"resources": {"cpu": -Infinity}}'),
    ],
)
async def test_nan_and_infinity_are_malformed_json_not_out_of_range(
    api: httpx.AsyncClient, sandbox_id: str, path: str, raw: str
) -> None:
    url = f"/sandboxes/{sandbox_id}{path}" if path else "/sandboxes"
    error = assert_error(await api.post(url, content=raw.encode()), 400, "invalid_request")
    assert str(error["message"]).startswith("malformed JSON"), error


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
    wrong_method = await api.put("/sandboxes")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "GET, HEAD, POST"


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


HUGE = "1" * 5000  # past Python's 4300-digit limit for int()
EXECUTE_RAW = [
    '{"type": "code", "content": "1", "timeout": ' + HUGE + "}",
    '{"type": "code", "content": "x = \\ud800"}',
    '{"type": "code", "content": "1", "env": {"A": "\\udfff"}}',
    '{"type": "code", "content": "1", "env": {"\\ud800": "v"}}',
]
CREATE_RAW = [
    '{"timeout": ' + HUGE + "}",
    '{"metadata": {"k": "\\ud800"}}',
    '{"env": {"A": "x\\udc00y"}}',
]


@pytest.mark.parametrize("raw", EXECUTE_RAW)
async def test_json_python_cannot_hold_is_a_400_on_execute(
    api: httpx.AsyncClient, sandbox_id: str, raw: str
) -> None:
    response = await api.post(f"/sandboxes/{sandbox_id}/execute", content=raw.encode())
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("raw", CREATE_RAW)
async def test_json_python_cannot_hold_is_a_400_on_create(api: httpx.AsyncClient, raw: str) -> None:
    assert_error(await api.post("/sandboxes", content=raw.encode()), 400, "invalid_request")


async def test_a_nul_in_an_api_key_name_is_a_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/user/apikeys", json={"name": "ci\u0000"})
    assert "name" in assert_error(response, 400, "invalid_request")["details"]["fields"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"content": "echo\u0000hi"}, "content"),
        ({"env": {"A": "x\u0000"}}, "env"),
        ({"env": {"A=B": "x"}}, "env"),
        ({"workingDir": "/workspace\u0000/x"}, "workingDir"),
        ({"timeout": True}, "timeout"),
        ({"idleTimeout": True}, "idleTimeout"),
    ],
)
async def test_commands_the_agent_could_not_start_are_a_400(
    api: httpx.AsyncClient, sandbox_id: str, extra: dict[str, object], field: str
) -> None:
    body = {"type": "command", "content": "echo hi"} | extra
    response = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body)
    assert field in assert_error(response, 400, "invalid_request")["details"]["fields"]
    after = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "7"}
    )
    assert after.json()["result"] == "7", "the sandbox keeps serving"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout": True}, "timeout"),
        ({"resources": {"cpu": 1e-9}}, "resources.cpu"),
        ({"resources": {"cpu": True}}, "resources.cpu"),
        ({"resources": {"ephemeralStorage": "0"}}, "resources.ephemeralStorage"),
    ],
)
async def test_create_refuses_nonsense_numbers_naming_the_public_field(
    api: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    error = assert_error(await api.post("/sandboxes", json=body), 400, "invalid_request")
    assert field in error["details"]["fields"], error


async def test_an_id_with_a_trailing_newline_is_not_found(
    stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    assert_error(await api.get(f"/sandboxes/{sandbox_id}%0A"), 404, "not_found")
    url = f"{stack.api_url}/sandboxes/{sandbox_id}%0A/stream".replace("http://", "ws://")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {stack.admin_key}"}
        )
    assert 400 <= refused.value.response.status_code < 500  # no such route: refused


async def test_a_directory_named_with_crlf_downloads_as_an_archive(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    made = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={
            "type": "code",
            "content": "import os\nd = '/workspace/evil\\r\\nX-Injected: 1'\n"
            "os.makedirs(d, exist_ok=True)\nopen(d + '/f', 'w').write('data')",
        },
    )
    assert made.json()["status"] == "completed", made.text
    response = await api.get(
        f"/sandboxes/{sandbox_id}/files/archive",
        params={"path": "/workspace/evil\r\nX-Injected: 1"},
    )
    assert response.status_code == 200, response.text
    assert "x-injected" not in response.headers
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''evil%0D%0AX-Injected%3A%201.tar.gz" in disposition
    assert len(response.content) > 0


async def ws_exchange(stack, sandbox_id: str, messages: list[str]) -> list[dict[str, Any]]:
    """Send each raw message, then a ping; the answers up to the pong."""
    url = f"{stack.api_url}/sandboxes/{sandbox_id}/stream".replace("http://", "ws://")
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    answers = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        for raw in messages:
            await ws.send(raw)
        await ws.send(json.dumps({"type": "ping", "timestamp": 1}))
        while (answer := json.loads(await ws.recv()))["type"] != "pong":
            answers.append(answer)
    return answers


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"executionId": "exec-1"}', "invalid_message"),
        ('{"type": 5}', "invalid_message"),
        ('{"type": null}', "invalid_message"),
        ('{"type": "dance"}', "unknown_message_type"),
        (
            '{"type": "execute", "executionId": "exec-s1", "mode": "code", "content": "\\ud800"}',
            "invalid_message",
        ),
        ('{"type": "ping", "timestamp": ' + HUGE + "}", "invalid_message"),
        (
            '{"type": "execute", "executionId": "exec-f1", "mode": "code", "content": "1",'
            ' "timeout": NaN}',
            "invalid_message",
        ),
        (
            '{"type": "execute", "executionId": "exec-n1", "mode": "command", "content": "env",'
            ' "env": {"A": "\\u0000"}}',
            "invalid_request",
        ),
        (
            '{"type": "execute", "executionId": "exec-t1", "mode": "code", "content": "1",'
            ' "timeout": true}',
            "invalid_request",
        ),
    ],
)
async def test_bad_socket_messages_get_an_error_and_the_socket_keeps_serving(
    stack, sandbox_id: str, raw: str, code: str
) -> None:
    answers = await ws_exchange(stack, sandbox_id, [raw])
    assert [(answer["type"], answer["code"]) for answer in answers] == [("error", code)], answers
