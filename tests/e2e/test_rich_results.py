"""Rich results through the real stack: MIME bundles in the REST result (`results`), as
`display` messages in order with `output` on the WebSocket and SSE (replayed by `resume`),
matplotlib figures as PNG and pandas DataFrames as HTML, and the size cap.

matplotlib and pandas: a `python:3.11-data` sandbox when the stack has that runtime, else
a networked sandbox that installs them from PyPI with `POST /packages` (skipped when this
host cannot reach PyPI)."""

import base64
import json
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from llmsafespace.devstack import Stack

from .test_streaming import connect, execute, until_terminal, ws_url

pytestmark = pytest.mark.stack

DATA_RUNTIME = "python:3.11-data"
BUNDLE_CAP = 256 * 1024  # the agent's MAX_BUNDLE_BYTES


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), 5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
async def data_sandbox(stack: Stack) -> AsyncIterator[str]:
    """A sandbox where matplotlib and pandas import (see the module)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        body = {"runtime": DATA_RUNTIME, "timeout": 900}
        created = await api.post("/sandboxes", json=body)
        if created.status_code == 400:  # no data runtime on this stack: install them
            if not _reachable("pypi.org"):
                pytest.skip(
                    "host feature: no python:3.11-data runtime and no route to PyPI for matplotlib"
                )
            body = {
                "timeout": 900,
                "networkAccess": {"enabled": True},
                "resources": {"memory": "1536Mi"},  # pip stages in /tmp (memory)
            }
            created = await api.post("/sandboxes", json=body)
            assert created.status_code == 201, created.text
            installed = await api.post(
                f"/sandboxes/{created.json()['id']}/packages",
                json={"packages": ["matplotlib", "pandas"], "timeout": 600},
                timeout=660,
            )
            assert installed.json()["exitCode"] == 0, installed.text
        assert created.status_code == 201, created.text
        sandbox_id: str = created.json()["id"]
        yield sandbox_id
        await api.delete(f"/sandboxes/{sandbox_id}")


async def _run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> dict[str, Any]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": "code", "content": code, "timeout": 120},
        timeout=150,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["status"] == "completed", result
    return result


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of an 8-bit RGB(A) PNG, checking its structure:
    signature, chunk CRCs, IHDR, and IDAT that inflates to exactly the image's size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    idat = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks[kind] = body
        if kind == b"IDAT":
            idat += body
        offset += 12 + length
    assert b"IEND" in chunks
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color in (2, 6)) == (8, True)
    pixels = zlib.decompress(idat)
    assert len(pixels) == height * (1 + width * (4 if color == 6 else 3))
    return width, height, pixels


async def test_a_matplotlib_line_plot_is_a_valid_png(
    api: httpx.AsyncClient, data_sandbox: str
) -> None:
    code = (
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3, 4], [1, 4, 9, 16])\n"
        "plt.title('squares')\n"
        "plt.show()\n"
        "print('shown')\n"
    )
    result = await _run(api, data_sandbox, code)
    assert result["stdout"] == "shown\n"
    assert result["stderr"] == "", "a plot draws text without complaint (fontconfig)"
    [figure] = result["results"]
    assert figure["isMainResult"] is False
    assert figure["truncated"] is False
    assert figure["data"]["text/plain"].startswith("<Figure size")
    width, height, pixels = _png_pixels(base64.b64decode(figure["data"]["image/png"]))
    assert width > 100
    assert height > 100
    assert len(set(pixels)) > 2, "something is drawn"
    assert "result" not in result, "a trailing print is no result"


async def test_a_figure_left_open_is_shown_at_the_end_after_the_main_result(
    api: httpx.AsyncClient, data_sandbox: str
) -> None:
    result = await _run(api, data_sandbox, "import matplotlib.pyplot as plt\nplt.plot([3, 1])")
    main, figure = result["results"]
    assert main["isMainResult"] is True
    assert main["data"] == {"text/plain": result["result"]}
    assert result["result"].startswith("[<matplotlib.lines.Line2D")
    _png_pixels(base64.b64decode(figure["data"]["image/png"]))
    again = await _run(api, data_sandbox, "len(plt.get_fignums())")
    assert again["result"] == "0", "shown figures are closed"


async def test_a_pandas_dataframe_is_an_html_table(
    api: httpx.AsyncClient, data_sandbox: str
) -> None:
    code = "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'pop': [0.7, 10.0]})"
    result = await _run(api, data_sandbox, code)
    [table] = result["results"]
    assert table["isMainResult"] is True
    assert "<table" in table["data"]["text/html"]
    assert "Oslo" in table["data"]["text/html"]
    assert table["data"]["text/plain"] == result["result"]
    assert "Lima" in result["result"]


async def test_an_object_with_a_mimebundle_round_trips(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    code = (
        "class Card:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/markdown': '# Hi', 'image/png': bytes(range(256)),\n"
        "                'application/json': {'k': [1, None, 'v']}}\n"
        "    def __repr__(self):\n"
        "        return 'Card()'\n"
        "Card()"
    )
    result = await _run(api, sandbox_id, code)
    assert result["result"] == "Card()"
    assert result["results"] == [
        {
            "data": {
                "text/markdown": "# Hi",
                "image/png": base64.b64encode(bytes(range(256))).decode(),
                "application/json": {"k": [1, None, "v"]},
                "text/plain": "Card()",
            },
            "isMainResult": True,
            "truncated": False,
        }
    ]


LOOP = "for i in range(3):\n    print('row', i)\n    display({'i': i})\n'done'"


def _in_order(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (m["type"], m["content"] if m["type"] == "output" else m["data"]["text/plain"])
        for m in messages
        if m["type"] in ("output", "display")
    ]


EXPECTED = [
    ("output", "row 0\n"),
    ("display", "{'i': 0}"),
    ("output", "row 1\n"),
    ("display", "{'i': 1}"),
    ("output", "row 2\n"),
    ("display", "{'i': 2}"),
    ("display", "'done'"),
]


async def test_display_in_a_loop_comes_in_order_on_rest_websocket_resume_and_sse(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    result = await _run(api, sandbox_id, LOOP)
    assert [r["data"]["text/plain"] for r in result["results"]] == [
        "{'i': 0}",
        "{'i': 1}",
        "{'i': 2}",
        "'done'",
    ]
    assert [r["isMainResult"] for r in result["results"]] == [False, False, False, True]

    ws = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    try:
        execution_id = await execute(ws, LOOP)
        live = await until_terminal(ws, execution_id)
    finally:
        await ws.close()
    assert _in_order(live) == EXPECTED
    displays = [m for m in live if m["type"] == "display"]
    assert displays[-1]["isMainResult"] is True
    assert all(isinstance(m["timestamp"], int) and m["truncated"] is False for m in displays)
    seqs = [m["seq"] for m in live if "seq" in m]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert "results" not in live[-1], "the terminal message does not repeat them"
    assert live[-1]["result"] == "'done'"

    ws = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    try:
        after = displays[0]["seq"]
        await ws.send(json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": after}))
        replayed = await until_terminal(ws, execution_id)
    finally:
        await ws.close()
    assert replayed == [m for m in live if m.get("seq", 0) > after]

    body = {"type": "code", "content": LOOP, "stream": True}
    events = []
    async with api.stream("POST", f"/sandboxes/{sandbox_id}/execute", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: display"):
                events.append("display")
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    messages = [event for event in events if isinstance(event, dict)]
    assert _in_order(messages) == EXPECTED
    assert events.count("display") == 4


async def test_a_result_past_the_cap_is_truncated_and_the_sandbox_keeps_serving(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    code = (
        "class Big:\n"
        f"    def _repr_html_(self): return '<p>' + 'x' * {2 * BUNDLE_CAP}\n"
        "    def _repr_svg_(self): return '<svg/>'\n"
        "    def __repr__(self): return 'Big()'\n"
        "big = Big()\n"
        "big"
    )
    result = await _run(api, sandbox_id, code)
    [bundle] = result["results"]
    assert bundle == {
        "data": {"image/svg+xml": "<svg/>", "text/plain": "Big()"},
        "isMainResult": True,
        "truncated": True,
    }
    # Each below the cap, together past what a synchronous result carries.
    many = "for _ in range(3):\n    display({'text/html': 'y' * 200_000}, raw=True)"
    result = await _run(api, sandbox_id, many)
    first, *rest = result["results"]
    assert (len(first["data"]["text/html"]), first["truncated"]) == (200_000, False)
    assert [r["data"] for r in rest] == [{"text/plain": ""}] * 2
    assert all(r["truncated"] for r in rest)
    after = await _run(api, sandbox_id, "type(big).__name__")
    assert after["result"] == "'Big'"
