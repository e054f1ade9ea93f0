"""User-mode network for sandboxes that ask for it: slirp4netns plus an nftables fence.

A network sandbox still has its own network namespace. slirp4netns, started as the
sandbox's uid inside its cgroups, gives it a tap device (10.0.2.100, gateway 10.0.2.2,
DNS 10.0.2.3) and makes its connections with ordinary host sockets, so every packet it
sends on the sandbox's behalf carries the sandbox uid. ``--disable-host-loopback`` stops
10.0.2.2 from meaning the host's 127.0.0.1; the nftables table below rejects, for the
whole sandbox uid range, the host's own addresses, loopback, RFC 1918, link-local (and
so the metadata address 169.254.169.254), CGNAT, benchmarking, multicast and reserved
ranges, the networks on the host's own links and its gateways (its LAN, whatever its
addresses: ``connected_networks``, read when the fence is loaded), and anything but TCP
(DNS to the host's resolvers excepted). Which TCP ports a sandbox may connect to is
enforced inside it by Landlock (ABI 4+).

A sandbox whose egress rules name hosts or networks also gets a table of its own
(``egress_ruleset``): only addresses in its sets, on their ports, are reachable, and its
DNS goes to its own filter (``dnsfilter.py``), which admits the addresses of allowed
names as it resolves them.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import select
import shlex
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from llmsafespace.contracts import UNREACHABLE_V4, UNREACHABLE_V6

from ..driver import NetworkRule
from ..errors import RuntimeUnavailable
from ..unreachable import blocked

SLIRP4NETNS = "/usr/bin/slirp4netns"
NFT = "/usr/sbin/nft"
TUN = Path("/dev/net/tun")
NS_GET_USERNS = (0xB7 << 8) | 1
READY_TIMEOUT = 5.0
LANDLOCK_NET_ABI = 4
RESOLVER_IP = "10.0.2.3"
ROUTES_V4, ROUTES_V6 = Path("/proc/net/route"), Path("/proc/net/ipv6_route")
RTF_UP, RTF_GATEWAY, RTF_REJECT, RTF_LOCAL = 0x1, 0x2, 0x200, 0x80000000
# A route without a gateway shorter than this is not a link's network but a tunnel's or a
# point-to-point default: fencing it would cut sandboxes off the internet.
MIN_LINK_PREFIX = {4: 8, 6: 16}


def missing(landlock_abi: int) -> list[str]:
    """What this host lacks for network sandboxes (each with how to get it); [] if nothing."""
    lacking = []
    if not os.access(SLIRP4NETNS, os.X_OK):
        lacking.append("slirp4netns (Debian package slirp4netns)")
    if not os.access(NFT, os.X_OK):
        lacking.append("nft (Debian package nftables)")
    try:
        mode = TUN.stat().st_mode
        if mode & 0o006 != 0o006 or not stat.S_ISCHR(mode):
            lacking.append(f"{TUN} usable by sandbox uids (chmod 0666 {TUN})")
    except OSError:
        lacking.append(f"{TUN} (the tun kernel module)")
    if landlock_abi < LANDLOCK_NET_ABI:
        lacking.append(f"Landlock ABI >= {LANDLOCK_NET_ABI} for TCP port rules (kernel 6.7+)")
    return lacking


def resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The host's DNS servers, which slirp4netns forwards the sandbox's queries to."""
    found = []
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                found.append(str(ipaddress.ip_address(fields[1].split("%")[0])))
            except ValueError:
                continue
    return found


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def connected_networks(v4: Path = ROUTES_V4, v6: Path = ROUTES_V6) -> list[str]:
    """The networks on the host's own links (its routes without a gateway) and its
    gateways, from the kernel's routing tables, less what ``unreachable`` blocks anyway:
    what the host reaches directly, its LAN, whose addresses may well be public."""
    found: list[Network] = []

    def link(destination: Network, flags: int, device: str) -> None:
        if (
            flags & RTF_UP
            and not flags & (RTF_GATEWAY | RTF_REJECT | RTF_LOCAL)
            and device != "lo"
            and destination.prefixlen >= MIN_LINK_PREFIX[destination.version]
        ):
            found.append(destination)

    for fields in _rows(v4):  # Iface Destination Gateway Flags ... Mask (hex, host order)
        if len(fields) < 8:
            continue
        flags, address = int(fields[3], 16), _ipv4(fields[1])
        link(ipaddress.IPv4Network(f"{address}/{_ipv4(fields[7])}"), flags, fields[0])
        if flags & RTF_GATEWAY:
            found.append(ipaddress.IPv4Network(_ipv4(fields[2])))
    for fields in _rows(v6, header=False):  # dest plen src plen next-hop ... flags device
        if len(fields) < 10:
            continue
        flags = int(fields[8], 16)
        destination = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        link(ipaddress.IPv6Network(f"{destination}/{int(fields[1], 16)}"), flags, fields[9])
        if flags & RTF_GATEWAY:
            found.append(ipaddress.IPv6Network(ipaddress.IPv6Address(bytes.fromhex(fields[4]))))
    kept = [network for network in found if not blocked(network)]
    collapsed = [
        *ipaddress.collapse_addresses(n for n in kept if isinstance(n, ipaddress.IPv4Network)),
        *ipaddress.collapse_addresses(n for n in kept if isinstance(n, ipaddress.IPv6Network)),
    ]
    return [str(network) for network in collapsed]


def _rows(table: Path, header: bool = True) -> list[list[str]]:
    try:
        lines = table.read_text().splitlines()
    except OSError:  # no IPv6 here, say
        return []
    return [line.split() for line in lines[1 if header else 0 :] if line.strip()]


def _ipv4(word: str) -> ipaddress.IPv4Address:
    """An address as /proc/net/route prints it: hex of the 32 bits in host byte order."""
    return ipaddress.IPv4Address(int(word, 16).to_bytes(4, sys.byteorder))


def table_name(uid_base: int, uid_count: int) -> str:
    return f"llmsafespace_{uid_base}_{uid_count}"


def ruleset(uid_base: int, uid_count: int, dns: list[str], connected: Sequence[str] = ()) -> str:
    """The nftables table for one sandbox uid range (replaces an earlier one atomically):
    ``connected`` are the host's own networks (``connected_networks``), rejected like the
    unreachable ranges whatever a sandbox's egress rules name."""
    name = table_name(uid_base, uid_count)
    uids = f"{uid_base}-{uid_base + uid_count - 1}"
    # Only packets from a socket owned by a sandbox uid enter the `sandbox` chain:
    # packets without a socket owner (the kernel's own RSTs and ICMP errors) must not
    # meet the rejects below, or every host connect to a closed port would hang.
    rules: list[str] = []
    for server in dns:
        family = "ip6" if ":" in server else "ip"
        rules.append(f"{family} daddr {server} meta l4proto {{ tcp, udp }} th dport 53 accept")
    # DNS a sandbox's own table redirected to its filter on the host's loopback.
    rules.append("meta l4proto udp ct original proto-dst 53 ct status dnat accept")
    rules += [
        "fib daddr type { local, broadcast, multicast, anycast } reject",
        f"ip daddr {{ {', '.join(UNREACHABLE_V4)} }} reject",
        f"ip6 daddr {{ {', '.join(UNREACHABLE_V6)} }} reject",
    ]
    for family, version in (("ip", 4), ("ip6", 6)):
        own = [net for net in connected if ipaddress.ip_network(net).version == version]
        if own:  # a set of its own: a host network may hold a blocked range, or lie in one
            rules.append(f"{family} daddr {{ {', '.join(own)} }} reject")
    rules.append("meta l4proto != tcp reject")
    body = "\n".join(f"    {rule}" for rule in rules)
    return (
        f"table inet {name} {{}}\ndelete table inet {name}\n"
        f"table inet {name} {{\n"
        f"  chain sandbox {{\n{body}\n  }}\n"
        f"  chain egress {{\n"
        f"    type filter hook output priority 0; policy accept;\n"
        f"    meta skuid {uids} jump sandbox\n  }}\n}}\n"
    )


def _nft(script: str, what: str) -> None:
    done = subprocess.run(
        [NFT, "-f", "-"], input=script, capture_output=True, text=True, env={}, check=False
    )
    if done.returncode != 0:
        raise RuntimeUnavailable(f"cannot load {what}: {done.stderr.strip()}")


def install_fence(uid_base: int, uid_count: int) -> None:
    """Load the nftables table for the sandbox uid range; idempotent, atomic. The host's
    own networks are those of its routes now (at driver start)."""
    fence = ruleset(uid_base, uid_count, resolvers(), connected_networks())
    _nft(fence, "the nftables sandbox fence")


def restricted(rules: Sequence[NetworkRule]) -> bool:
    """True when the rules name destinations (then the sandbox gets a table of its own)."""
    return any(rule.hosts or rule.cidrs for rule in rules)


def egress_table(uid: int) -> str:
    return f"llmsafespace_sb_{uid}"


def egress_ruleset(uid: int, dns_port: int, rules: Sequence[NetworkRule]) -> str:
    """One sandbox's table: its DNS to its filter on ``dns_port``, its TCP connections to
    the addresses in sets a4/a6 only (a rule's networks, or any address for a rule that
    names neither hosts nor networks; the filter adds resolved names)."""
    name = egress_table(uid)
    static: dict[str, list[str]] = {"a4": [], "a6": []}
    for rule in rules:
        networks = list(rule.cidrs) or ([] if rule.hosts else ["0.0.0.0/0", "::/0"])
        for network in networks:
            family = "a6" if ":" in network else "a4"
            static[family] += [f"{network} . {port}" for port in rule.ports]
    sets = ""
    for family, kind in (("a4", "ipv4_addr"), ("a6", "ipv6_addr")):
        elements = f" elements = {{ {', '.join(static[family])} }};" if static[family] else ""
        sets += (
            f"  set {family} {{ type {kind} . inet_service; flags interval, timeout;{elements} }}\n"
        )
    return (
        f"table inet {name} {{}}\ndelete table inet {name}\n"
        f"table inet {name} {{\n{sets}"
        f"  chain dns {{\n    type nat hook output priority -100; policy accept;\n"
        f"    meta skuid {uid} meta l4proto udp th dport 53 redirect to :{dns_port}\n  }}\n"
        f"  chain egress {{\n    type filter hook output priority 1; policy accept;\n"
        f"    meta skuid != {uid} return\n"
        f"    meta l4proto udp ct original proto-dst 53 ct status dnat return\n"
        f"    ip daddr . tcp dport @a4 return\n"
        f"    ip6 daddr . tcp dport @a6 return\n"
        f"    reject\n  }}\n}}\n"
    )


def install_egress(uid: int, dns_port: int, rules: Sequence[NetworkRule]) -> None:
    _nft(egress_ruleset(uid, dns_port, rules), f"the egress rules of sandbox uid {uid}")


def remove_egress(uid: int) -> None:
    """Delete a sandbox's own table, if it has one."""
    subprocess.run(
        [NFT, "delete", "table", "inet", egress_table(uid)],
        capture_output=True,
        env={},
        check=False,
    )


def egress_uids() -> set[int]:
    """The uids that have a table of their own now."""
    done = subprocess.run(
        [NFT, "list", "tables"], capture_output=True, text=True, env={}, check=False
    )
    prefix = egress_table(0).removesuffix("0")
    return {
        int(name.removeprefix(prefix))
        for line in done.stdout.splitlines()
        if (name := line.split()[-1]).startswith(prefix) and name.removeprefix(prefix).isdigit()
    }


# Joins the sandbox's cgroups, then runs the filter as root with CAP_NET_ADMIN only, in
# the background (not our child: it outlives us, like the sandbox), and prints its pid.
_FILTER = """for f in {procs}; do echo $$ > "$f"; done
setpriv --bounding-set=-all,+net_admin --inh-caps=-all --no-new-privs -- "$@" </dev/null >&2 &
echo $!"""


def start_dns_filter(
    config: Path, rules: Sequence[NetworkRule], upstream: Sequence[str], uid: int,
    cgroup_procs: Sequence[Path], log: Path,
) -> tuple[int, int]:  # fmt: skip
    """Start a sandbox's DNS filter; (its pid, the loopback UDP port it serves on)."""
    settings = {
        "table": egress_table(uid),
        "rules": [{"ports": rule.ports, "hosts": rule.hosts} for rule in rules],
        "upstream": list(upstream),
    }
    config.write_text(json.dumps(settings))
    script = _FILTER.format(procs=" ".join(shlex.quote(str(p)) for p in cgroup_procs))
    ready_read, ready_write = os.pipe()
    try:
        argv = [sys.executable, "-I", str(Path(__file__).with_name("dnsfilter.py"))]
        with log.open("ab") as stderr:
            done = subprocess.run(
                ["/bin/sh", "-c", script, "sh", *argv, str(config), str(ready_write)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={},
                pass_fds=(ready_write,),
                start_new_session=True,
                check=True,
                cwd="/",
            )
        os.close(ready_write)
        ready_write = -1
        pid = int(done.stdout)
        ready, _, _ = select.select([ready_read], [], [], READY_TIMEOUT)
        port = os.read(ready_read, 16).decode().strip() if ready else ""
    finally:
        os.close(ready_read)
        if ready_write >= 0:
            os.close(ready_write)
    if not port.isdigit():
        raise RuntimeUnavailable("the sandbox's DNS filter did not start (see agent.log)")
    return pid, int(port)


def fence_loaded(uid_base: int, uid_count: int) -> bool:
    """True if the table is in the kernel now."""
    done = subprocess.run(
        [NFT, "list", "table", "inet", table_name(uid_base, uid_count)],
        capture_output=True,
        env={},
        check=False,
    )
    return done.returncode == 0


def read_child_pid(info_fd: int) -> int:
    """The sandbox's first process (in its namespaces), from bwrap's ``--info-fd`` JSON."""
    data = b""
    deadline_ready, _, _ = select.select([info_fd], [], [], READY_TIMEOUT)
    if not deadline_ready:
        raise RuntimeUnavailable("bwrap did not report its child within 5 s")
    while chunk := os.read(info_fd, 4096):
        data += chunk
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError) as exc:
        raise RuntimeUnavailable(f"bwrap reported no child pid: {data[:200]!r}") from exc


def namespace_fds(child_pid: int) -> tuple[int, int]:
    """(net namespace fd, fd of the user namespace that owns it) of the sandbox.

    bwrap moves its processes into a nested user namespace (``--disable-userns``); the
    network namespace belongs to the outer one, which only this ioctl still reaches.
    """
    net = os.open(f"/proc/{child_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        owner = fcntl.ioctl(net, NS_GET_USERNS)
    except OSError:
        os.close(net)
        raise
    return net, owner


def slirp_command(net_fd: int, user_fd: int, ready_fd: int) -> list[str]:
    """slirp4netns joining the sandbox's namespaces through inherited fds."""
    return [
        SLIRP4NETNS,
        "--configure", "--mtu=65520", "--disable-host-loopback",
        "--enable-seccomp",  # --enable-sandbox needs privileges it does not have here
        f"--ready-fd={ready_fd}",
        "--netns-type=path", f"--userns-path=/proc/self/fd/{user_fd}",
        f"/proc/self/fd/{net_fd}", "tap0",
    ]  # fmt: skip


def wait_ready(ready_fd: int) -> None:
    """Block until slirp4netns writes '1' on its ready fd; fail clearly otherwise."""
    ready, _, _ = select.select([ready_fd], [], [], READY_TIMEOUT)
    if not ready or os.read(ready_fd, 1) != b"1":
        raise RuntimeUnavailable("slirp4netns did not configure the sandbox network (see log)")
