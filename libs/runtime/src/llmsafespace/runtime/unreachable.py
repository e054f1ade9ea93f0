"""The networks no sandbox reaches, whatever its egress rules say, on every driver.

Loopback, RFC 1918, link-local (so the cloud metadata address 169.254.169.254), CGNAT,
"this network", benchmarking, multicast and reserved ranges, and their IPv6 counterparts
(with the IPv4-mapped and NAT64 prefixes, which would otherwise lead back to the IPv4
ones). Not the documentation networks (TEST-NET-1/2/3, 2001:db8::/32): never on the
internet, yet some hosts' networks use them (the machine these tests run on resolves the
package registries to 203.0.113.80, behind its gateway), and where one is the host's own
LAN the local fence rejects it as every network on the host's links
(``network.connected_networks``). The local driver rejects these in its nftables fence;
the Kubernetes driver cuts them out of every ``ipBlock`` of a sandbox's NetworkPolicy.
The list is the contracts' (``UNREACHABLE_V4``, ``UNREACHABLE_V6``), which refuse a rule
naming one of them.
"""

from __future__ import annotations

import ipaddress

from llmsafespace.contracts import UNREACHABLE_V4, UNREACHABLE_V6

_BLOCKED = tuple(ipaddress.ip_network(net) for net in (*UNREACHABLE_V4, *UNREACHABLE_V6))


def blocked(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether ``network`` lies inside one of the ranges above."""
    return any(
        network.version == bad.version and network.subnet_of(bad)  # type: ignore[arg-type]
        for bad in _BLOCKED
    )


def blocked_within(cidr: str) -> list[str]:
    """The blocked networks inside ``cidr``, the ``except`` list that keeps it public.

    A network that is itself blocked (or inside a blocked one) has nothing public left:
    ``ValueError``, so it can never become an allowed destination."""
    network = ipaddress.ip_network(cidr, strict=False)
    same = [bad for bad in _BLOCKED if bad.version == network.version]
    if blocked(network):
        raise ValueError(f"{cidr} is loopback, private, link-local or reserved")
    return [str(bad) for bad in same if bad.subnet_of(network)]  # type: ignore[arg-type]
