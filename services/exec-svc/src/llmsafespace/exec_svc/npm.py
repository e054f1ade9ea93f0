"""An npm registry mirror reached from the host (`NPM_REGISTRY_URL`): sandboxes without
network get their packages from exec-svc, as with the pip mirror.

exec-svc resolves the requested packages and their dependencies the way npm picks
versions (the `latest` tag when it satisfies the range, else the highest satisfying
version), downloads each tarball (checked against the registry's integrity), and hands
back a small registry of its own: one packument per package listing only the chosen
versions, tarball URLs relative to a placeholder. `registry.py` serves it inside the
sandbox on loopback, where npm itself installs from it."""

import base64
import hashlib
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote, urlsplit

import httpx
from nodesemver import max_satisfying, satisfies, valid_range

from llmsafespace.contracts import ErrorCode, ServiceError

MAX_PACKAGES = 300
REGISTRY_PLACEHOLDER = "@@REGISTRY@@"  # replaced by the in-sandbox registry's own URL
_DEPENDENCY_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")


@dataclass
class Tarball:
    filename: str
    file: IO[bytes]  # spooled to disk past a few MiB, never whole in memory


@dataclass
class Resolution:
    """What the in-sandbox registry serves: packuments by file name, and the tarballs."""

    packuments: dict[str, bytes] = field(default_factory=dict)
    tarballs: list[Tarball] = field(default_factory=list)

    @property
    def versions(self) -> int:
        return len(self.tarballs)


def packument_file(name: str) -> str:
    """The file a package's packument is stored under (scoped names keep their '@')."""
    return quote(name, safe="@") + ".json"


def split_spec(spec: str) -> tuple[str, str]:
    """`name@range` (or `@scope/name@range`) as (name, range); no range means `latest`."""
    scoped = spec.startswith("@")
    name, _, wanted = spec[1:].partition("@") if scoped else spec.partition("@")
    return ("@" + name if scoped else name), (wanted.strip() or "latest")


def pick(packument: dict[str, Any], wanted: str) -> str | None:
    """The version npm would pick for `wanted` (a range or a dist-tag), or None."""
    versions = list(packument.get("versions") or {})
    tags = packument.get("dist-tags") or {}
    if wanted in tags:
        return tags[wanted] if tags[wanted] in versions else None
    latest = tags.get("latest")
    if latest in versions and satisfies(latest, wanted, loose=True):
        return str(latest)
    found = max_satisfying(versions, wanted, loose=True)
    return str(found) if found else None


@dataclass
class _Chosen:
    name: str
    version: str
    manifest: dict[str, Any]


class NpmMirror:
    def __init__(self, registry_url: str, timeout: float = 30.0) -> None:
        self._registry = registry_url.rstrip("/") + "/"
        self._origin = urlsplit(self._registry)[:2]
        self._timeout = timeout

    @asynccontextmanager
    async def resolve(self, specs: list[str]) -> AsyncIterator[Resolution]:
        """The packages for ``specs`` and their dependencies, tarballs in temp files."""
        resolution = Resolution()
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as http:
                chosen = await self._choose(http, specs)
                by_name: dict[str, list[_Chosen]] = {}
                for entry in chosen:
                    by_name.setdefault(entry.name, []).append(entry)
                for name, entries in by_name.items():
                    versions = {}
                    for entry in entries:
                        tarball = await self._download(http, entry, len(resolution.tarballs))
                        resolution.tarballs.append(tarball)
                        dist = {
                            **entry.manifest.get("dist", {}),
                            "tarball": f"{REGISTRY_PLACEHOLDER}/-/{tarball.filename}",
                        }
                        versions[entry.version] = {**entry.manifest, "dist": dist}
                    newest = max_satisfying(list(versions), "*", loose=True) or entries[0].version
                    document = {"name": name, "dist-tags": {"latest": newest}, "versions": versions}
                    resolution.packuments[packument_file(name)] = json.dumps(document).encode()
            yield resolution
        finally:
            for tarball in resolution.tarballs:
                tarball.file.close()

    async def _choose(self, http: httpx.AsyncClient, specs: list[str]) -> list[_Chosen]:
        documents: dict[str, dict[str, Any] | None] = {}
        chosen: dict[tuple[str, str], _Chosen] = {}
        seen: set[tuple[str, str]] = set()
        # (name, wanted, optional, who asked)
        pending = [(*split_spec(spec), False, "") for spec in specs]
        while pending:
            name, wanted, optional, parent = pending.pop()
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            if wanted.startswith("npm:"):  # an alias: `npm:other@range`
                name, wanted = split_spec(wanted[4:])
            if name not in documents:
                documents[name] = await self._packument(http, name)
            document = documents[name]
            asked = f"{name}@{wanted}" + (f" (needed by {parent})" if parent else "")
            if document is None:
                if optional:
                    continue
                raise ServiceError(ErrorCode.NOT_FOUND, f"{asked} is not in the npm registry")
            if wanted not in (document.get("dist-tags") or {}) and not valid_range(
                wanted, loose=True
            ):
                if optional:
                    continue
                raise ServiceError(
                    ErrorCode.INVALID_REQUEST,
                    f"{asked} is not a registry version range (git, file and URL "
                    "dependencies cannot be installed from the mirror)",
                )
            version = pick(document, wanted)
            if version is None:
                if optional:
                    continue
                raise ServiceError(
                    ErrorCode.NOT_FOUND, f"no version of {asked} in the npm registry"
                )
            if (name, version) in chosen:
                continue
            if len(chosen) >= MAX_PACKAGES:
                raise ServiceError(ErrorCode.INVALID_REQUEST, "too many dependencies")
            manifest = document["versions"][version]
            chosen[(name, version)] = _Chosen(name, version, manifest)
            pending.extend(_dependencies(manifest, f"{name}@{version}"))
        return list(chosen.values())

    async def _packument(self, http: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
        url = self._registry + quote(name, safe="@")
        try:
            response = await http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unreachable(self._registry, exc) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unreachable(self._registry, f"HTTP {response.status_code} for {name}")
        try:
            document = response.json()
        except ValueError as exc:
            raise _unreachable(self._registry, f"{name}: not JSON") from exc
        return document if isinstance(document, dict) else None

    async def _download(self, http: httpx.AsyncClient, entry: _Chosen, index: int) -> Tarball:
        dist = entry.manifest.get("dist") or {}
        url = dist.get("tarball")
        label = f"{entry.name}@{entry.version}"
        if not isinstance(url, str) or urlsplit(url)[:2] != self._origin:
            raise _unreachable(self._registry, f"{label}: its tarball is not on the registry")
        digests = {"sha512": hashlib.sha512(), "sha1": hashlib.sha1()}
        spool = tempfile.SpooledTemporaryFile(max_size=4 * 2**20)  # noqa: SIM115 - returned
        try:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _unreachable(self._registry, f"HTTP {response.status_code} for {label}")
                async for chunk in response.aiter_bytes():
                    for digest in digests.values():
                        digest.update(chunk)
                    spool.write(chunk)
            _check_integrity(label, dist, digests)
        except httpx.HTTPError as exc:
            spool.close()
            raise _unreachable(self._registry, exc) from exc
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return Tarball(f"{index}.tgz", spool)


def _dependencies(manifest: dict[str, Any], parent: str) -> list[tuple[str, str, bool, str]]:
    """What npm installs along with a version: its dependencies, optional dependencies
    (skipped when unavailable) and non-optional peer dependencies."""
    found = []
    optional_peers = manifest.get("peerDependenciesMeta") or {}
    for kind in _DEPENDENCY_FIELDS:
        for name, wanted in (manifest.get(kind) or {}).items():
            if not isinstance(wanted, str):
                continue
            if kind == "peerDependencies" and (optional_peers.get(name) or {}).get("optional"):
                continue
            found.append((name, wanted.strip() or "latest", kind == "optionalDependencies", parent))
    return found


def _check_integrity(label: str, dist: dict[str, Any], digests: dict[str, Any]) -> None:
    """`dist.integrity` (SRI, sha512 or sha1) and `dist.shasum` must match when given."""
    expected: list[tuple[str, str]] = []
    for item in str(dist.get("integrity") or "").split():
        algorithm, _, value = item.partition("-")
        if algorithm in digests:
            expected.append((algorithm, value))
    for algorithm, value in expected:
        if base64.b64encode(digests[algorithm].digest()).decode() != value:
            raise ServiceError(ErrorCode.INTERNAL_ERROR, f"{label}: tarball integrity mismatch")
    shasum = dist.get("shasum")
    if isinstance(shasum, str) and shasum and shasum != digests["sha1"].hexdigest():
        raise ServiceError(ErrorCode.INTERNAL_ERROR, f"{label}: tarball shasum mismatch")


def _unreachable(registry: str, reason: object) -> ServiceError:
    return ServiceError(
        ErrorCode.SERVICE_UNAVAILABLE, f"the npm registry {registry} failed: {reason}"
    )
