"""`/health`, `/ready`, `/metrics`: servicekit's operational routes, with their OpenAPI
operations."""

from starlette.routing import BaseRoute

from llmsafespace.servicekit import operational_routes
from llmsafespace.servicekit.http import ReadinessCheck

from .operation import Operation, described, obj

_OPERATIONS = {
    "/health": Operation(
        "The process answers", "operations", obj(status={"type": "string"}), public=True
    ),
    "/ready": Operation(
        "Bus, database and cache answer (503 otherwise)",
        "operations",
        obj(
            status={"type": "string", "enum": ["ready", "not_ready"]},
            checks={"type": "object", "additionalProperties": {"type": "boolean"}},
        ),
        errors=(503,),
        public=True,
    ),
    "/metrics": Operation(
        "Prometheus metrics", "operations", {"type": "string"}, media="text/plain", public=True
    ),
}


def routes(readiness: ReadinessCheck) -> list[BaseRoute]:
    """servicekit's `/health`, `/ready` and `/metrics`, each carrying its operation."""
    return [described(route, _OPERATIONS[route.path]) for route in operational_routes(readiness)]
