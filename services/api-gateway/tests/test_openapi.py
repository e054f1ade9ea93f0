"""The OpenAPI document is assembled from the operations the routes carry."""

from typing import Any

from openapi_spec_validator import validate
from pydantic import BaseModel
from starlette.routing import Mount, Route, WebSocketRoute

from llmsafespace.contracts import Template
from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.openapi import document, served
from llmsafespace.gateway.operation import (
    BINARY,
    ApiRoute,
    Method,
    Operation,
    RawBody,
    Ref,
    described,
    merged,
)
from llmsafespace.gateway.settings import Settings


async def _endpoint(_: object) -> None:
    """Never called: the document only reads the routes."""


def test_every_route_the_gateway_serves_carries_its_operation() -> None:
    undescribed = [
        (method, path)
        for method, path, operation in served(create_app(Settings()).routes)
        if operation is None
    ]
    assert undescribed == []


def test_the_gateway_document_is_valid_openapi_3_1() -> None:
    validate(document(create_app(Settings()).routes))


def test_an_operation_is_documented_under_its_route_path_and_method() -> None:
    operation = Operation("Get a thing", "things", Ref(Template), errors=(404,))
    routes = [
        Mount("/api/v1", routes=[ApiRoute("GET", "/things/{name:path}", _endpoint, operation)])
    ]
    spec = document(routes)
    got = spec["paths"]["/api/v1/things/{name}"]["get"]
    assert got["summary"] == "Get a thing"
    assert got["tags"] == ["things"]
    assert got["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Template"
    }
    assert {"400", "401", "404", "429", "500"} <= set(got["responses"])
    assert "Template" in spec["components"]["schemas"]
    assert spec["tags"] == [{"name": "things"}]


def test_a_route_declared_elsewhere_carries_the_operation_it_is_given() -> None:
    operation = Operation("A socket", "sockets", None, 101)
    http = described(Route("/health", _endpoint, methods=["GET"]), operation)
    socket = described(WebSocketRoute("/socket", _endpoint), operation)
    assert [entry[2] for entry in served([http, socket])] == [operation, operation]
    assert list(served([Route("/plain", _endpoint, methods=["GET"])])) == [("GET", "/plain", None)]


class _Named(BaseModel):
    name: str


class _Defaulted(BaseModel):
    size: int = 1


def _documented(method: Method, operation: Operation) -> dict[str, Any]:
    """`operation` as the document shows it, served at /things/{name}."""
    route = ApiRoute(method, "/things/{name}", _endpoint, operation)
    spec = document([route])
    validate(spec)
    got: dict[str, Any] = spec["paths"]["/things/{name}"][method.lower()]
    return got


def test_a_json_body_is_required_unless_an_empty_one_is_valid() -> None:
    named = _documented("POST", Operation("Make", "things", body=_Named))
    defaulted = _documented("POST", Operation("Make", "things", body=_Defaulted))
    assert named["requestBody"]["required"] is True
    assert defaulted["requestBody"]["required"] is False


def test_a_raw_body_is_required_in_its_media_types() -> None:
    raw = RawBody(("application/gzip",), "A tar.gz")
    got = _documented("POST", Operation("Unpack", "things", body=raw))
    assert got["requestBody"] == {
        "required": True,
        "description": "A tar.gz",
        "content": {"application/gzip": {"schema": BINARY}},
    }
    assert {"400", "413"} <= set(got["responses"])


def test_other_successes_come_in_the_same_media_types_or_without_a_body() -> None:
    operation = Operation(
        "Read",
        "things",
        BINARY,
        media=("application/octet-stream", "*/*"),
        other_successes=((206, BINARY), (304, None)),
    )
    responses = _documented("GET", operation)["responses"]
    both = {"application/octet-stream": {"schema": BINARY}, "*/*": {"schema": BINARY}}
    assert responses["200"]["content"] == both
    assert responses["206"]["content"] == both
    assert "content" not in responses["304"]
    assert "json" not in str(responses["200"])


def test_an_alternative_media_type_sits_beside_the_main_success() -> None:
    events = {"type": "string", "description": "Server-Sent Events"}
    operation = Operation(
        "Run", "things", Ref(Template), alternatives=(("text/event-stream", events),)
    )
    content = _documented("POST", operation)["responses"]["200"]["content"]
    assert content == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Template"}},
        "text/event-stream": {"schema": events},
    }


def test_properties_merged_into_a_model_are_required() -> None:
    schema = merged(Template, name={"type": "string"})
    assert schema["allOf"][1]["required"] == ["name"]
