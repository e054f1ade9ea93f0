"""`files.read_part`: a bounded read. It asks for a `Range` and holds at most the part,
even from a server that ignores the range and sends the whole file; and the `read_file`
tool built on it. No stack needed."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from llmsafespace.sdk.config import ClientConfig
from llmsafespace.sdk.files import AsyncFiles
from llmsafespace.sdk.tools import SandboxTools
from llmsafespace.sdk.transport import Transport

PIECE = 64 * 1024
PIECES = 1000  # a 64 MB file, made a piece at a time as the client pulls it


class WholeFile:
    """A server holding one large file of `b"a"`s that ignores `Range` (a plain 200),
    counting the pieces the client pulled."""

    def __init__(self) -> None:
        self.pulled = 0
        self.ranges: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers.get("range"))
        headers = {"content-length": str(PIECE * PIECES)}
        return httpx.Response(200, headers=headers, content=self._pieces())

    async def _pieces(self) -> AsyncIterator[bytes]:
        for _ in range(PIECES):
            self.pulled += 1
            yield b"a" * PIECE


class Ranged:
    """A server that answers ranges as the gateway does (206 or 416), over `data`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self, request: httpx.Request) -> httpx.Response:
        size = str(len(self.data))
        if request.method == "HEAD":
            return httpx.Response(200, headers={"content-length": size})
        first, last = request.headers["range"].removeprefix("bytes=").split("-")
        start, stop = int(first), min(int(last) + 1, len(self.data))
        if start >= len(self.data):
            return httpx.Response(416, headers={"content-range": f"bytes */{size}"})
        headers = {"content-range": f"bytes {start}-{stop - 1}/{size}"}
        return httpx.Response(206, headers=headers, content=self.data[start:stop])


@dataclass(frozen=True)
class FilesOf:
    """What `SandboxTools`' file tools use of a sandbox: its files."""

    files: AsyncFiles


def _files(handler: WholeFile | Ranged) -> AsyncFiles:
    config = ClientConfig("http://api.test/api/v1", "k")
    client = httpx.AsyncClient(
        base_url=config.api_url + "/", transport=httpx.MockTransport(handler)
    )
    return AsyncFiles(Transport(config, client), "sb-0123456789ab")


async def test_a_part_asks_for_a_range_and_holds_no_more_of_a_whole_file() -> None:
    server = WholeFile()
    part = await _files(server).read_part("/workspace/big.txt", 0, 20_000)
    assert server.ranges == ["bytes=0-19999"]
    assert (part.data, part.offset, part.size) == (b"a" * 20_000, 0, PIECE * PIECES)
    assert server.pulled == 1


async def test_a_part_further_in_skips_a_whole_files_start_without_keeping_it() -> None:
    server = WholeFile()
    part = await _files(server).read_part("/workspace/big.txt", 3 * PIECE - 10, 30)
    assert (part.data, part.end) == (b"a" * 30, 3 * PIECE + 20)
    assert server.pulled == 4


async def test_a_ranged_part_gives_the_files_size_and_past_the_end_is_empty() -> None:
    files = _files(Ranged(b"0123456789"))
    part = await files.read_part("/workspace/digits.txt", 2, 5)
    assert (part.data, part.offset, part.size, part.end) == (b"23456", 2, 10, 7)
    tail = await files.read_part("/workspace/digits.txt", 8, 5)
    assert (tail.data, tail.size) == (b"89", 10)
    past = await files.read_part("/workspace/digits.txt", 10, 5)
    assert (past.data, past.offset, past.size) == (b"", 10, 10)


async def test_a_part_needs_a_length() -> None:
    with pytest.raises(ValueError, match="length"):
        await _files(Ranged(b"x")).read_part("/workspace/x", 0, 0)


async def test_read_file_parts_read_on_from_each_next_offset_join_up_to_the_exact_text() -> None:
    """A part never ends inside a character, and a limit smaller than one character gives
    that whole character (it gave a replacement character and skipped the rest of it)."""
    text = "ab😀é" * 3
    tools = SandboxTools(FilesOf(_files(Ranged(text.encode()))), max_output_chars=3)
    parts: list[str] = []
    offset: int | None = 0
    while offset is not None:
        call = {"path": "emoji.txt", "offset": offset}
        read = json.loads(await tools.adispatch("read_file", call))
        parts.append(read["content"])
        offset = read.get("next_offset")
    assert parts[:3] == ["ab", "😀", "éa"]
    assert "".join(parts) == text
