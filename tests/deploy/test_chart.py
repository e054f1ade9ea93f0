"""The Helm chart lints, renders and validates (strictly) for default and production values."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

CHART = ROOT / "charts" / "llmsafespace"
PRODUCTION = CHART / "ci" / "production-values.yaml"
REQUIRED = ["--set", "postgresql.url=postgresql://u:p@db:5432/x", "--set", "jwt.secret=s3cret"]
VALUES = {"default": REQUIRED, "production": ["-f", str(PRODUCTION)]}
SERVICES = ("api-gateway", "sandbox-svc", "warmpool-svc", "exec-svc", "audit-svc")


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)


def _render(helm: Path, values: list[str]) -> str:
    result = _helm(helm, "template", "rel", str(CHART), "--namespace", "llm", *values)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _objects(rendered: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_chart_lints(helm: Path, values: list[str]) -> None:
    result = _helm(helm, "lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


def test_bad_values_fail_lint_by_schema(helm: Path) -> None:
    result = _helm(helm, "lint", str(CHART), *REQUIRED, "--set", "services.exec.replicas=-1")
    assert result.returncode != 0
    assert "replicas" in result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_rendered_manifests_pass_strict_validation(
    helm: Path, kubernetes_validate: Path, values: list[str], tmp_path: Path
) -> None:
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(_render(helm, values))
    result = subprocess.run(
        [str(kubernetes_validate), "--strict", "--quiet", str(manifests)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_service_scales_on_its_own(helm: Path) -> None:
    objects = _objects(_render(helm, VALUES["production"]))
    for service in SERVICES:
        name = f"rel-llmsafespace-{service}"
        deployment = objects[("Deployment", name)]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert ("PodDisruptionBudget", name) in objects
    assert ("HorizontalPodAutoscaler", "rel-llmsafespace-exec-svc") in objects
    assert ("HorizontalPodAutoscaler", "rel-llmsafespace-warmpool-svc") not in objects


def test_only_sandbox_and_warmpool_may_manage_sandboxes(helm: Path) -> None:
    objects = _objects(_render(helm, VALUES["default"]))
    roles = [doc for (kind, _), doc in objects.items() if kind in ("Role", "ClusterRole")]
    (role,) = roles
    assert role["metadata"]["namespace"] == "llmsafespace-sandboxes"
    (binding,) = [doc for (kind, _), doc in objects.items() if kind.endswith("RoleBinding")]
    subjects = {subject["name"] for subject in binding["subjects"]}
    assert subjects == {"rel-llmsafespace-sandbox-svc", "rel-llmsafespace-warmpool-svc"}
    gateway = objects[("Deployment", "rel-llmsafespace-api-gateway")]["spec"]["template"]
    assert gateway["spec"]["automountServiceAccountToken"] is False
    sandbox = objects[("Deployment", "rel-llmsafespace-sandbox-svc")]["spec"]["template"]
    env = {item["name"]: item.get("value") for item in sandbox["spec"]["containers"][0]["env"]}
    assert env["RUNTIME_DRIVER"] == "kubernetes"
    assert env["KUBERNETES_NAMESPACE"] == "llmsafespace-sandboxes"


def test_ingress_keeps_websockets_open(helm: Path) -> None:
    objects = _objects(_render(helm, VALUES["production"]))
    ingress = objects[("Ingress", "rel-llmsafespace")]
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in annotations
