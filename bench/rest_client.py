"""A lean REST client for the benchmarks: one keep-alive HTTP/1.1 connection, a request
written in one piece, the reply read by its Content-Length.

The Kernel Gateway is driven by a plain WebSocket client (`stream_client`), whose cost
per message is a few tens of microseconds. httpx, the SDK's transport, spends about
2 ms of CPU per request on this machine, on the same core the servers need: a REST
figure taken through it measures the client as much as the server. Figures 1 and 3 use
this client for REST, and figure 1 also prints the httpx round trip beside it.
"""

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

from harness import PRINT1


class RestClient:
    """`POST /sandboxes/{id}/execute` over one connection (not safe for concurrent use:
    one client per connection, as each benchmark client has)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, base: str, key: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._base = base
        self._key = key

    @classmethod
    async def connect(cls, api_url: str, key: str) -> "RestClient":
        url = urlsplit(api_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        return cls(reader, writer, url.path, key)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (
            f"POST {self._base}{path} HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {self._key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        self._writer.write(head.encode() + payload)
        status_line, _, headers = (await self._reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        length = 0
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self._reader.readexactly(length)

    async def execute(self, sandbox_id: str, code: str = PRINT1) -> dict[str, Any]:
        """One synchronous execution; raises unless it completed (as `harness.execute`)."""
        status, body = await self.post(
            f"/sandboxes/{sandbox_id}/execute", {"type": "code", "content": code}
        )
        if status != 200:
            raise RuntimeError(f"execute: {status} {body[:200]!r}")
        result: dict[str, Any] = json.loads(body)
        if result["status"] != "completed":
            raise RuntimeError(f"execute: {result['status']} {result.get('stderr', '')[:200]}")
        return result
