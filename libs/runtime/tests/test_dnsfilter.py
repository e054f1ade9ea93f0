"""The egress DNS filter's reading of the wire format and of its rules (no network)."""

import ipaddress
import struct

import pytest

from llmsafespace.runtime.local.dnsfilter import (
    HEADER,
    NXDOMAIN,
    TYPE_A,
    TYPE_AAAA,
    Address,
    Malformed,
    Rule,
    addresses,
    allows,
    elements,
    ports_for,
    question,
    refusal,
)


def _query(name: str, ident: int = 7) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return HEADER.pack(ident, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def test_a_query_names_its_question_in_lower_case() -> None:
    asked = question(_query("PyPI.org"))
    assert (asked.ident, asked.name) == (7, "pypi.org")


def test_a_refusal_is_nxdomain_for_the_same_question() -> None:
    query = _query("denied.test", ident=99)
    answer = refusal(query, question(query))
    ident, flags, qd, an, _, _ = HEADER.unpack_from(answer)
    assert (ident, flags & 0x8000, flags & 0xF, qd, an) == (99, 0x8000, NXDOMAIN, 1, 0)
    assert answer[HEADER.size :] == query[HEADER.size :]


def test_addresses_follow_compressed_names_and_skip_other_records() -> None:
    query = _query("a.test")
    asked = question(query)
    header = HEADER.pack(asked.ident, 0x8180, 1, 3, 0, 0)
    cname = b"\x03cdn\xc0\x0e"  # cdn.<"test" at offset 14>
    records = (
        struct.pack("!HHHIH", 0xC00C, 5, 1, 300, len(cname)) + cname
        + struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 30, 4) + bytes([198, 51, 100, 7])
        + struct.pack("!HHHIH", 0xC00C, TYPE_AAAA, 1, 600, 16) + bytes(15) + b"\x01"
    )  # fmt: skip
    response = header + query[HEADER.size : asked.end] + records
    assert addresses(response, asked) == [
        Address(ipaddress.ip_address("198.51.100.7"), 30),
        Address(ipaddress.ip_address("::1"), 600),
    ]


@pytest.mark.parametrize(
    "message",
    [
        b"",
        HEADER.pack(1, 0x8000, 1, 0, 0, 0) + b"\0\0\1\0\1",  # a response, not a query
        HEADER.pack(1, 0x0100, 2, 0, 0, 0) + b"\0\0\1\0\1",  # two questions
        HEADER.pack(1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",  # a pointer to itself
        HEADER.pack(1, 0x0100, 1, 0, 0, 0) + b"\x3fabc",  # a label past the end
    ],
)
def test_malformed_queries_are_refused_to_be_read(message: bytes) -> None:
    with pytest.raises(Malformed):
        question(message)


def test_a_response_to_another_query_admits_nothing() -> None:
    asked = question(_query("a.test", ident=1))
    other = _query("a.test", ident=2)
    forged = HEADER.pack(2, 0x8180, 1, 0, 0, 0) + other[HEADER.size :]
    with pytest.raises(Malformed):
        addresses(forged, asked)


def test_wildcards_allow_the_names_below_only_and_rules_add_their_ports() -> None:
    assert allows("*.example.org", "a.b.example.org")
    assert not allows("*.example.org", "example.org")
    assert not allows("*.example.org", "badexample.org")
    assert not allows("pypi.org", "pypi.org.evil.example")
    rules = [Rule((443,), ("pypi.org",)), Rule((80, 443), ("*.pypi.org",))]
    assert ports_for(rules, "files.pypi.org") == {80, 443}
    assert ports_for(rules, "pypi.org") == {443}
    assert ports_for(rules, "example.org") == set()


def test_admitted_addresses_live_as_long_as_their_ttl_within_bounds() -> None:
    short = Address(ipaddress.ip_address("198.51.100.7"), 5)
    long = Address(ipaddress.ip_address("::1"), 10**7)
    found = elements([short, long], {443})
    assert found == {"a4": ["198.51.100.7 . 443 timeout 60s"], "a6": ["::1 . 443 timeout 86400s"]}
