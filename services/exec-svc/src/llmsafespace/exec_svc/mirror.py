"""A package index mirror reached from the host: sandboxes have no network, so exec-svc
resolves wheels from `PACKAGE_INDEX_URL` (PEP 503 simple API) and pushes the files in.

Only wheels compatible with this interpreter's tags are used (the sandbox runs the same
CPython); dependencies are followed through each wheel's METADATA."""

import re
import tempfile
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import IO
from urllib.parse import urljoin, urlsplit

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from llmsafespace.contracts import ErrorCode, ServiceError

MAX_WHEELS = 100
_HREF = re.compile(r"""<a\s[^>]*href=["']([^"']+)["']""", re.IGNORECASE)


@dataclass
class Wheel:
    filename: str
    file: IO[bytes]  # spooled to disk past a few MiB, never whole in memory


class Mirror:
    def __init__(self, index_url: str, timeout: float = 30.0) -> None:
        self._index = index_url.rstrip("/") + "/"
        self._timeout = timeout
        self._tags = set(sys_tags())

    @asynccontextmanager
    async def resolve(self, packages: list[str]) -> AsyncIterator[list[Wheel]]:
        """The wheels for ``packages`` and their dependencies, downloaded to temp files."""
        wheels: list[Wheel] = []
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as http:
                pending = [_requirement(package) for package in packages]
                seen: set[str] = set()
                while pending:
                    requirement = pending.pop()
                    name = canonicalize_name(requirement.name)
                    if name in seen:
                        continue
                    seen.add(name)
                    if len(seen) > MAX_WHEELS:
                        raise ServiceError(ErrorCode.INVALID_REQUEST, "too many dependencies")
                    wheel = await self._download(http, requirement)
                    wheels.append(wheel)
                    pending.extend(_dependencies(wheel, requirement))
            yield wheels
        finally:
            for wheel in wheels:
                wheel.file.close()

    async def _download(self, http: httpx.AsyncClient, requirement: Requirement) -> Wheel:
        page_url = urljoin(self._index, f"{canonicalize_name(requirement.name)}/")
        try:
            page = await http.get(page_url)
        except httpx.HTTPError as exc:
            raise _unreachable(self._index, exc) from exc
        if page.status_code == 404:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"{requirement.name} is not in the package index"
            )
        if page.status_code != 200:
            raise _unreachable(self._index, f"HTTP {page.status_code}")
        best: tuple[Version, str, str] | None = None
        for href in _HREF.findall(page.text):
            url = urljoin(page_url, href)
            filename = urlsplit(url).path.rsplit("/", 1)[-1]
            try:
                _, version, _, tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            if not requirement.specifier.contains(version) or not tags & self._tags:
                continue
            if best is None or version > best[0]:
                best = (version, filename, url.split("#", 1)[0])
        if best is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"no compatible wheel for {requirement} in the package index"
            )
        _, filename, url = best
        spool = tempfile.SpooledTemporaryFile(max_size=4 * 2**20)  # noqa: SIM115 - returned
        try:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _unreachable(self._index, f"HTTP {response.status_code} for {filename}")
                async for chunk in response.aiter_bytes():
                    spool.write(chunk)
        except httpx.HTTPError as exc:
            spool.close()
            raise _unreachable(self._index, exc) from exc
        spool.seek(0)
        return Wheel(filename, spool)


def _requirement(package: str) -> Requirement:
    try:
        return Requirement(package)
    except InvalidRequirement as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, f"invalid requirement {package!r}") from exc


def _dependencies(wheel: Wheel, requirement: Requirement) -> list[Requirement]:
    """The wheel's Requires-Dist whose markers hold here (with the extras asked for)."""
    try:
        with zipfile.ZipFile(wheel.file) as archive:
            name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
            metadata = archive.read(name).decode() if name else ""
    except zipfile.BadZipFile as exc:
        raise ServiceError(ErrorCode.INVALID_REQUEST, f"{wheel.filename} is corrupt") from exc
    finally:
        wheel.file.seek(0)
    found = []
    for line in HeaderParser().parsestr(metadata).get_all("Requires-Dist") or []:
        dependency = Requirement(line)
        extras = requirement.extras or {""}
        if dependency.marker is None or any(
            dependency.marker.evaluate({"extra": extra}) for extra in extras
        ):
            found.append(dependency)
    return found


def _unreachable(index: str, reason: object) -> ServiceError:
    return ServiceError(
        ErrorCode.SERVICE_UNAVAILABLE, f"the package index {index} failed: {reason}"
    )
