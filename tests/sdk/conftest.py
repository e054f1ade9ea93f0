"""SDK fixtures: the client's environment pointing at the session's stack, one sandbox per
module, and probes for endpoints other issues are still building."""

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from llmsafespace.sdk import AsyncSandbox, StreamUnavailableError
from llmsafespace.sdk.config import ClientConfig
from llmsafespace.sdk.streaming import open_stream


@pytest.fixture
def client_env(stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """`LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY` set as `source .llmsafespace/env`
    would; returned for subprocesses."""
    env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": stack.admin_key}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="module")
async def shared(stack) -> AsyncIterator[AsyncSandbox]:
    """One sandbox a module's read-mostly tests share."""
    sandbox = await AsyncSandbox.create(
        timeout=900, api_url=stack.api_url, api_key=stack.admin_key, metadata={"suite": "sdk"}
    )
    async with sandbox:
        yield sandbox


@pytest.fixture
def requires(stack, shared: AsyncSandbox) -> Callable[[str, str], None]:
    """`requires("GET", "/sandboxes/{id}/status")` skips the test when the running API has
    no such route yet (404/405 from the router, probed with a real sandbox id)."""

    def probe(method: str, path: str) -> None:
        url = stack.api_url + path.format(id=shared.id)
        headers = {"Authorization": f"Bearer {stack.admin_key}"}
        body = {"timeout": 900} if method == "POST" else None
        response = httpx.request(method, url, headers=headers, json=body, timeout=30)
        if response.status_code in (404, 405):
            pytest.skip(f"{method} {path} is not served yet (HTTP {response.status_code})")

    return probe


@pytest.fixture
async def requires_stream(stack, shared: AsyncSandbox) -> None:
    """Skip when the WebSocket stream endpoint is not served yet (the handshake is refused
    with a bare 403/404/405, which is how a router without the route answers)."""
    try:
        socket = await open_stream(ClientConfig(stack.api_url, stack.admin_key), shared.id)
    except StreamUnavailableError as exc:
        pytest.skip(f"GET /sandboxes/{{id}}/stream is not served yet ({exc})")
    await socket.close()


@pytest.fixture
def cleanup(stack) -> Iterator[Callable[[str], None]]:
    """`cleanup(sandbox_id)`: delete it after the test, whatever happened."""
    ids: list[str] = []
    yield ids.append
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    for identifier in ids:
        httpx.delete(f"{stack.api_url}/sandboxes/{identifier}", headers=headers, timeout=30)
