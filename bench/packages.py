"""Figure 10, `pip install` of one small wheel (six, 11 KiB): inside a sandbox with
network, from an index on the sandbox's own loopback (the wheel uploaded into it: pip's
own cost, no internet) and from pypi.org when the sandbox can reach it; and through the
mirror, `POST /sandboxes/{id}/packages` in a sandbox without network, exec-svc
restarted with `PACKAGE_INDEX_URL` pointing at an index served here on 127.0.0.1 (the
host's loopback, which sandboxes cannot reach: exec-svc fetches the wheel and pushes it
in). Each install starts from an empty `/workspace/.packages`. Kernel Gateway has no such
figure. A variant that cannot run here says why below the table."""

import contextlib
import http.server
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from context import Bench
from harness import Stats, execute
from report import Figure

from llmsafespace.devstack import Stack

PACKAGE, VERSION = "six", "1.17.0"
WHEEL = f"{PACKAGE}-{VERSION}-py2.py3-none-any.whl"
PROJECT_URL = f"https://pypi.org/simple/{PACKAGE}/"
PORT = 8765  # the in-sandbox index, on the sandbox's loopback
PUBLIC = ["pypi.org", "files.pythonhosted.org"]
INDEX_FILES = [f"simple/{PACKAGE}/{WHEEL}", f"simple/{PACKAGE}/index.html"]
# exec-svc's options for the mirror's install: no cache, no check of pip's own version
PIP = "pip install --no-cache-dir --disable-pip-version-check --no-input"
NETWORKED = "pip install, networked sandbox"
CLEAN = "rm -rf /workspace/.packages"
SERVE = (
    "import socket, subprocess, sys, time\n"
    f"index = subprocess.Popen([sys.executable, '-m', 'http.server', '{PORT}', '--bind',"
    " '127.0.0.1', '-d', '/workspace/index'], stdout=subprocess.DEVNULL,"
    " stderr=subprocess.DEVNULL)\n"
    "while True:\n"
    "    try:\n"
    f"        socket.create_connection(('127.0.0.1', {PORT}), 1).close()\n"
    "        break\n"
    "    except OSError:\n"
    "        time.sleep(0.1)\n"
)


class Unavailable(Exception):
    """A variant that cannot run on this machine, and why."""


async def download_wheel(directory: Path) -> Path:
    """A PEP 503 index in `directory` holding the wheel, fetched from PyPI."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as http:
        page = (await http.get(PROJECT_URL)).raise_for_status().text
        found = re.search(rf'href="([^"#]*/{re.escape(WHEEL)})', page)
        if found is None:
            raise Unavailable(f"no {WHEEL} on {PROJECT_URL}")
        data = (await http.get(found[1])).raise_for_status().content
    project = directory / "simple" / PACKAGE
    project.mkdir(parents=True)
    (project / WHEEL).write_bytes(data)
    (project / "index.html").write_text(f'<html><body><a href="{WHEEL}">{WHEEL}</a>')
    return directory


@contextlib.contextmanager
def served(root: Path) -> Iterator[str]:
    """`root` over HTTP on the host's 127.0.0.1; its URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def sandbox(api: httpx.AsyncClient, body: dict[str, Any]) -> AsyncIterator[str]:
    created = await api.post("/sandboxes", json={"timeout": 600, **body})
    if created.status_code != 201:
        raise RuntimeError(f"create: {created.status_code} {created.text[:200]}")
    sandbox_id = str(created.json()["id"])
    try:
        yield sandbox_id
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


@contextlib.asynccontextmanager
async def mirrored(stack: Stack, index_url: str) -> AsyncIterator[None]:
    """exec-svc (every replica) restarted with PACKAGE_INDEX_URL, then restored."""
    replicas = stack.replicas["exec-svc"]
    originals = [service.env for service in replicas]
    async with stack.stopped("exec-svc"):
        for service, original in zip(replicas, originals, strict=True):
            service.env = {**original, "PACKAGE_INDEX_URL": index_url}
    try:
        yield
    finally:
        async with stack.stopped("exec-svc"):
            for service, original in zip(replicas, originals, strict=True):
                service.env = original


async def installs(
    api: httpx.AsyncClient, sandbox_id: str, install: Callable[[], Awaitable[None]], count: int
) -> list[float]:
    """ms per install, each into an empty `/workspace/.packages` (emptied untimed)."""
    samples = []
    for _ in range(count):
        await execute_command(api, sandbox_id, CLEAN)
        started = time.perf_counter()
        await install()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def execute_command(api: httpx.AsyncClient, sandbox_id: str, command: str) -> None:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "command", "content": command}
    )
    require_success(response, command)


def require_success(response: httpx.Response, what: str) -> None:
    """Raise Unavailable unless `response` is a completed execution that exited 0."""
    if response.status_code != 200:
        raise Unavailable(f"{what}: {response.status_code} {response.text[:300]}")
    result = response.json()
    if result.get("exitCode") != 0:
        raise Unavailable(f"{what}: exit {result.get('exitCode')}: {result['stderr'][-300:]}")


async def networked(bench: Bench, index: Path) -> list[Figure]:
    """pip in a sandbox with network: from its own loopback, then from pypi.org."""
    api, count = bench.api, bench.scale.installs
    egress = [{"ports": [PORT]}, {"ports": [443], "hosts": PUBLIC}]
    figures = []
    async with sandbox(api, {"networkAccess": {"enabled": True, "egress": egress}}) as box:
        for relative in INDEX_FILES:
            uploaded = await api.put(
                f"/sandboxes/{box}/files/workspace/index/{relative}",
                content=(index / relative).read_bytes(),
            )
            uploaded.raise_for_status()
        await execute(api, box, SERVE)  # the index runs on in the interpreter's child
        local = f"{PIP} --index-url http://127.0.0.1:{PORT}/simple/ {PACKAGE}=={VERSION}"
        samples = await installs(api, box, lambda: execute_command(api, box, local), count)
        figures.append(Figure(10, f"{NETWORKED}, its loopback index", "ms", Stats.of(samples)))
        public = f"{PIP} {PACKAGE}=={VERSION}"
        name = f"{NETWORKED}, pypi.org"
        try:
            samples = await installs(api, box, lambda: execute_command(api, box, public), count)
        except Unavailable as exc:
            figures.append(Figure(10, name, "ms", None, examples=(f"cannot run: {exc}",)))
        else:
            figures.append(Figure(10, name, "ms", Stats.of(samples)))
    return figures


async def through_mirror(bench: Bench, index: Path) -> list[Figure]:
    api = bench.api
    body = {"packages": [f"{PACKAGE}=={VERSION}"], "manager": "pip"}

    async def install(box: str) -> None:
        require_success(await api.post(f"/sandboxes/{box}/packages", json=body), "POST /packages")

    name = "POST /packages through the mirror, no network"
    with served(index) as url:
        async with mirrored(bench.stack, f"{url}/simple/"), sandbox(api, {}) as box:
            try:
                samples = await installs(api, box, lambda: install(box), bench.scale.installs)
            except Unavailable as exc:
                return [Figure(10, name, "ms", None, examples=(f"cannot run: {exc}",))]
    return [Figure(10, name, "ms", Stats.of(samples))]


async def measure(bench: Bench) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="llmsafespace-bench-index-") as directory:
        try:
            index = await download_wheel(Path(directory))
        except (httpx.HTTPError, Unavailable) as exc:
            why = f"cannot run: no wheel from PyPI: {exc!r}"
            return [Figure(10, "pip install", "ms", None, examples=(why,))]
        return await networked(bench, index) + await through_mirror(bench, index)
