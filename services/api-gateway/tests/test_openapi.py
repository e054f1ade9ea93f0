"""The OpenAPI document is assembled from the operations the routes carry."""

from openapi_spec_validator import validate
from starlette.routing import Mount, Route, WebSocketRoute

from llmsafespace.contracts import Template
from llmsafespace.gateway.app import create_app
from llmsafespace.gateway.openapi import document, served
from llmsafespace.gateway.operation import ApiRoute, Operation, Ref, described
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
