"""User-mode network for sandboxes that ask for it: slirp4netns plus an nftables fence.

A network sandbox still has its own network namespace. slirp4netns, started as the
sandbox's uid inside its cgroups, gives it a tap device (10.0.2.100, gateway 10.0.2.2,
DNS 10.0.2.3) and makes its connections with ordinary host sockets, so every packet it
sends on the sandbox's behalf carries the sandbox uid. ``--disable-host-loopback`` stops
10.0.2.2 from meaning the host's 127.0.0.1; the nftables table below rejects, for the
whole sandbox uid range, the host's own addresses, loopback, RFC 1918, link-local (and
so the metadata address 169.254.169.254), CGNAT, multicast and reserved ranges, and
anything but TCP (DNS to the host's resolvers excepted). Which TCP ports a sandbox may
connect to is enforced inside it by Landlock (ABI 4+).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import select
import stat
import subprocess
from pathlib import Path

from ..errors import RuntimeUnavailable

SLIRP4NETNS = "/usr/bin/slirp4netns"
NFT = "/usr/sbin/nft"
TUN = Path("/dev/net/tun")
NS_GET_USERNS = (0xB7 << 8) | 1
READY_TIMEOUT = 5.0
LANDLOCK_NET_ABI = 4
RESOLVER_IP = "10.0.2.3"

BLOCKED_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",
)  # fmt: skip
BLOCKED_V6 = ("::/127", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8")


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


def table_name(uid_base: int, uid_count: int) -> str:
    return f"llmsafespace_{uid_base}_{uid_count}"


def ruleset(uid_base: int, uid_count: int, dns: list[str]) -> str:
    """The nftables table for one sandbox uid range (replaces an earlier one atomically)."""
    name = table_name(uid_base, uid_count)
    uids = f"{uid_base}-{uid_base + uid_count - 1}"
    # Only packets from a socket owned by a sandbox uid enter the `sandbox` chain:
    # packets without a socket owner (the kernel's own RSTs and ICMP errors) must not
    # meet the rejects below, or every host connect to a closed port would hang.
    rules: list[str] = []
    for server in dns:
        family = "ip6" if ":" in server else "ip"
        rules.append(f"{family} daddr {server} meta l4proto {{ tcp, udp }} th dport 53 accept")
    rules += [
        "fib daddr type { local, broadcast, multicast, anycast } reject",
        f"ip daddr {{ {', '.join(BLOCKED_V4)} }} reject",
        f"ip6 daddr {{ {', '.join(BLOCKED_V6)} }} reject",
        "meta l4proto != tcp reject",
    ]
    body = "\n".join(f"    {rule}" for rule in rules)
    return (
        f"table inet {name} {{}}\ndelete table inet {name}\n"
        f"table inet {name} {{\n"
        f"  chain sandbox {{\n{body}\n  }}\n"
        f"  chain egress {{\n"
        f"    type filter hook output priority 0; policy accept;\n"
        f"    meta skuid {uids} jump sandbox\n  }}\n}}\n"
    )


def install_fence(uid_base: int, uid_count: int) -> None:
    """Load the nftables table for the sandbox uid range; idempotent, atomic."""
    script = ruleset(uid_base, uid_count, resolvers())
    done = subprocess.run(
        [NFT, "-f", "-"], input=script, capture_output=True, text=True, env={}, check=False
    )
    if done.returncode != 0:
        raise RuntimeUnavailable(f"cannot load the nftables sandbox fence: {done.stderr.strip()}")


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
