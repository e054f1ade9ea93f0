"""`network_access` on create (sync, async and the CLI's `--egress-*`) reaches the server:
names outside the allowed hosts do not resolve inside the sandbox, and rules the API
refuses come back as `ValidationError`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk import (
    AsyncSandbox,
    EgressRule,
    LLMSafeSpaceError,
    NetworkAccess,
    Sandbox,
    ValidationError,
)

pytestmark = [
    pytest.mark.stack,
    pytest.mark.local_driver("egress by host name is refused on Kubernetes"),
]
CLI = str(Path(sys.executable).with_name("llmsafespace"))
LOOKUP = """
import socket
for name in ("example.org", "pypi.org.evil.example"):
    try:
        socket.getaddrinfo(name, 443)
        print(name, "resolved")
    except socket.gaierror:
        print(name, "unresolved")
"""
UNRESOLVED = "example.org unresolved\npypi.org.evil.example unresolved\n"
PYPI_ONLY = {"enabled": True, "egress": [{"ports": [443], "hosts": ["pypi.org"]}]}


def _skip_without_network_mode(exc: LLMSafeSpaceError) -> None:
    if exc.status == 503:
        pytest.skip(f"host feature: network mode unavailable here: {exc}")


def test_the_sync_client_limits_egress_to_the_hosts_it_names(client_env) -> None:
    try:
        sandbox = Sandbox(network_access=PYPI_ONLY)
    except LLMSafeSpaceError as exc:
        _skip_without_network_mode(exc)
        raise
    with sandbox:
        assert not sandbox.info_cached.from_warm_pool  # a network sandbox starts cold
        assert sandbox.run_code(LOOKUP).stdout == UNRESOLVED


async def test_the_async_client_takes_the_contract_model_too(client_env) -> None:
    rule = EgressRule(ports=[443], hosts=["pypi.org"], cidrs=["151.101.0.0/16"])
    try:
        sandbox = await AsyncSandbox.create(
            network_access=NetworkAccess(enabled=True, egress=[rule])
        )
    except LLMSafeSpaceError as exc:
        _skip_without_network_mode(exc)
        raise
    async with sandbox:
        assert (await sandbox.run_code(LOOKUP)).stdout == UNRESOLVED


async def test_egress_without_enabled_is_refused_naming_the_field(client_env) -> None:
    with pytest.raises(ValidationError) as refused:
        await AsyncSandbox.create(network_access={"egress": [{"ports": [443]}]})
    assert "networkAccess" in json.dumps(refused.value.details)


def test_the_cli_creates_with_egress_options(client_env) -> None:
    env = {**os.environ, **client_env}
    base = [CLI, "sandbox", "create", "--egress-host", "pypi.org"]
    portless = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert portless.returncode == 2
    assert "--egress-port" in portless.stderr
    created = subprocess.run(
        [*base, "--egress-port", "443"], env=env, capture_output=True, text=True, timeout=120
    )
    if created.returncode != 0 and "unavailable" in created.stderr:
        pytest.skip(f"host feature: network mode unavailable here: {created.stderr}")
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    with Sandbox.connect(sandbox_id) as sandbox:
        assert sandbox.run_code(LOOKUP).stdout == UNRESOLVED
