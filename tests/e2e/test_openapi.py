"""`/openapi.json` and `/docs`: complete, valid, self-contained, and saying what the
server does: the media types, statuses and bodies it declares are checked against real
answers. (The API it describes is fuzzed against it in tests/fuzz/test_openapi_fuzz.py.)"""

import io
import secrets
import tarfile
from typing import Any

import httpx
import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from playwright.async_api import async_playwright

from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.openapi import served
from llmsafespace.gateway.settings import Settings

pytestmark = pytest.mark.stack
CHROMIUM = "/usr/bin/chromium"  # Debian's, as tests/console uses


def root(stack) -> str:
    return stack.api_url.removesuffix("/api/v1")


@pytest.fixture(scope="module")
async def spec(stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=root(stack)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_every_route_the_app_serves_is_described(spec: dict[str, Any]) -> None:
    app = create_app(Settings())
    paths = spec["paths"]
    assert isinstance(paths, dict)
    for method, path, operation in served(app.routes):
        assert method.lower() in paths.get(path, {}), (method, path)
        assert operation is not None, f"describe {method} {path} where its route is declared"
    assert "/api/v1/audit" in paths
    assert "/openapi.json" in paths


async def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    components = spec["components"]
    assert isinstance(components, dict)
    assert components["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "ErrorEnvelope" in components["schemas"]
    create = spec["paths"]["/api/v1/sandboxes"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert {"201", "400", "401", "413", "429", "500"} <= set(create["responses"])


async def test_the_docs_page_renders_the_document_without_fetching_anything_else(
    stack,
) -> None:
    async with httpx.AsyncClient(base_url=root(stack)) as client:
        page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/openapi.json" in html
    assert "<script src" not in html
    assert "<link" not in html
    assert "https://" not in html
    assert "http://" not in html


# What the document declares, checked against what the server answers.

API = "/api/v1"


def operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["paths"][API + path][method]
    return found


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def declares(content: dict[str, Any], media: str) -> bool:
    """Whether one of `content`'s media types (ranges like `*/*` included) is `media`."""
    kind, sub = media.split("/")
    return any(
        main in ("*", kind) and minor in ("*", sub)
        for main, minor in (declared.split("/") for declared in content)
    )


def schema_validator(spec: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """A validator for `schema`, its `$ref`s resolved in the document's components."""
    return OAS31Validator({**schema, "components": spec["components"]})


def answer(spec: dict[str, Any], method: str, path: str, response: httpx.Response) -> Any:
    """The declared response `response` is (its status and media type): its body schema
    validates the body when JSON, and is returned."""
    declared = operation(spec, method, path)["responses"]
    assert str(response.status_code) in declared, (method, path, response.status_code)
    found = declared[str(response.status_code)]
    if "$ref" in found:
        found = spec["components"]["responses"][found["$ref"].rsplit("/", 1)[1]]
    content = found.get("content", {})
    if response.status_code == 304:
        assert content == {}, "a 304 has no body"
        return None
    media = media_type(response)
    assert declares(content, media), (method, path, response.status_code, media, list(content))
    schema = content.get(media) or content.get("*/*") or content[f"{media.split('/')[0]}/*"]
    if media == "application/json":
        schema_validator(spec, schema["schema"]).validate(response.json())
    return schema["schema"]


async def test_a_download_declares_the_media_types_and_statuses_the_server_answers(
    spec: dict[str, Any], api: httpx.AsyncClient, sandbox_id: str
) -> None:
    upload = operation(spec, "put", "/sandboxes/{sandbox_id}/files/{path}")["requestBody"]
    assert upload["required"] is True
    assert list(upload["content"]) == ["application/octet-stream"]
    files = f"/sandboxes/{sandbox_id}/files"
    path = "/sandboxes/{sandbox_id}/files/{path}"
    binary = {"content-type": "application/octet-stream"}
    for name in ("notes.txt", "blob.lsp-unknown"):
        written = await api.put(
            f"{files}/tmp/openapi/{name}", content=b"0123456789", headers=binary
        )
        assert written.status_code == 201, written.text
        answer(spec, "put", path, written)

    text = await api.get(f"{files}/tmp/openapi/notes.txt")
    assert (text.status_code, media_type(text)) == (200, "text/plain")
    assert answer(spec, "get", path, text) == {"type": "string", "format": "binary"}
    assert "application/json" not in operation(spec, "get", path)["responses"]["200"]["content"]
    unknown = await api.get(f"{files}/tmp/openapi/blob.lsp-unknown")
    assert media_type(unknown) == "application/octet-stream"
    answer(spec, "get", path, unknown)

    part = await api.get(f"{files}/tmp/openapi/notes.txt", headers={"range": "bytes=2-4"})
    assert (part.status_code, part.content) == (206, b"234")
    answer(spec, "get", path, part)
    etag = text.headers["etag"]
    unchanged = await api.get(f"{files}/tmp/openapi/notes.txt", headers={"if-none-match": etag})
    assert unchanged.status_code == 304
    answer(spec, "get", path, unchanged)
    outside = await api.get(f"{files}/tmp/openapi/notes.txt", headers={"range": "bytes=99-"})
    assert outside.status_code == 416
    answer(spec, "get", path, outside)


def _tar_gz(members: dict[str, bytes | str]) -> bytes:
    """A tar.gz of files (bytes) and symlinks (str: the link's target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, value in members.items():
            entry = tarfile.TarInfo(name)
            if isinstance(value, str):
                entry.type, entry.linkname = tarfile.SYMTYPE, value
                archive.addfile(entry)
            else:
                entry.size = len(value)
                archive.addfile(entry, io.BytesIO(value))
    return buffer.getvalue()


async def test_the_archive_routes_declare_a_tar_gz_both_ways_and_links_out_are_carried(
    spec: dict[str, Any], api: httpx.AsyncClient, sandbox_id: str
) -> None:
    path = "/sandboxes/{sandbox_id}/files/archive"
    upload = operation(spec, "post", path)
    assert upload["requestBody"]["required"] is True
    assert set(upload["requestBody"]["content"]) == {"application/gzip", "application/octet-stream"}
    assert "lead out" not in upload["description"], "links are carried wherever they point"
    body = _tar_gz({"data/a.txt": b"a", "python": "/usr/bin/python3"})
    url = f"/sandboxes/{sandbox_id}/files/archive"
    unpacked = await api.post(
        url,
        params={"path": "/tmp/openapi-archive"},
        content=body,
        headers={"content-type": "application/gzip"},
    )
    assert unpacked.status_code == 201, unpacked.text
    answer(spec, "post", path, unpacked)
    listing = await api.get(
        f"/sandboxes/{sandbox_id}/files", params={"path": "/tmp/openapi-archive"}
    )
    links = {entry["name"]: entry.get("symlinkTarget") for entry in listing.json()["files"]}
    assert links["python"] == "/usr/bin/python3"

    packed = await api.get(url, params={"path": "/tmp/openapi-archive"})
    assert (packed.status_code, media_type(packed)) == (200, "application/gzip")
    answer(spec, "get", path, packed)
    assert list(operation(spec, "get", path)["responses"]["200"]["content"]) == ["application/gzip"]
    with tarfile.open(fileobj=io.BytesIO(packed.content), mode="r:gz") as archive:
        assert archive.getmember("python").linkname == "/usr/bin/python3"


async def test_execute_declares_its_event_stream_and_requires_its_body(
    spec: dict[str, Any], api: httpx.AsyncClient, sandbox_id: str
) -> None:
    path = "/sandboxes/{sandbox_id}/execute"
    declared = operation(spec, "post", path)
    assert declared["requestBody"]["required"] is True
    url = f"/sandboxes/{sandbox_id}/execute"
    empty = await api.post(url)
    assert empty.status_code == 400
    answer(spec, "post", path, empty)

    waited = await api.post(url, json={"type": "command", "content": "echo hi"})
    assert waited.status_code == 200, waited.text
    answer(spec, "post", path, waited)
    body = {"type": "command", "content": "echo hi", "stream": True}
    async with api.stream("POST", url, json=body) as streamed:
        assert media_type(streamed) == "text/event-stream"
        events = [line async for line in streamed.aiter_lines() if line.startswith("event: ")]
    answer(spec, "post", path, streamed)
    assert events[0] == "event: execution_start"
    assert events[-1] == "event: execution_complete"
    described = declared["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert "execution_complete" in described["description"]


async def test_a_json_body_is_required_exactly_where_an_empty_one_is_refused(
    spec: dict[str, Any], api: httpx.AsyncClient, sandbox_id: str
) -> None:
    required = {
        "/sandboxes/{sandbox_id}/timeout": True,  # an empty body is a 400
        "/sandboxes": False,  # every field has a default
    }
    for path, expected in required.items():
        assert operation(spec, "post", path)["requestBody"]["required"] is expected
    refused = await api.post(f"/sandboxes/{sandbox_id}/timeout")
    assert refused.status_code == 400, refused.text


async def test_a_pool_status_sends_what_its_schema_lists(
    spec: dict[str, Any], api: httpx.AsyncClient
) -> None:
    name = f"oas-{secrets.token_hex(3)}"
    created = await api.post("/warmpools", json={"name": name, "minSize": 0, "maxSize": 1})
    assert created.status_code == 201, created.text
    try:
        status = await api.get(f"/warmpools/{name}/status")
        assert status.status_code == 200, status.text
        schema = answer(spec, "get", "/warmpools/{name}/status", status)
        assert status.json()["name"] == name
        without_name = {k: v for k, v in status.json().items() if k != "name"}
        with pytest.raises(ValidationError):
            schema_validator(spec, schema).validate(without_name)
        every = await api.get("/warmpools/status")
        answer(spec, "get", "/warmpools/status", every)
    finally:
        await api.delete(f"/warmpools/{name}")


async def test_an_admin_naming_a_pool_two_users_own_gets_a_declared_409(
    spec: dict[str, Any], stack, api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    third = await api.post("/users", json={"username": f"oas-{secrets.token_hex(4)}"})
    assert third.status_code == 201, third.text
    name = f"oas-{secrets.token_hex(3)}"
    pool = {"name": name, "minSize": 0, "maxSize": 1}
    headers = {"Authorization": f"Bearer {third.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as other:
        owners = (second_user_api, other)
        for owner in owners:
            made = await owner.post("/warmpools", json=pool)
            assert made.status_code == 201, made.text
        try:
            calls = [
                ("get", "/warmpools/{name}", None),
                ("patch", "/warmpools/{name}", {}),
                ("delete", "/warmpools/{name}", None),
                ("get", "/warmpools/{name}/status", None),
            ]
            for method, path, body in calls:
                url = path.replace("{name}", name)
                response = await api.request(method.upper(), url, json=body)
                assert response.status_code == 409, (method, path, response.text)
                assert response.json()["error"]["code"] == "conflict"
                answer(spec, method, path, response)
        finally:
            for owner in owners:
                assert (await owner.delete(f"/warmpools/{name}")).status_code == 200


async def test_a_snapshot_create_is_not_described_as_always_cold(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    snapshot = schemas["CreateSandboxRequest"]["properties"]["snapshot"]["description"]
    assert "always a cold start" not in snapshot
    assert "warm pool" in snapshot


async def test_the_docs_page_lists_every_operation_in_a_browser(
    stack, spec: dict[str, Any]
) -> None:
    operations = sum(len(methods) for methods in spec["paths"].values())
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            await page.goto(root(stack) + "/docs")
            await page.wait_for_function(
                "!document.getElementById('spec').textContent.startsWith('Loading')"
            )
            shown = await page.locator("#spec details:has(span.m)").count()
            text = await page.locator("#spec").text_content() or ""
        finally:
            await browser.close()
    assert "Failed to load" not in text
    assert shown == operations
    assert "application/gzip" in text
    assert "text/event-stream" in text
