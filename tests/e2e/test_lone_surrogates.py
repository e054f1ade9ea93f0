"""Text from the sandbox that is not valid Unicode — a file name that is not UTF-8, a
cell that prints, raises or displays a lone surrogate — reaches the client with U+FFFD in
its place: the agent's frames carry every string as UTF-8. Before, each was a 500 (the
whole directory unlistable), and a streamed execution never ended."""

import httpx
import pytest

from llmsafespace.devstack import Stack

from .test_streaming import connect, execute, text_of, until_terminal, ws_url

pytestmark = pytest.mark.stack

# The cell's source is ASCII: the API refuses a lone surrogate in a body.
CELL = """
class Shown:
    def _repr_html_(self):
        return '<b>\\udcff</b>'

display(Shown())
print('out \\udcff')
raise ValueError('bad \\udcff')
"""


async def test_a_name_that_is_not_utf_8_is_listed_with_the_replacement_character(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    made = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={
            "type": "command",
            "content": "mkdir -p /workspace/odd && cd /workspace/odd"
            " && touch \"$(printf 'bad\\377name')\" fine",
        },
    )
    assert made.json()["exitCode"] == 0, made.text
    listed = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/odd"})
    assert listed.status_code == 200, listed.text
    names = sorted(entry["name"] for entry in listed.json()["files"])
    assert names == ["bad\ufffdname", "fine"]
    deep = await api.get(
        f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace", "recursive": "true"}
    )
    assert deep.status_code == 200, deep.text
    assert "/workspace/odd/bad\ufffdname" in {entry["path"] for entry in deep.json()["files"]}


async def test_a_cells_lone_surrogates_come_back_replaced_in_its_result(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": CELL}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "failed"
    assert result["stdout"] == "out \ufffd\n"
    assert result["error"]["value"] == "bad \ufffd"
    assert [r["data"]["text/html"] for r in result["results"]] == ["<b>\ufffd</b>"]


async def test_a_streamed_cell_with_lone_surrogates_ends_with_execution_complete(
    stack: Stack, sandbox_id: str
) -> None:
    ws = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    try:
        execution_id = await execute(ws, CELL)
        messages = await until_terminal(ws, execution_id)
    finally:
        await ws.close()
    assert messages[-1]["type"] == "execution_complete", messages[-1]
    assert messages[-1]["status"] == "failed"
    assert messages[-1]["error"]["value"] == "bad \ufffd"
    assert text_of(messages, "stdout") == "out \ufffd\n"
    shown = [m["data"]["text/html"] for m in messages if m["type"] == "display"]
    assert shown == ["<b>\ufffd</b>"]
