"""`/openapi.json` and `/docs`: complete, valid, self-contained. (The API it describes is
fuzzed against it in tests/fuzz/test_openapi_fuzz.py.)"""

import httpx
import pytest
from openapi_spec_validator import validate

from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.openapi import served
from llmsafespace.gateway.settings import Settings

pytestmark = pytest.mark.stack


def root(stack) -> str:
    return stack.api_url.removesuffix("/api/v1")


@pytest.fixture(scope="module")
async def spec(stack) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=root(stack)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


async def test_every_route_the_app_serves_is_described(spec: dict[str, object]) -> None:
    app = create_app(Settings())
    paths = spec["paths"]
    assert isinstance(paths, dict)
    for method, path, operation in served(app.routes):
        assert method.lower() in paths.get(path, {}), (method, path)
        assert operation is not None, f"describe {method} {path} where its route is declared"
    assert "/api/v1/audit" in paths
    assert "/openapi.json" in paths


async def test_the_document_is_valid_openapi_3_1(spec: dict[str, object]) -> None:
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
