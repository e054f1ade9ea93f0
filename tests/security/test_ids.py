"""An id with a trailing newline (`%0A`) is as unknown as any id that cannot exist, on
every route class that reads one: a sandbox path, a snapshot path, a terminal's query.
Matched with `re.match` and a `$` pattern, the snapshot one was a 500 and the terminal
one failed before the upgrade."""

import httpx
import pytest
import websockets

from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack
SNAPSHOT = "snap-" + "a" * 16
TERMINAL = "term-" + "a" * 16


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sandboxes/{sandbox}%0A"),
        ("DELETE", "/sandboxes/{sandbox}%0A"),
        ("GET", f"/snapshots/{SNAPSHOT}%0A"),
        ("DELETE", f"/snapshots/{SNAPSHOT}%0A"),
    ],
)
async def test_a_path_id_with_a_trailing_newline_is_not_found(
    client: httpx.AsyncClient, witness: str, method: str, path: str
) -> None:
    response = await client.request(method, path.format(sandbox=witness))
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


async def test_a_terminal_id_with_a_trailing_newline_is_not_found(
    stack: Stack, witness: str
) -> None:
    base = stack.api_url.replace("http://", "ws://")
    url = f"{base}/sandboxes/{witness}/terminal?terminalId={TERMINAL}%0A"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, additional_headers=headers)
    assert refused.value.response.status_code == 404
