"""``python3 -I dnsfilter.py CONFIG READY_FD``: one sandbox's DNS, allowed names only.

A network sandbox whose egress names hosts gets this process beside its slirp4netns: the
sandbox's table (``network.egress_ruleset``) redirects every DNS query the sandbox sends
to it. A name no rule allows is answered NXDOMAIN at once and never leaves the host. An
allowed name is resolved upstream, and each address in the answer is admitted, for the
ports of the rules that allow the name, into the table's sets with the answer's TTL
(at least a minute) before the answer is passed on: the connection that follows the
lookup finds its address admitted. Connections to addresses no answer (and no `cidrs`)
admitted are rejected.

It runs as root with no capability but CAP_NET_ADMIN (to add set elements), inside the
sandbox's cgroups, so the sandbox's teardown ends it and its memory is the sandbox's. It
is run as a script, standard library only, so that it costs a bare interpreter; it reads
just enough of the DNS wire format (RFC 1035): a query's question, a refusal, and the
addresses in an answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

NFT = "/usr/sbin/nft"
UPSTREAM_TIMEOUT = 2.0
MIN_TTL, MAX_TTL = 60, 86400

HEADER = struct.Struct("!HHHHHH")  # id, flags, qd, an, ns, ar counts
TYPE_A, TYPE_AAAA = 1, 28
SERVFAIL, NXDOMAIN = 2, 3
_MAX_POINTERS = 32


class Malformed(ValueError):
    """Not a DNS message this filter can read."""


@dataclass(frozen=True)
class Question:
    ident: int
    name: str  # lower case, no trailing dot
    end: int  # offset just past the question (qtype and qclass included)


@dataclass(frozen=True)
class Address:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ttl: int


def _name(message: bytes, offset: int) -> tuple[str, int]:
    """The name at `offset` (compression pointers followed) and the offset after it."""
    labels: list[str] = []
    end = None
    for _ in range(_MAX_POINTERS):
        if offset >= len(message):
            raise Malformed("name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise Malformed("truncated pointer")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length & 0xC0:
            raise Malformed("unknown label type")
        if length == 0:
            return ".".join(labels).lower(), offset + 1 if end is None else end
        label = message[offset + 1 : offset + 1 + length]
        if len(label) != length:
            raise Malformed("label runs past the message")
        labels.append(label.decode("ascii", errors="replace"))
        offset += 1 + length
    raise Malformed("too many compression pointers")


def question(query: bytes) -> Question:
    """The one question of a standard query."""
    if len(query) < HEADER.size:
        raise Malformed("shorter than a header")
    ident, flags, qdcount, *_ = HEADER.unpack_from(query)
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:
        raise Malformed("not a standard query with one question")
    name, offset = _name(query, HEADER.size)
    if offset + 4 > len(query):
        raise Malformed("question runs past the message")
    return Question(ident, name, offset + 4)


def refusal(query: bytes, asked: Question, rcode: int = NXDOMAIN) -> bytes:
    """An answer without records: NXDOMAIN (the name does not exist as far as the sandbox
    can tell) or SERVFAIL (no upstream answered)."""
    flags = HEADER.unpack_from(query)[1]
    answer_flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode  # QR, RD copied, RA
    return HEADER.pack(asked.ident, answer_flags, 1, 0, 0, 0) + query[HEADER.size : asked.end]


def addresses(response: bytes, asked: Question) -> list[Address]:
    """The A and AAAA records among the answers of the response to `asked`."""
    if len(response) < HEADER.size:
        raise Malformed("shorter than a header")
    ident, flags, qdcount, ancount, *_ = HEADER.unpack_from(response)
    if ident != asked.ident or not flags & 0x8000 or qdcount != 1:
        raise Malformed("not the response to this query")
    name, offset = _name(response, HEADER.size)
    if name != asked.name:
        raise Malformed("answers another question")
    offset += 4
    found = []
    for _ in range(ancount):
        _, offset = _name(response, offset)
        if offset + 10 > len(response):
            raise Malformed("record runs past the message")
        rtype, _, ttl, length = struct.unpack_from("!HHIH", response, offset)
        data = response[offset + 10 : offset + 10 + length]
        if len(data) != length:
            raise Malformed("record data runs past the message")
        offset += 10 + length
        if (rtype, length) in ((TYPE_A, 4), (TYPE_AAAA, 16)):
            found.append(Address(ipaddress.ip_address(data), ttl))
    return found


@dataclass(frozen=True)
class Rule:
    ports: tuple[int, ...]
    hosts: tuple[str, ...]


def allows(pattern: str, name: str) -> bool:
    """`pypi.org` allows itself; `*.example.org` allows every name below example.org."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def ports_for(rules: Sequence[Rule], name: str) -> set[int]:
    """The ports every rule that allows `name` opens ({} if none does)."""
    return {
        port for rule in rules if any(allows(p, name) for p in rule.hosts) for port in rule.ports
    }


def elements(addresses: Sequence[Address], ports: set[int]) -> dict[str, list[str]]:
    """nft set elements ('ip . port timeout Ns') per set (a4, a6)."""
    found: dict[str, list[str]] = {"a4": [], "a6": []}
    for address in addresses:
        ttl = min(max(address.ttl, MIN_TTL), MAX_TTL)
        family = "a4" if address.ip.version == 4 else "a6"
        found[family] += [f"{address.ip} . {port} timeout {ttl}s" for port in sorted(ports)]
    return found


class Filter(asyncio.DatagramProtocol):
    def __init__(self, table: str, rules: Sequence[Rule], upstream: Sequence[str]) -> None:
        self._table = table
        self._rules = rules
        self._upstream = upstream
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, query: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        try:
            asked = question(query)
        except Malformed:
            return
        ports = ports_for(self._rules, asked.name)
        if not ports:
            self._transport.sendto(refusal(query, asked), addr)
            return
        response = await self._resolve(query)
        if response is None:
            self._transport.sendto(refusal(query, asked, SERVFAIL), addr)
            return
        try:
            await self._admit(elements(addresses(response, asked), ports))
        except Malformed:
            return
        self._transport.sendto(response, addr)

    async def _resolve(self, query: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        for server in self._upstream:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as upstream:
                upstream.setblocking(False)
                try:
                    await loop.sock_connect(upstream, (server, 53))
                    await loop.sock_sendall(upstream, query)
                    return await asyncio.wait_for(loop.sock_recv(upstream, 65535), UPSTREAM_TIMEOUT)
                except (OSError, TimeoutError):
                    continue
        return None

    async def _admit(self, found: dict[str, list[str]]) -> None:
        for name, items in found.items():
            if not items:
                continue
            command = f"add element inet {self._table} {name} {{ {', '.join(items)} }}"
            process = await asyncio.create_subprocess_exec(
                NFT, command, stdin=asyncio.subprocess.DEVNULL, env={}
            )
            await process.wait()


async def serve(config: dict[str, object], ready_fd: int) -> None:
    rules = [
        Rule(tuple(rule["ports"]), tuple(rule["hosts"]))
        for rule in config["rules"]  # type: ignore[attr-defined]
    ]
    upstream = [str(server) for server in config["upstream"]]  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Filter(str(config["table"]), rules, upstream), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    os.write(ready_fd, f"{port}\n".encode())
    os.close(ready_fd)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    config = json.loads(Path(argv[1]).read_text())
    asyncio.run(serve(config, int(argv[2])))


if __name__ == "__main__":
    main(sys.argv)
