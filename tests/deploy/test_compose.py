"""docker-compose.yml validates with the real compose binary (``config -q``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from .conftest import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"


def test_compose_config_is_valid(compose: Path) -> None:
    env = {**os.environ, "GATEWAY_JWT_SECRET": "test-secret"}
    result = subprocess.run(
        [str(compose), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_services_wait_for_healthy_dependencies() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert {"nats", "postgres", "redis"} <= set(services)
    assert "-js" in services["nats"]["command"]
    for name in ("nats", "postgres", "redis"):
        assert "healthcheck" in services[name]
    for name in ("api-gateway", "sandbox-svc", "warmpool-svc", "exec-svc", "audit-svc"):
        assert (ROOT / services[name]["build"]["dockerfile"]).exists()


def test_app_services_start_after_the_infrastructure_is_healthy() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in ("api-gateway", "sandbox-svc", "warmpool-svc", "exec-svc", "audit-svc"):
        depends = services[name]["depends_on"]
        for infra in ("nats", "postgres", "redis"):
            assert depends[infra] == {"condition": "service_healthy"}, name


def test_services_on_the_local_driver_have_its_tools_in_their_image() -> None:
    """Compose runs sandboxes with the local driver inside the service containers: their
    images must bring bubblewrap and the rest (the python:*-slim base has none of it)."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    local = [
        name
        for name, service in services.items()
        if (service.get("environment") or {}).get("RUNTIME_DRIVER") == "local"
    ]
    assert set(local) == {"sandbox-svc", "warmpool-svc"}
    for name in local:
        dockerfile = (ROOT / services[name]["build"]["dockerfile"]).read_text()
        final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
        for package in ("bubblewrap", "libseccomp2", "slirp4netns", "nftables", "python3.11"):
            assert package in final_stage, (name, package)
        assert services[name].get("privileged") is True, name
