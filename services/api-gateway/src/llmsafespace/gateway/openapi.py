"""`/openapi.json` and `/docs`: the OpenAPI 3.1 document, built from the app's own routes
and the contracts' JSON schemas.

Every route the app serves is in the document (the routes are walked, so none is
forgotten); `OPERATIONS` describes each one — bodies, responses, parameters, errors. A
route missing from the table still appears, with the error envelope and a note."""

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from llmsafespace.contracts import (
    AccessToken,
    ApiKey,
    AuditPage,
    AuditQuery,
    CreateApiKeyRequest,
    CreatedApiKey,
    CreatedUser,
    CreateSandboxRequest,
    CreateSnapshotRequest,
    CreateUserRequest,
    ErrorEnvelope,
    ExecuteRequest,
    ExecutionResult,
    FileDeleted,
    FileListing,
    FileWritten,
    InstallPackagesRequest,
    ListFiles,
    ListSandboxes,
    ListSnapshots,
    Pagination,
    Profile,
    RuntimeInfo,
    Sandbox,
    SandboxStatusReport,
    SandboxTimeoutRequest,
    Snapshot,
    SnapshotPage,
    Template,
    TemplateSpec,
    User,
    WarmPool,
    WarmPoolSpec,
    WarmPoolStatus,
    WarmPoolUpdate,
)

TITLE = "LLMSafeSpace API"
VERSION = "1.0.0"
API = "/api/v1"
_CONVERTER = re.compile(r"\{([^}:]+)(:[^}]+)?\}")

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Ref:
    """A contract model in a schema, replaced by its `$ref` when the document is built."""

    model: type[BaseModel]
    mode: JsonSchemaMode = "serialization"


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": sorted(properties)}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


def merged(model: type[BaseModel], **extra: Any) -> dict[str, Any]:
    return {"allOf": [Ref(model), {"type": "object", "properties": extra}]}


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    response: Any = None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    query_fields: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    public: bool = False
    description: str = ""
    extra_params: tuple[dict[str, Any], ...] = field(default=())
    other_successes: tuple[tuple[int, Any], ...] = field(default=())  # (status, schema)


_ENDPOINTS = obj(
    execute={"type": "string", "format": "uri"},
    files={"type": "string", "format": "uri"},
    websocket={"type": "string", "format": "uri"},
)
_PUBLIC_SANDBOX = merged(Sandbox, endpoints=_ENDPOINTS)
_HEALTH = obj(status={"type": "string"})
_READY = obj(
    status={"type": "string", "enum": ["ready", "not_ready"]},
    checks={"type": "object", "additionalProperties": {"type": "boolean"}},
)
_SANDBOX = ("/sandboxes/{sandbox_id}", 404, 409)

OPERATIONS: Mapping[tuple[str, str], Operation] = {
    ("GET", "/health"): Operation("The process answers", "operations", _HEALTH, public=True),
    ("GET", "/ready"): Operation(
        "Bus, database and cache answer (503 otherwise)",
        "operations",
        _READY,
        errors=(503,),
        public=True,
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics", "operations", {"type": "string"}, public=True
    ),
    ("GET", "/openapi.json"): Operation(
        "This document", "operations", {"type": "object"}, public=True
    ),
    ("GET", "/docs"): Operation("This document, readable", "operations", None, public=True),
    ("POST", f"{API}/sandboxes"): Operation(
        "Create a sandbox (from a warm pool when one matches)",
        "sandboxes",
        _PUBLIC_SANDBOX,
        201,
        body=CreateSandboxRequest,
        errors=(404, 409, 429, 503),
        description="A user's live sandboxes (creating or running) are limited in number and"
        " in total `resources.memory`: beyond either, `429 quota_exceeded` with"
        " `details: {resource, limit, current, requested}` (memory in bytes). Admins are"
        " exempt. A `snapshot` that does not exist (or is another user's) is a 404.",
    ),
    ("GET", f"{API}/sandboxes"): Operation(
        "List your sandboxes (admins: all)",
        "sandboxes",
        obj(sandboxes=array(_PUBLIC_SANDBOX), pagination=Ref(Pagination)),
        query=ListSandboxes,
        query_fields=("limit", "offset", "status"),
        description="Filter by metadata with `metadata.<key>=<value>` parameters.",
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}"): Operation(
        "Get a sandbox", "sandboxes", _PUBLIC_SANDBOX, errors=(404,)
    ),
    ("DELETE", f"{API}/sandboxes/{{sandbox_id}}"): Operation(
        "Terminate a sandbox", "sandboxes", _PUBLIC_SANDBOX, errors=(404, 409)
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/status"): Operation(
        "A sandbox's status and resource use", "sandboxes", Ref(SandboxStatusReport), errors=(404,)
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/timeout"): Operation(
        "Extend a sandbox's timeout",
        "sandboxes",
        _PUBLIC_SANDBOX,
        body=SandboxTimeoutRequest,
        errors=(404, 409),
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/pause"): Operation(
        "Pause a sandbox (its processes frozen, memory kept)",
        "sandboxes",
        _PUBLIC_SANDBOX,
        errors=(404, 409, 429, 501, 503),
        description="Status `paused`: no CPU, every process and the interpreter's memory kept,"
        " the lifetime clock stopped. Executions, file calls and terminals on it are"
        " `409 sandbox_paused`, unless it was created with `autoResume: true` (then they"
        " resume it). It counts against the paused quota (429), not the running one, and is"
        " terminated once paused longer than its `pausedTimeout`. Pausing a paused sandbox"
        " answers it as it is. On Kubernetes (no freezer) the workspace is snapshotted and the"
        " Pod removed: files kept, memory not (the resume says `memoryKept: false`).",
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/resume"): Operation(
        "Resume a paused sandbox",
        "sandboxes",
        _PUBLIC_SANDBOX,
        errors=(404, 409, 429, 501, 503),
        description="Its processes run again where they stopped; `expiresAt` moves by the time"
        " it spent paused. It must fit the running quota again (429). Resuming a running"
        " sandbox answers it as it is. `memoryKept` says whether the interpreter's memory"
        " survived: false on Kubernetes, where a new Pod gets the workspace restored (503 if"
        " it cannot be: the sandbox stays paused).",
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/execute"): Operation(
        "Run code or a command and wait for the result",
        "executions",
        Ref(ExecutionResult),
        body=ExecuteRequest,
        errors=(404, 409),
        description="With `stream: true` the answer is `text/event-stream`. `content` over"
        " 512 KiB is `413 payload_too_large`. Code's rich results (`display(...)`,"
        " matplotlib figures, the trailing expression) are `results`: MIME bundles"
        " `{data: {mime: content}, isMainResult, truncated}`, binary types base64; `result`"
        " is the main result's text/plain. Streamed, each is a `display` event.",
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/stream"): Operation(
        "WebSocket: streamed executions (upgrade required)",
        "executions",
        None,
        101,
        errors=(403, 404),
        description="A WebSocket endpoint; see the architecture document for its messages."
        " Rich results arrive as `{type: display, executionId, data, isMainResult,"
        " truncated, seq, timestamp}`, in order with `output` and replayed by `resume`."
        " Browsers pass `?token=` (from `POST /auth/token`).",
    ),
    ("POST", "/mcp"): Operation(
        "MCP (Model Context Protocol) over Streamable HTTP",
        "mcp",
        {"type": "object"},
        description="JSON-RPC 2.0 messages of the Model Context Protocol (tools/list,"
        " tools/call, ...), answered as JSON or `text/event-stream`; the sandbox tools act"
        " with the caller's own credential. See the README's MCP section.",
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/terminal"): Operation(
        "WebSocket: an interactive shell on a PTY (upgrade required)",
        "executions",
        None,
        101,
        errors=(403, 404, 409),
        description="Query `cols`, `rows` (1..1000, default 80x24), `terminalId` (re-attach;"
        " its scrollback is replayed first). Send `input {data}`, `resize {cols, rows}`,"
        " `ping`; receive `ready {terminalId}`, `output {data, seq}`, `exit {exitCode}`,"
        " `error {code, message}`, `pong`. Browsers pass `?token=`.",
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/files"): Operation(
        "List a directory in the sandbox",
        "files",
        Ref(FileListing),
        query=ListFiles,
        query_fields=("path", "recursive"),
        errors=(404, 409),
        description="`path` (default /workspace) must be inside /workspace or /tmp"
        " (`400 invalid_path` otherwise, also for symlinks that lead out).",
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/files/{{path}}"): Operation(
        "Download a file (streamed; Range, ETag)",
        "files",
        {"type": "string", "format": "binary"},
        errors=(404, 409),
        description="`{path}` is the absolute path without its leading slash"
        " (`files/workspace/a.csv` is /workspace/a.csv). A `Range: bytes=a-b` header answers"
        " 206 with those bytes.",
    ),
    ("PUT", f"{API}/sandboxes/{{sandbox_id}}/files/{{path}}"): Operation(
        "Upload a file (the raw body, streamed; parent directories created)",
        "files",
        Ref(FileWritten),
        201,
        errors=(404, 409, 413, 507),
        description="Written under a temporary name and renamed into place when complete."
        " An optional `X-Content-Sha256` header is checked against the bytes received.",
    ),
    ("DELETE", f"{API}/sandboxes/{{sandbox_id}}/files/{{path}}"): Operation(
        "Delete a file (a directory with `?recursive=true`)",
        "files",
        Ref(FileDeleted),
        errors=(404, 409),
        extra_params=(
            {"name": "recursive", "in": "query", "required": False, "schema": {"type": "boolean"}},
        ),
    ),
    ("GET", f"{API}/sandboxes/{{sandbox_id}}/files/archive"): Operation(
        "Download a directory as tar.gz (streamed)",
        "files",
        {"type": "string", "format": "binary"},
        errors=(404, 409),
        extra_params=(
            {"name": "path", "in": "query", "required": False, "schema": {"type": "string"}},
        ),
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/files/archive"): Operation(
        "Upload a tar.gz and unpack it into a directory",
        "files",
        Ref(FileWritten),
        201,
        errors=(404, 409, 413, 507),
        description="All or nothing: the archive is unpacked into a staging directory and"
        " moved into place only when every member unpacked. Regular files, directories and"
        " links that stay inside the archive; members with `..` or absolute paths, links"
        " that lead out, and device files are refused (`400`), as is a corrupt or truncated"
        " archive; either way the directory is left unchanged.",
        extra_params=(
            {"name": "path", "in": "query", "required": False, "schema": {"type": "string"}},
        ),
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/packages"): Operation(
        "Install packages (pip or npm) into the sandbox",
        "files",
        Ref(ExecutionResult),
        body=InstallPackagesRequest,
        errors=(404, 409, 503),
        other_successes=((202, obj(executionId={"type": "string"}, status={"type": "string"})),),
        description="pip installs into /workspace/.packages (importable by the next run),"
        " npm into /workspace/node_modules. The install is an execution: its output is"
        " published like a streamed execution's. With `wait: false` the answer is `202"
        " {executionId}` as soon as it has started; send `resume {executionId, lastSeq: 0}`"
        " on the WebSocket (`/sandboxes/{id}/stream`) to see pip's or npm's output live and"
        " the result as `execution_complete`. Packages come from the mirror configured for"
        " the installation when there is one (`PACKAGE_INDEX_URL` for pip, `NPM_REGISTRY_URL`"
        " for npm; it serves sandboxes without network too), else from the public index when"
        " the sandbox can reach it; otherwise `409 network_disabled`, before anything runs."
        " A package the mirror lacks is `404`; an unreachable mirror `503`.",
    ),
    ("POST", f"{API}/sandboxes/{{sandbox_id}}/snapshots"): Operation(
        "Snapshot a running sandbox's workspace, env, metadata and runtime",
        "snapshots",
        Ref(Snapshot),
        201,
        body=CreateSnapshotRequest,
        errors=(404, 409, 429, 503),
        description="Durable and immutable: the whole `/workspace` (packages installed into"
        " `/workspace/.packages` and `node_modules` included), the env the sandbox was"
        " created with, its metadata and runtime. The interpreter's memory (variables,"
        " running processes) is NOT part of a snapshot. Stored as content-addressed chunks:"
        " `storedBytes` is what this one added. Start a sandbox from it with `POST"
        ' /sandboxes {"snapshot": id}`. Per-user quotas on count and bytes (429).',
    ),
    ("GET", f"{API}/snapshots"): Operation(
        "List your snapshots (admins: all)",
        "snapshots",
        Ref(SnapshotPage),
        query=ListSnapshots,
        query_fields=("limit", "offset"),
    ),
    ("GET", f"{API}/snapshots/{{snapshot_id}}"): Operation(
        "Get a snapshot", "snapshots", Ref(Snapshot), errors=(404,)
    ),
    ("DELETE", f"{API}/snapshots/{{snapshot_id}}"): Operation(
        "Delete a snapshot (chunks no other snapshot uses are freed)",
        "snapshots",
        Ref(Snapshot),
        errors=(404,),
    ),
    ("POST", f"{API}/warmpools"): Operation(
        "Create a warm pool", "warmpools", Ref(WarmPool), 201, body=WarmPoolSpec, errors=(409,)
    ),
    ("GET", f"{API}/warmpools"): Operation(
        "List warm pools", "warmpools", obj(warmPools=array(Ref(WarmPool)))
    ),
    ("GET", f"{API}/warmpools/status"): Operation(
        "Every pool's status",
        "warmpools",
        obj(warmPools=array(merged(WarmPoolStatus, name={"type": "string"}))),
    ),
    ("GET", f"{API}/warmpools/{{name}}"): Operation(
        "Get a warm pool", "warmpools", Ref(WarmPool), errors=(404,)
    ),
    ("PATCH", f"{API}/warmpools/{{name}}"): Operation(
        "Update a warm pool", "warmpools", Ref(WarmPool), body=WarmPoolUpdate, errors=(404,)
    ),
    ("DELETE", f"{API}/warmpools/{{name}}"): Operation(
        "Delete a warm pool", "warmpools", Ref(WarmPool), errors=(404,)
    ),
    ("GET", f"{API}/warmpools/{{name}}/status"): Operation(
        "A pool's status",
        "warmpools",
        merged(WarmPoolStatus, name={"type": "string"}),
        errors=(404,),
    ),
    ("POST", f"{API}/templates"): Operation(
        "Build a template",
        "templates",
        Ref(Template),
        201,
        body=TemplateSpec,
        errors=(403, 409),
        description="Builds the environment once: a builder sandbox of the template's runtime"
        " (yours, with network where the host has it) installs `packages.pip` into"
        " /workspace/.packages and `packages.npm` into /workspace/node_modules (through the"
        " package mirror when one is configured), then runs `setupCommands` in /workspace."
        " Its /workspace is then kept as a read-only layer, bound at /opt/template in every"
        " sandbox of the template (importable after the sandbox's own packages, never"
        " copied). Answers at once with `status: building`; follow the build with `resume"
        " {executionId: buildExecutionId, lastSeq: 0}` on `/sandboxes/{buildSandboxId}/stream`,"
        " or poll GET until `ready` or `failed` (with `reason` and `logTail`). `public: true`"
        " (admins only) makes it usable by everyone. Unknown runtime: 400; a taken name: 409;"
        " on the Kubernetes driver: 400 (not available yet).",
    ),
    ("GET", f"{API}/templates"): Operation(
        "List templates (yours and the public ones)",
        "templates",
        obj(templates=array(Ref(Template))),
    ),
    ("GET", f"{API}/templates/{{name}}"): Operation(
        "Get a template: its status, and why a failed build failed",
        "templates",
        Ref(Template),
        errors=(404,),
    ),
    ("DELETE", f"{API}/templates/{{name}}"): Operation(
        "Delete a template",
        "templates",
        Ref(Template),
        errors=(404, 409),
        description="Refused with 409 while a live sandbox or a warm pool uses it.",
    ),
    ("GET", f"{API}/runtimes"): Operation(
        "Runtimes sandboxes can start from", "catalog", obj(runtimes=array(Ref(RuntimeInfo)))
    ),
    ("GET", f"{API}/runtimes/{{runtime_id}}"): Operation(
        "Get a runtime", "catalog", Ref(RuntimeInfo), errors=(404,)
    ),
    ("GET", f"{API}/profiles"): Operation(
        "Security and resource presets", "catalog", obj(profiles=array(Ref(Profile)))
    ),
    ("GET", f"{API}/profiles/{{profile_id}}"): Operation(
        "Get a profile", "catalog", Ref(Profile), errors=(404,)
    ),
    ("POST", f"{API}/users"): Operation(
        "Create a user and their first API key (admins)",
        "users",
        Ref(CreatedUser),
        201,
        body=CreateUserRequest,
        errors=(403, 409),
    ),
    ("GET", f"{API}/user"): Operation("The calling user", "users", Ref(User)),
    ("GET", f"{API}/user/apikeys"): Operation(
        "Your API keys (never the keys themselves)", "users", obj(apiKeys=array(Ref(ApiKey)))
    ),
    ("POST", f"{API}/user/apikeys"): Operation(
        "Create an API key (shown once); 409 past `GATEWAY_MAX_API_KEYS` live keys",
        "users",
        Ref(CreatedApiKey),
        201,
        body=CreateApiKeyRequest,
        errors=(409,),
    ),
    ("DELETE", f"{API}/user/apikeys/{{key_id}}"): Operation(
        "Revoke an API key", "users", Ref(ApiKey), errors=(404,)
    ),
    ("POST", f"{API}/auth/token"): Operation(
        "Exchange an API key for a short-lived access token", "users", Ref(AccessToken)
    ),
    ("GET", f"{API}/audit"): Operation(
        "The audit trail (admins: everyone's; users: their own), oldest first",
        "audit",
        Ref(AuditPage),
        query=AuditQuery,
        query_fields=("sandboxId", "userId", "since", "limit"),
    ),
}

_ALWAYS = (500, 503, 504)
_AUTHED = (401, 429)
_DESCRIPTIONS = {
    101: "Switching protocols",
    202: "Accepted: started, follow it by its executionId",
    400: "Invalid request (`invalid_request`, per-field `details.fields`)",
    401: "Missing or invalid credentials (`unauthorized`)",
    403: "Not allowed (`forbidden`)",
    404: "Not found, or not yours (`not_found`)",
    409: "Conflicts with the current state (`conflict`, `sandbox_not_running`, `sandbox_paused`)",
    413: "Body too large (`payload_too_large`)",
    429: "Rate limit (`rate_limited`) or quota (`quota_exceeded`) exceeded",
    500: "Internal error (`internal_error`)",
    503: "A service is unavailable (`service_unavailable`, `runtime_unavailable`)",
    504: "A service did not answer in time (`timeout`)",
    501: "This deployment's runtime driver cannot do it (`not_implemented`)",
    507: "The sandbox's storage is full (`insufficient_storage`)",
}


def served(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, OpenAPI path) for every endpoint under `routes`; a WebSocket counts as GET."""
    for route in routes:
        if isinstance(route, Mount):
            yield from served(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = _CONVERTER.sub(r"{\1}", prefix + route.path)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, path
        elif isinstance(route, WebSocketRoute):
            yield "GET", _CONVERTER.sub(r"{\1}", prefix + route.path)


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the endpoints `routes` serve."""
    paths: dict[str, dict[str, Any]] = {}
    refs: set[Ref] = {Ref(ErrorEnvelope)}
    for method, path in served(routes):
        operation = OPERATIONS.get((method, path)) or Operation(
            "Undocumented endpoint", "other", description="Not yet described in openapi.py."
        )
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
        "tags": [{"name": tag} for tag in sorted({op.tag for op in OPERATIONS.values()})],
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
        refs.add(Ref(op.body, "validation"))
        result["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": Ref(op.body, "validation")}},
        }
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
    success: dict[str, Any] = {"description": _DESCRIPTIONS.get(op.status, "Success")}
    if op.response is not None:
        _collect(op.response, refs)
        media = "text/plain" if path == "/metrics" else "application/json"
        success["content"] = {media: {"schema": op.response}}
    elif path == "/docs":
        success["content"] = {"text/html": {"schema": {"type": "string"}}}
    for _, schema in op.other_successes:
        _collect(schema, refs)
    others = {
        str(status): {
            "description": _DESCRIPTIONS.get(status, "Success"),
            "content": {"application/json": {"schema": schema}},
        }
        for status, schema in op.other_successes
    }
    result["responses"] = (
        {str(op.status): success}
        | others
        | {str(status): {"$ref": f"#/components/responses/{status}"} for status in sorted(errors)}
    )
    return result


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
      if (op.requestBody) html += "<h4>Request body</h4>"
        + json(op.requestBody.content["application/json"].schema);
      html += "<h4>Responses</h4><ul>";
      for (const [status, r] of Object.entries(op.responses)) {
        const ref = r.$ref ? spec.components.responses[r.$ref.split("/").pop()] : r;
        const content = ref.content ? Object.values(ref.content)[0].schema : null;
        html += "<li><b>" + esc(status) + "</b> " + esc(ref.description)
          + (content ? json(content) : "") + "</li>";
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
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
