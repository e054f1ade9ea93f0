"""`/openapi.json` and `/docs`: the OpenAPI 3.1 document, built from the app's own routes
and the contracts' JSON schemas.

Every route the app serves is in the document (the routes are walked, so none is
forgotten); each describes itself with the `Operation` it carries (`operation.py`). A
route that carries none still appears, with the error envelope and a note."""

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from llmsafespace.contracts import ErrorEnvelope

from .operation import BINARY, ApiRoute, ApiWebSocketRoute, Operation, RawBody, Ref

TITLE = "LLMSafeSpace API"
VERSION = "1.0.0"
API = "/api/v1"
_CONVERTER = re.compile(r"\{([^}:]+)(:[^}]+)?\}")
_UNDESCRIBED = Operation(
    "Undocumented endpoint", "other", description="Not yet described by its route."
)

_ALWAYS = (500, 503, 504)
_AUTHED = (401, 429)
_DESCRIPTIONS = {
    101: "Switching protocols",
    202: "Accepted: started, follow it by its executionId",
    206: "Partial content: the bytes of the range asked for (`Content-Range`)",
    304: "Not modified: `If-None-Match` names the current `ETag`; no body",
    400: "Invalid request (`invalid_request`, per-field `details.fields`)",
    401: "Missing or invalid credentials (`unauthorized`)",
    403: "Not allowed (`forbidden`)",
    404: "Not found, or not yours (`not_found`)",
    409: "Conflicts with the current state (`conflict`, `sandbox_not_running`, `sandbox_paused`)",
    413: "Body too large (`payload_too_large`)",
    416: "None of the file is in the range (`range_not_satisfiable`)",
    429: "Rate limit (`rate_limited`) or quota (`quota_exceeded`) exceeded",
    500: "Internal error (`internal_error`)",
    503: "A service is unavailable (`service_unavailable`, `runtime_unavailable`)",
    504: "A service did not answer in time (`timeout`)",
    501: "This deployment's runtime driver cannot do it (`not_implemented`)",
    507: "The sandbox's storage is full (`insufficient_storage`)",
}


def served(
    routes: Iterable[BaseRoute], prefix: str = ""
) -> Iterator[tuple[str, str, Operation | None]]:
    """(method, OpenAPI path, the route's operation if it carries one) for every endpoint
    under `routes`; a WebSocket counts as GET."""
    for route in routes:
        if isinstance(route, Mount):
            yield from served(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            path = _CONVERTER.sub(r"{\1}", prefix + route.path)
            operation = route.operation if isinstance(route, ApiRoute) else None
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, path, operation
        elif isinstance(route, WebSocketRoute):
            operation = route.operation if isinstance(route, ApiWebSocketRoute) else None
            yield "GET", _CONVERTER.sub(r"{\1}", prefix + route.path), operation


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the endpoints `routes` serve."""
    paths: dict[str, dict[str, Any]] = {}
    refs: set[Ref] = {Ref(ErrorEnvelope)}
    tags: set[str] = set()
    for method, path, described in served(routes):
        operation = described or _UNDESCRIBED
        tags.add(operation.tag)
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, operation, refs)
    keys, schemas = models_json_schema(
        [(ref.model, ref.mode) for ref in sorted(refs, key=lambda r: (r.model.__name__, r.mode))],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Run untrusted, LLM-generated code in sandboxes. Errors are always"
            ' `{"error": {"code", "message", "details"}}`.',
        },
        "paths": _replace(paths, keys),
        "components": _replace(_components(schemas), keys),
        "security": [{"bearer": []}],
        "tags": [{"name": tag} for tag in sorted(tags)],
    }


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "schemas": schemas.get("$defs", {}),
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (`lsp_…`) or an access token from /auth/token",
            }
        },
        "responses": {
            str(status): {
                "description": description,
                "content": {"application/json": {"schema": Ref(ErrorEnvelope)}},
            }
            for status, description in _DESCRIPTIONS.items()
            if status >= 400
        },
    }


def _operation(method: str, path: str, op: Operation, refs: set[Ref]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        result["description"] = op.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([^}]+)\}", path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(by_alias=True)
        defs = schema.get("$defs", {})
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": _inline(schema["properties"][name], defs),
            }
            for name in op.query_fields
        ]
    parameters += list(op.extra_params)
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        result["requestBody"] = _request_body(op.body, refs)
    errors = set(op.errors) | set(_ALWAYS)
    if not op.public:
        errors |= set(_AUTHED)
        result["security"] = [{"bearer": []}]
    else:
        result["security"] = []
    if op.body is not None or op.query is not None or "{" in path:
        errors.add(400)
    if op.body is not None:
        errors.add(413)
    media = (op.media,) if isinstance(op.media, str) else op.media
    success = _success(op.status, media, op.response, refs)
    for alternative, schema in op.alternatives:
        _collect(schema, refs)
        success.setdefault("content", {})[alternative] = {"schema": schema}
    others = {
        str(status): _success(status, media, schema, refs) for status, schema in op.other_successes
    }
    result["responses"] = (
        {str(op.status): success}
        | others
        | {str(status): {"$ref": f"#/components/responses/{status}"} for status in sorted(errors)}
    )
    return result


def _request_body(body: type[BaseModel] | RawBody, refs: set[Ref]) -> dict[str, Any]:
    if isinstance(body, RawBody):
        return {
            "required": True,
            "description": body.description,
            "content": {media: {"schema": BINARY} for media in body.media},
        }
    refs.add(Ref(body, "validation"))
    return {
        "required": _requires_a_body(body),
        "content": {"application/json": {"schema": Ref(body, "validation")}},
    }


def _requires_a_body(model: type[BaseModel]) -> bool:
    """Whether a request must send a body: an empty one reads as `{}` (`parse_body`), so
    it must unless `{}` is valid."""
    try:
        model.model_validate({})
    except ValidationError:
        return True
    return False


def _success(status: int, media: tuple[str, ...], schema: Any, refs: set[Ref]) -> dict[str, Any]:
    """A success answered in each of `media` with `schema`; without a body when None."""
    answer: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "Success")}
    if schema is not None:
        _collect(schema, refs)
        answer["content"] = {each: {"schema": schema} for each in media}
    return answer


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix(API)).strip("_")
    return f"{method.lower()}_{words or 'root'}"


def _collect(schema: Any, refs: set[Ref]) -> None:
    if isinstance(schema, Ref):
        refs.add(schema)
    elif isinstance(schema, dict):
        for value in schema.values():
            _collect(value, refs)
    elif isinstance(schema, list):
        for value in schema:
            _collect(value, refs)


def _inline(schema: Any, defs: Mapping[str, Any]) -> Any:
    """`schema` with its local `#/$defs/…` references written out (query parameters)."""
    if isinstance(schema, dict):
        if isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(value, defs) for value in schema]
    return schema


def _replace(schema: Any, keys: Mapping[tuple[Any, JsonSchemaMode], Any]) -> Any:
    if isinstance(schema, Ref):
        return keys[(schema.model, schema.mode)]
    if isinstance(schema, dict):
        return {key: _replace(value, keys) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_replace(value, keys) for value in schema]
    return schema


async def openapi(request: Request) -> Response:
    return JSONResponse(document(request.app.routes))


async def docs(_: Request) -> Response:
    return HTMLResponse(DOCS_PAGE)


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LLMSafeSpace API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2em;text-transform:capitalize}
details{border:1px solid #ddd;border-radius:6px;margin:.5em 0;padding:.3em .8em}
summary{cursor:pointer}
.m{display:inline-block;width:5em;font:bold 13px monospace;color:#fff;text-align:center;
border-radius:4px;margin-right:.6em}
.GET{background:#2a7ae2}.POST{background:#2a9d4a}.DELETE{background:#c0392b}
.PATCH{background:#b8860b}.PUT{background:#8e44ad}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.6em;overflow:auto;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}
</style></head>
<body><h1>LLMSafeSpace API</h1>
<p>The OpenAPI document: <a href="/openapi.json">/openapi.json</a>.
Authenticate with <code>Authorization: Bearer lsp_…</code>.</p>
<div id="spec">Loading…</div>
<script>
"use strict";
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",
  '"':"&quot;"})[c]);
const json = v => "<pre>" + esc(JSON.stringify(v, null, 2)) + "</pre>";
const bodies = content => Object.entries(content || {}).map(([media, m]) => "<p><code>"
  + esc(media) + "</code></p>" + (m.schema ? json(m.schema) : "")).join("");
fetch("/openapi.json").then(r => r.json()).then(spec => {
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push([method.toUpperCase(), path, op]);
    }
  }
  let html = "<p>" + esc(spec.info.description || "") + "</p>";
  for (const tag of Object.keys(byTag).sort()) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const [method, path, op] of byTag[tag]) {
      html += '<details><summary><span class="m ' + method + '">' + method + "</span><code>"
        + esc(path) + "</code> — " + esc(op.summary) + "</summary>";
      if (op.description) html += "<p>" + esc(op.description) + "</p>";
      if (op.parameters) {
        html += "<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>";
        for (const p of op.parameters) html += "<tr><td><code>" + esc(p.name) + "</code></td><td>"
          + esc(p.in) + "</td><td><code>" + esc(JSON.stringify(p.schema)) + "</code></td></tr>";
        html += "</table>";
      }
      if (op.requestBody) html += "<h4>Request body" + (op.requestBody.required ? "" :
        " (optional)") + "</h4>" + (op.requestBody.description ? "<p>"
        + esc(op.requestBody.description) + "</p>" : "") + bodies(op.requestBody.content);
      html += "<h4>Responses</h4><ul>";
      for (const [status, r] of Object.entries(op.responses)) {
        const ref = r.$ref ? spec.components.responses[r.$ref.split("/").pop()] : r;
        html += "<li><b>" + esc(status) + "</b> " + esc(ref.description) + bodies(ref.content)
          + "</li>";
      }
      html += "</ul></details>";
    }
  }
  html += "<h2>schemas</h2>";
  for (const [name, schema] of Object.entries(spec.components.schemas)) {
    html += '<details id="' + esc(name) + '"><summary><code>' + esc(name) + "</code></summary>"
      + json(schema) + "</details>";
  }
  document.getElementById("spec").innerHTML = html;
}).catch(e => { document.getElementById("spec").textContent = "Failed to load: " + e; });
</script></body></html>
"""

ROUTES: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/openapi.json",
        openapi,
        Operation("This document", "operations", {"type": "object"}, public=True),
    ),
    ApiRoute(
        "GET",
        "/docs",
        docs,
        Operation(
            "This document, readable",
            "operations",
            {"type": "string"},
            media="text/html",
            public=True,
        ),
    ),
]
