"""Network mode: a sandbox reaches an outside host on an allowed port, and nothing else.

The "internet" is a network namespace joined to the host by a veth pair: it answers
HTTP on ports 8080 and 8081 on public addresses the host routes to it (11.99.0.2-4, via
its private 10.99.0.2), on its private address and on 11.98.0.2, a public address on a
network of the host's own link (the host is 11.98.0.1 there): a LAN neighbour. The host
also serves on 0.0.0.0:8080, reachable only through its own addresses. Its "DNS" is a server on the
host's loopback that knows a few names under `.test`; sandboxes with egress hosts reach
it through their filter.
"""

from __future__ import annotations

import ast
import asyncio
import ipaddress
import json
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.runtime import (
    AgentClient,
    Handle,
    LocalConfig,
    NetworkRule,
    RuntimeSpec,
    UnsupportedSpec,
)
from llmsafespace.runtime.errors import RuntimeUnavailable
from llmsafespace.runtime.local import LocalDriver, network
from llmsafespace.runtime.local.dnsfilter import HEADER, NXDOMAIN, TYPE_A, question
from llmsafespace.runtime.local.layout import Layout

NETNS, HOST_IF, PEER_IF = "llmss-test-inet", "llmss-th", "llmss-tn"
PUBLIC, PRIVATE = "11.99.0.2", "10.99.0.2"
WILD, CIDR = "11.99.0.3", "11.99.0.4"
HOST_LAN, NEIGHBOUR = "11.98.0.1", "11.98.0.2"  # a public network on the host's own link
UPSTREAM = "127.0.83.1"  # the test's resolver (any 127/8 address is the host's)
NAMES = {"allowed.test": PUBLIC, "denied.test": PUBLIC, "a.wild.test": WILD}
ALLOWED, DISALLOWED = 8080, 8081
SERVER = (
    "import http.server, sys, threading\n"
    "for port in sys.argv[1:]:\n"
    "    s = http.server.ThreadingHTTPServer(('0.0.0.0', int(port)), "
    "http.server.SimpleHTTPRequestHandler)\n"
    "    threading.Thread(target=s.serve_forever, daemon=True).start()\n"
    "threading.Event().wait()\n"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _host_address() -> str | None:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127.") and HOST_IF not in line:
            return address
    return None


@pytest.fixture(scope="module")
def internet() -> Iterator[None]:
    if shutil.which("ip") is None:
        pytest.skip("host feature: iproute2 is missing")
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
    _ip("netns", "add", NETNS)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        _ip("link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
        _ip("link", "set", PEER_IF, "netns", NETNS)
        _ip("addr", "add", "10.99.0.1/24", "dev", HOST_IF)
        _ip("addr", "add", f"{HOST_LAN}/24", "dev", HOST_IF)
        _ip("link", "set", HOST_IF, "up")
        for command in (
            ["addr", "add", f"{PRIVATE}/24", "dev", PEER_IF],
            ["addr", "add", f"{NEIGHBOUR}/24", "dev", PEER_IF],
            *(["addr", "add", f"{ip}/32", "dev", PEER_IF] for ip in (PUBLIC, WILD, CIDR)),
            ["link", "set", PEER_IF, "up"],
            ["link", "set", "lo", "up"],
        ):
            _ip("-n", NETNS, *command)
        _ip("route", "add", "11.99.0.0/24", "via", PRIVATE, "dev", HOST_IF)  # via a router
        ports = [str(ALLOWED), str(DISALLOWED)]
        servers.append(
            subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-c", SERVER, *ports])
        )
        servers.append(subprocess.Popen([sys.executable, "-c", SERVER, str(ALLOWED)]))
        time.sleep(0.5)
        yield
    finally:
        for server in servers:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


PROBE = """
import json, socket
out = {}
for host, port in %r:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            out[f"{host}:{port}"] = "ok" if s.recv(12).startswith(b"HTTP/1.0") else "no"
    except OSError as exc:
        out[f"{host}:{port}"] = type(exc).__name__
json.dumps(out)
"""


async def _probe(handle: Handle, targets: list[tuple[str, int]]) -> dict[str, str]:
    client = await AgentClient.connect(handle.endpoint, handle.token)
    try:
        result = await client.run_code(PROBE % (targets,), timeout=60)
    finally:
        await client.close()
    assert result.result is not None, result
    found: dict[str, str] = json.loads(ast.literal_eval(result.result))
    return found


@pytest.fixture(scope="module")
async def networked(driver: LocalDriver, internet: None) -> AsyncIterator[Handle]:
    if driver.protections()["network"] == "none":
        missing = driver.protections()["networkMissing"]
        pytest.skip(f"host feature: network mode unavailable: {missing}")
    spec = RuntimeSpec(runtime_id="net", network_ports=(ALLOWED, 443))
    handle = await driver.create(spec)
    yield handle
    await driver.destroy("net")


async def test_a_default_sandbox_cannot_connect_anywhere(
    driver: LocalDriver, internet: None
) -> None:
    handle = await driver.create(RuntimeSpec(runtime_id="nonet"))
    try:
        found = await _probe(handle, [(PUBLIC, ALLOWED), ("10.0.2.2", ALLOWED)])
        assert "ok" not in found.values(), found
    finally:
        await driver.destroy("nonet")


async def test_a_network_sandbox_reaches_the_allowed_host_and_port_only(
    networked: Handle,
) -> None:
    host = _host_address()
    targets = [
        (PUBLIC, ALLOWED),
        (PUBLIC, DISALLOWED),  # Landlock: port not allowed
        (PRIVATE, ALLOWED),  # nftables: RFC 1918
        ("10.0.2.2", ALLOWED),  # slirp4netns: the host's loopback
        (HOST_LAN, ALLOWED),  # nftables: the host's own address (0.0.0.0 server)
        ("169.254.169.254", 443),  # nftables: metadata
    ]
    if host is not None:
        targets.append((host, ALLOWED))
    found = await _probe(networked, targets)
    assert found.pop(f"{PUBLIC}:{ALLOWED}") == "ok", found
    assert found[f"{PUBLIC}:{DISALLOWED}"] == "PermissionError", found
    assert "ok" not in found.values(), found


async def test_the_hosts_own_networks_are_never_reached(
    config: LocalConfig, internet: None
) -> None:
    """The QA host's gateway, 192.0.2.1 (TEST-NET-1), answered a sandbox's connect. A
    driver started where the host has a public network on its link (11.98.0.0/24) fences
    it like a private one."""
    driver = LocalDriver(config)  # started with the "internet" in place: its fence knows it
    if driver.protections()["network"] == "none":
        missing = driver.protections()["networkMissing"]
        pytest.skip(f"host feature: network mode unavailable: {missing}")
    assert "11.98.0.0/24" in network.connected_networks()
    handle = await driver.create(RuntimeSpec(runtime_id="lan", network_ports=(ALLOWED,)))
    try:
        found = await _probe(handle, [(PUBLIC, ALLOWED), (NEIGHBOUR, ALLOWED)])
    finally:
        await driver.destroy("lan")
    assert found.pop(f"{PUBLIC}:{ALLOWED}") == "ok", found
    assert "ok" not in found.values(), found


def test_the_network_helper_runs_as_the_sandbox_uid_inside_its_cgroup(
    networked: Handle, driver: LocalDriver
) -> None:
    out = subprocess.run(
        ["ps", "-C", "slirp4netns", "-o", "uid=,pid="], capture_output=True, text=True
    ).stdout.split()
    assert out, "slirp4netns is running"
    uid, pid = int(out[0]), out[1]
    assert uid >= 200000
    with open(f"/proc/{pid}/cgroup") as file:
        cgroups = file.read()
    assert f"sb-{uid}" in cgroups


async def test_create_refuses_what_the_host_cannot_isolate(driver: LocalDriver) -> None:
    if not driver.protections()["gvisor"]:
        with pytest.raises(UnsupportedSpec, match=r"gVisor.*apt-get install runsc"):
            await driver.create(RuntimeSpec(runtime_id="high", security_level="high"))
    if driver.protections()["network"] == "none":
        with pytest.raises(RuntimeUnavailable, match="networkAccess is unavailable"):
            await driver.create(RuntimeSpec(runtime_id="nonetwork", network_ports=(443,)))


def test_the_fence_leaves_the_hosts_own_connections_alone(driver: LocalDriver) -> None:
    """Kernel-made replies have no socket owner: a host connect to a closed local port
    must still be refused at once, not time out behind the sandbox rules."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with socket.socket() as client:
        client.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", closed_port))


def _running(pid: int) -> bool:
    try:
        return Path("/proc", str(pid), "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _answer(query: bytes) -> bytes:
    """What the test's resolver says: an A record for a known name, else NXDOMAIN."""
    asked = question(query)
    known = NAMES.get(asked.name)
    flags = 0x8180 if known else 0x8180 | NXDOMAIN
    header = HEADER.pack(asked.ident, flags, 1, 1 if known else 0, 0, 0)
    reply = header + query[HEADER.size : asked.end]
    if known:
        address = ipaddress.ip_address(known).packed
        reply += struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 30, len(address)) + address
    return reply


@pytest.fixture(scope="module")
def resolver() -> Iterator[None]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((UPSTREAM, 53))
        server.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    query, peer = server.recvfrom(512)
                except TimeoutError:
                    continue
                server.sendto(_answer(query), peer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join()


EGRESS = (
    NetworkRule(ports=(ALLOWED,), hosts=("allowed.test", "*.wild.test")),
    NetworkRule(ports=(ALLOWED,), cidrs=(f"{CIDR}/32",)),
)

NAMED_PROBE = """
import json, socket
out = {}
for host, port in %r:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            out[f"{host}:{port}"] = "ok" if s.recv(12).startswith(b"HTTP/1.0") else "no"
    except socket.gaierror:
        out[f"{host}:{port}"] = "unresolved"
    except OSError as exc:
        out[f"{host}:{port}"] = type(exc).__name__
json.dumps(out)
"""


async def test_egress_by_host_name_admits_what_the_allowed_names_resolve_to(
    config: LocalConfig, internet: None, resolver: None
) -> None:
    driver = LocalDriver(config.model_copy(update={"dns_upstream": (UPSTREAM,)}))
    if driver.protections()["network"] == "none":
        pytest.skip(
            f"host feature: network mode unavailable: {driver.protections()['networkMissing']}"
        )
    spec = RuntimeSpec(runtime_id="egress", network_ports=(ALLOWED,), network_rules=EGRESS)
    handle = await driver.create(spec)
    try:
        targets = [
            (PUBLIC, ALLOWED),  # no allowed name has resolved to it yet
            ("denied.test", ALLOWED),  # known upstream, not allowed: never resolves
            ("wild.test", ALLOWED),  # *.wild.test is the names below it only
            ("allowed.test", ALLOWED),
            ("a.wild.test", ALLOWED),
            (CIDR, ALLOWED),
            ("allowed.test", DISALLOWED),  # Landlock: port not allowed
        ]
        client = await AgentClient.connect(handle.endpoint, handle.token)
        try:
            result = await client.run_code(NAMED_PROBE % (targets,), timeout=60)
        finally:
            await client.close()
        assert result.result is not None, result
        found = json.loads(ast.literal_eval(result.result))
        assert found.pop(f"{PUBLIC}:{ALLOWED}") != "ok", found
        assert found == {
            f"denied.test:{ALLOWED}": "unresolved",
            f"wild.test:{ALLOWED}": "unresolved",
            f"allowed.test:{ALLOWED}": "ok",
            f"a.wild.test:{ALLOWED}": "ok",
            f"{CIDR}:{ALLOWED}": "ok",
            f"allowed.test:{DISALLOWED}": "PermissionError",
        }, found
        meta = Layout(config.runtime_dir).read_meta("egress")
        assert meta is not None
        uid, filter_pid = meta.uid, meta.dns_filter_pid
        assert uid in network.egress_uids()
    finally:
        await driver.destroy("egress")
    assert uid not in network.egress_uids()
    assert not await asyncio.to_thread(_running, filter_pid), "the DNS filter outlived it"
