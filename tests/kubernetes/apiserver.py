"""An in-memory Kubernetes API server over real HTTP: Pods, Secrets and NetworkPolicies.

Enough of the API for the driver: create, get, list by labelSelector, delete, and the
garbage collector's cascade along ownerReferences. Kubelet behaviour is not here: a
listener (the fake kubelet) is told about created and deleted Pods.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Object = dict[str, Any]
Listener = Callable[[str, Object], None]
"""Called with ("ADDED" | "DELETED", pod) after a Pod is created or deleted."""

KINDS = {"pods": ("v1", "Pod"), "secrets": ("v1", "Secret")}
NET_KINDS = {"networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy")}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeApiServer:
    """Objects by (resource, namespace, name); served on 127.0.0.1 by uvicorn."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Object] = {}
        self.requests: list[tuple[str, str]] = []
        self._pod_lists = 0
        self._listed = asyncio.Condition()
        self.listeners: list[Listener] = []
        self._versions = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""
        base = "/namespaces/{namespace}/{resource}"
        self.app = Starlette(
            routes=[
                Route("/api/v1" + base, self._collection, methods=["GET", "POST"]),
                Route("/api/v1" + base + "/{name}", self._item, methods=["GET", "DELETE"]),
                Route("/apis/{group}/v1" + base, self._collection, methods=["GET", "POST"]),
                Route("/apis/{group}/v1" + base + "/{name}", self._item, methods=["GET", "DELETE"]),
            ]
        )

    # -- the store, also used directly by the fake kubelet and the tests --

    def get(self, resource: str, namespace: str, name: str) -> Object | None:
        return self.objects.get((resource, namespace, name))

    def of_kind(self, resource: str) -> list[Object]:
        return [obj for (kind, _, _), obj in self.objects.items() if kind == resource]

    def update_status(self, namespace: str, name: str, status: Object) -> None:
        pod = self.get("pods", namespace, name)
        if pod is not None:
            pod["status"] = status
            pod["metadata"]["resourceVersion"] = str(next(self._versions))

    def delete(self, resource: str, namespace: str, name: str) -> Object | None:
        """Remove an object, then everything it owns (the garbage collector, synchronously)."""
        obj = self.objects.pop((resource, namespace, name), None)
        if obj is None:
            return None
        if resource == "pods":
            for listener in self.listeners:
                listener("DELETED", obj)
        uid = obj["metadata"]["uid"]
        for key, other in list(self.objects.items()):
            owners = other["metadata"].get("ownerReferences") or []
            if key[1] == namespace and any(ref.get("uid") == uid for ref in owners):
                self.delete(*key)
        return obj

    async def pods_listed(self, times: int = 1) -> None:
        """Until Pods have been listed `times` more times (by the driver's failure watcher:
        each list answered reads the store as it was when its request arrived)."""
        async with self._listed:
            target = self._pod_lists + times
            await asyncio.wait_for(self._listed.wait_for(lambda: self._pod_lists >= target), 10)

    # -- HTTP --

    def _kind(self, request: Request) -> tuple[str, str] | None:
        resource = request.path_params["resource"]
        group = request.path_params.get("group")
        if group is None:
            return KINDS.get(resource)
        if group == "networking.k8s.io":
            return NET_KINDS.get(resource)
        return None

    async def _collection(self, request: Request) -> JSONResponse:
        namespace, resource = request.path_params["namespace"], request.path_params["resource"]
        self.requests.append((request.method, request.url.path))
        kind = self._kind(request)
        if kind is None:
            return _status(404, "NotFound", f"the server could not find {resource}")
        api_version, kind_name = kind
        if request.method == "GET":
            if resource == "pods":
                async with self._listed:
                    self._pod_lists += 1
                    self._listed.notify_all()
            selector = request.query_params.get("labelSelector", "")
            items = [
                copy.deepcopy(obj)
                for (res, ns, _), obj in sorted(self.objects.items())
                if res == resource
                and ns == namespace
                and matches(selector, obj["metadata"].get("labels") or {})
            ]
            body = {
                "apiVersion": api_version,
                "kind": f"{kind_name}List",
                "metadata": {"resourceVersion": str(next(self._versions))},
                "items": items,
            }
            return JSONResponse(body)
        obj = await request.json()
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name", "")
        if not _NAME.match(name) or len(name) > 253:
            return _status(422, "Invalid", f"{kind_name} {name!r} is invalid: metadata.name")
        if (resource, namespace, name) in self.objects:
            return _status(409, "AlreadyExists", f'{resource} "{name}" already exists')
        metadata.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._versions)),
            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind_name)
        if resource == "pods":
            obj["status"] = {"phase": "Pending"}
        self.objects[(resource, namespace, name)] = obj
        if resource == "pods":
            for listener in self.listeners:
                listener("ADDED", obj)
        return JSONResponse(copy.deepcopy(obj), status_code=201)

    async def _item(self, request: Request) -> JSONResponse:
        namespace, resource = request.path_params["namespace"], request.path_params["resource"]
        name = request.path_params["name"]
        self.requests.append((request.method, request.url.path))
        if self._kind(request) is None:
            return _status(404, "NotFound", f"the server could not find {resource}")
        if request.method == "GET":
            obj = self.get(resource, namespace, name)
        else:
            obj = self.delete(resource, namespace, name)
        if obj is None:
            return _status(404, "NotFound", f'{resource} "{name}" not found')
        return JSONResponse(copy.deepcopy(obj))

    async def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
