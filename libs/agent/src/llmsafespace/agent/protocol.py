"""The agent's wire format: a 4-byte big-endian length, a UTF-8 JSON header (its strings
valid Unicode: see ``encode``), optional raw body.

A header may carry ``"bodyLen": k``; then ``k`` raw bytes follow it (file transfers).
Both sides bound what they accept to what the protocol needs: the largest header is a
request with the largest code cell (512 KiB, JSON-escaped) or a result, the largest body
one transfer chunk. A peer announcing more is cut off before anything is buffered: the
agent is inside the sandbox, so the host side must not trust its length prefixes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

TYPE_CHECKING = False  # typing itself is ~0.5 MB the agent does without (mypy reads True)
if TYPE_CHECKING:
    import asyncio  # the client's side only: the agent stays free of asyncio (~5 MB each)
    from typing import Any, BinaryIO

    Frame = dict[str, Any]
else:
    Frame = dict

MAX_HEADER = 8 * 2**20
MAX_BODY = 2**20  # transfers send chunks of at most 256 KiB
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(header: Mapping[str, Any], body: bytes = b"") -> bytes:
    """Serialize one frame (header, then ``body`` if given).

    The header is UTF-8, so every string in it must be valid Unicode: a lone surrogate
    becomes U+FFFD (and a high and a low one side by side the character they pair
    into). They come from the sandbox: the agent decodes file names with
    surrogateescape (a name that is not UTF-8 has ``\\udcff`` for each bad byte), and a
    cell may print, raise or display ``'\\udcff'``. Escaped (``json.dumps``' default)
    they would reach the host, which fails wherever it encodes them. Only a header that
    has one pays for the repair."""
    if len(body) > MAX_BODY:
        raise ProtocolError(f"body of {len(body)} bytes exceeds {MAX_BODY}")
    if body:
        header = {**header, "bodyLen": len(body)}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    try:
        data = text.encode()
    except UnicodeEncodeError:  # UTF-16 cannot carry a lone surrogate either
        data = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode()
    if len(data) > MAX_HEADER:
        raise ProtocolError(f"header of {len(data)} bytes exceeds {MAX_HEADER}")
    return _LENGTH.pack(len(data)) + data + body


def decode_header(data: bytes) -> Frame:
    """Parse a header; it must be a JSON object."""
    try:
        header = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    return header


class FrameTooLarge(ProtocolError):
    """A length prefix beyond the limit; the stream cannot be resynchronized."""


def _check_length(length: int) -> int:
    if length > MAX_HEADER:
        raise FrameTooLarge(f"header of {length} bytes exceeds {MAX_HEADER}")
    return length


async def read_frame(reader: asyncio.StreamReader) -> tuple[Frame, bytes]:
    """Read one frame: (header, body). Raises IncompleteReadError at EOF.

    A malformed header raises ProtocolError after it was consumed, so the stream stays usable.
    """
    length = _check_length(_LENGTH.unpack(await reader.readexactly(_LENGTH.size))[0])
    header = decode_header(await reader.readexactly(length))
    body_length = _body_length(header)
    body = await reader.readexactly(body_length) if body_length else b""
    return header, body


def _body_length(header: Frame) -> int:
    body_length = header.get("bodyLen", 0)
    if not isinstance(body_length, int) or not 0 <= body_length <= MAX_BODY:
        raise FrameTooLarge("bodyLen must be an integer within limits")
    return body_length


def read_frame_sync(stream: BinaryIO) -> tuple[Frame, bytes] | None:
    """Read one frame from a blocking stream (the agent's connection, the worker's control
    pipe); None at EOF. A malformed header raises ProtocolError after it was consumed."""
    prefix = stream.read(_LENGTH.size)
    if len(prefix) < _LENGTH.size:
        return None
    length = _check_length(_LENGTH.unpack(prefix)[0])
    data = stream.read(length)
    if len(data) < length:
        return None
    header = decode_header(data)
    body_length = _body_length(header)
    body = stream.read(body_length) if body_length else b""
    if len(body) < body_length:
        return None
    return header, body


class FrameBuffer:
    """Headers from a non-blocking stream read in pieces (the worker's reply pipe)."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        self._data += data

    def pop(self) -> Frame | None:
        """The next complete header (bodies are not used on this stream), else None."""
        if len(self._data) < _LENGTH.size:
            return None
        length = _check_length(_LENGTH.unpack_from(self._data)[0])
        end = _LENGTH.size + length
        if len(self._data) < end:
            return None
        header = decode_header(bytes(self._data[_LENGTH.size : end]))
        del self._data[:end]
        return header
