"""What no sandbox reaches besides the public internet: the host's own networks (its links
and gateways, read from the kernel's routing tables) in the local driver's fence. The
fence itself, loaded, is exercised by test_network.py."""

import ipaddress
import sys
from pathlib import Path

import pytest

from llmsafespace.runtime.local import network


def _v4(address: str) -> str:
    """An address as /proc/net/route prints it."""
    value = int.from_bytes(ipaddress.IPv4Address(address).packed, sys.byteorder)
    return f"{value:08X}"


def _v6(address: str) -> str:
    return ipaddress.IPv6Address(address).packed.hex()


def _route(iface: str, destination: str, gateway: str, flags: int, mask: str) -> str:
    fields = [iface, _v4(destination), _v4(gateway), f"{flags:04X}", "0", "0", "0", _v4(mask)]
    return "\t".join([*fields, "0", "0", "0"])


def _route6(destination: str, prefix: int, next_hop: str, flags: int, device: str) -> str:
    zero = "0" * 32
    fields = [_v6(destination), f"{prefix:02x}", zero, "00", _v6(next_hop)]
    return " ".join([*fields, "00000100", "00000001", "00000000", f"{flags:08x}", device])


@pytest.fixture
def routes(tmp_path: Path) -> tuple[Path, Path]:
    """A host on a public LAN (11.89.0.0/24, 2a01:4f8:1:2::/64) behind 11.89.0.1, with a
    docker bridge, a VPN that takes half the internet through a link route, a blackhole
    and the kernel's local and multicast routes."""
    v4 = tmp_path / "route"
    v4.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        + "\n".join(
            [
                _route("eth0", "0.0.0.0", "11.89.0.1", 0x3, "0.0.0.0"),  # default via
                _route("eth0", "11.89.0.0", "0.0.0.0", 0x1, "255.255.255.0"),  # the LAN
                _route("docker0", "172.17.0.0", "0.0.0.0", 0x1, "255.255.0.0"),  # private
                _route("tun0", "0.0.0.0", "0.0.0.0", 0x1, "128.0.0.0"),  # /1: not a link
                _route("eth0", "11.90.0.0", "0.0.0.0", 0x201, "255.255.0.0"),  # reject
                _route("eth0", "11.91.0.0", "11.89.0.9", 0x3, "255.255.0.0"),  # routed
            ]
        )
        + "\n"
    )
    v6 = tmp_path / "ipv6_route"
    v6.write_text(
        "\n".join(
            [
                _route6("2a01:4f8:1:2::", 64, "::", 0x1, "eth0"),  # the LAN
                _route6("fe80::", 64, "::", 0x1, "eth0"),
                _route6("::", 0, "2a01:4f8:1:2::1", 0x3, "eth0"),  # default via
                _route6("2a01:4f8:1:2::5", 128, "::", 0x80200001, "eth0"),  # its own (local)
                _route6("::1", 128, "::", 0x80200001, "lo"),
                _route6("ff00::", 8, "::", 0x1, "eth0"),
                _route6("::", 0, "::", 0x00200200, "lo"),  # the unreachable default
            ]
        )
        + "\n"
    )
    return v4, v6


def test_the_host_networks_are_its_links_and_gateways_outside_the_blocked_ranges(
    routes: tuple[Path, Path],
) -> None:
    found = network.connected_networks(*routes)
    # 11.89.0.1 (the gateway) is inside the LAN; 11.89.0.9, the routed network's
    # gateway, too. Not: the docker bridge (private, blocked anyway), a /1 link route, a
    # reject route, a routed network, local and multicast routes, link-local.
    assert found == ["11.89.0.0/24", "2a01:4f8:1:2::/64"]


def test_a_host_without_those_tables_has_no_networks_of_its_own(tmp_path: Path) -> None:
    assert network.connected_networks(tmp_path / "none", tmp_path / "none6") == []


def test_the_fence_rejects_the_host_networks_after_the_resolvers_it_accepts() -> None:
    fence = network.ruleset(1000, 10, ["11.89.0.53"], ["11.89.0.0/24", "2a01:4f8:1:2::/64"])
    rules = [line.strip() for line in fence.splitlines()]
    resolver = rules.index("ip daddr 11.89.0.53 meta l4proto { tcp, udp } th dport 53 accept")
    assert rules.index("ip daddr { 11.89.0.0/24 } reject") > resolver
    assert "ip6 daddr { 2a01:4f8:1:2::/64 } reject" in rules
    assert network.ruleset(1000, 10, []).count("reject") == 4  # none: no rule of their own
