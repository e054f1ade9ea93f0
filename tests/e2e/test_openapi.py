"""`/openapi.json` and `/docs`: complete, valid, self-contained; and the API it describes
answers generated requests without a server error."""

import asyncio
import secrets

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate

from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.openapi import OPERATIONS, served
from llmsafespace.gateway.settings import Settings

pytestmark = pytest.mark.stack

MAX_EXAMPLES = 20
# Operations that create lasting things (sandboxes, pools, users, keys), or are not HTTP.
NOT_FUZZED = {
    ("POST", "/api/v1/sandboxes"),
    ("POST", "/api/v1/warmpools"),
    ("POST", "/api/v1/users"),
    ("POST", "/api/v1/user/apikeys"),
    ("GET", "/api/v1/sandboxes/{sandbox_id}/stream"),
}


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
    for method, path in served(app.routes):
        assert method.lower() in paths.get(path, {}), (method, path)
        assert (method, path) in OPERATIONS, f"describe {method} {path} in openapi.py"
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


@pytest.fixture(scope="module")
async def fuzz_key(stack) -> str:
    """A user of its own, so the generated traffic spends nobody else's rate limit."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as admin:
        created = await admin.post("/users", json={"username": f"fuzz-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    key: str = created.json()["apiKey"]
    return key


async def test_generated_requests_never_meet_a_server_error(
    stack, spec: dict[str, object], fuzz_key: str
) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_dict(spec)
    base_url = root(stack)
    headers = {"Authorization": f"Bearer {fuzz_key}"}
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if (result.ok().method.upper(), result.ok().path) not in NOT_FUZZED
    ]
    assert operations
    failures: list[str] = []
    calls: list[int] = []

    def fuzz(operation: schemathesis.APIOperation) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500 and response.status_code not in (503, 504):
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            case.validate_response(response, checks=[not_a_server_error])

        run()

    for operation in operations:
        try:
            await asyncio.to_thread(fuzz, operation)
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n".join(failures)
    assert len(calls) >= len(operations), "every operation was called at least once"
