"""The Helm chart lints, renders and validates (strictly) for default and production values."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmsafespace.contracts.bus_permissions import permissions
from llmsafespace.runtime import KubernetesSettings
from llmsafespace.sandbox_svc.chunks import LocalChunkStore, S3ChunkStore
from llmsafespace.sandbox_svc.settings import Settings as SandboxSettings
from llmsafespace.servicekit import ServiceSettings

from .conftest import ROOT

CHART = ROOT / "charts" / "llmsafespace"
PRODUCTION = CHART / "ci" / "production-values.yaml"
REQUIRED = [
    *("--set", "nats.url=nats://nats:4222"),
    *("--set", "postgresql.url=postgresql://u:p@db:5432/x"),
    *("--set", "redis.url=redis://:p@redis:6379/0"),
    *("--set", "jwt.secret=s3cret"),
]
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


def test_the_runtime_settings_the_chart_sets_are_the_ones_the_services_read(helm: Path) -> None:
    objects = _objects(_render(helm, VALUES["production"]))
    for service in ("sandbox-svc", "warmpool-svc"):
        deployment = objects[("Deployment", f"rel-llmsafespace-{service}")]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
        runtime = {name: value for name, value in env.items() if name.startswith("KUBERNETES_")}
        fields = {f"KUBERNETES_{field.upper()}" for field in KubernetesSettings.model_fields}
        assert set(runtime) <= fields, set(runtime) - fields
        # The service's own settings class parses them (JSON maps included), as in the Pod.
        read = subprocess.run(
            [
                sys.executable,
                "-c",
                "from llmsafespace.runtime import RuntimeSettings;"
                "print(RuntimeSettings().model_dump_json())",
            ],
            env={"PATH": os.environ["PATH"], "RUNTIME_DRIVER": env["RUNTIME_DRIVER"], **runtime},
            capture_output=True,
            text=True,
            check=False,
        )
        assert read.returncode == 0, read.stderr
        settings = json.loads(read.stdout)
        assert settings["driver"] == "kubernetes"
        kubernetes = settings["kubernetes"]
        assert kubernetes["namespace"] == "llmsafespace-sandboxes"
        assert kubernetes["images"]["python:3.11"].endswith("runtime-python:3.11")
        assert kubernetes["runtime_classes"] == {"high": "gvisor"}
        assert kubernetes["exec_pod_labels"]["app.kubernetes.io/component"] == "exec-svc"
        assert kubernetes["pool_pod_labels"]["app.kubernetes.io/component"] == "warmpool-svc"
        assert kubernetes["sandbox_pod_labels"]["app.kubernetes.io/component"] == "sandbox-svc"
        assert kubernetes["exec_namespace"] == "llm"
        assert kubernetes["api_url"] is None  # in-cluster: the Pod's service account


@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_connection_urls_with_their_credentials_come_from_secrets(
    helm: Path, values: list[str]
) -> None:
    """Issue 16 item 6: the URLs carry the servers' credentials, so no Deployment holds
    one in plain text; each comes from a Secret key (the chart's, made from the values)."""
    objects = _objects(_render(helm, values))
    made = {name: doc for (kind, name), doc in objects.items() if kind == "Secret"}
    for service in SERVICES:
        deployment = objects[("Deployment", f"rel-llmsafespace-{service}")]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container["env"]}
        for variable in ("NATS_URL", "DATABASE_URL", "REDIS_URL"):
            assert "value" not in env[variable], (service, variable)
            reference = env[variable]["valueFrom"]["secretKeyRef"]
            if values is REQUIRED:
                stored = made[reference["name"]]["stringData"][reference["key"]]
                login = f"{service}:" if variable == "NATS_URL" else ":p@"
                assert login in stored, (variable, stored)


def test_every_service_is_given_the_same_output_stream_limit(helm: Path) -> None:
    """Every service creates and updates the JetStream streams at start: they must agree
    on the output stream's byte limit, or each start would undo the last one's."""
    objects = _objects(_render(helm, [*REQUIRED, "--set", "streams.outputMaxBytes=512Mi"]))
    for service in SERVICES:
        deployment = objects[("Deployment", f"rel-llmsafespace-{service}")]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        settings = ServiceSettings(OUTPUT_STREAM_MAX_BYTES=env["OUTPUT_STREAM_MAX_BYTES"])
        assert settings.output_stream_bytes() == 512 * 2**20, service
    default = _objects(_render(helm, REQUIRED))[("Deployment", "rel-llmsafespace-exec-svc")]
    (container,) = default["spec"]["template"]["spec"]["containers"]
    assert {"name": "OUTPUT_STREAM_MAX_BYTES", "value": "1Gi"} in container["env"]


def _nats_secret(helm: Path, *values: str) -> dict[str, str]:
    objects = _objects(_render(helm, [*REQUIRED, *values]))
    secret: dict[str, str] = objects[("Secret", "rel-llmsafespace-nats")]["stringData"]
    return secret


def _users(auth_conf: str) -> dict[str, dict[str, Any]]:
    """The users of an `authorization {...}` block (its body is JSON)."""
    keyword, body = auth_conf.split(" ", 1)
    assert keyword == "authorization"
    return {user["user"]: user for user in json.loads(body)["users"]}


def test_the_charts_nats_permissions_are_the_contracts() -> None:
    """files/nats-permissions.json is written from `contracts.bus_permissions`; regenerate
    it with `python -m llmsafespace.contracts.bus_permissions > <that file>`."""
    written = json.loads((CHART / "files" / "nats-permissions.json").read_text())
    assert written == permissions()


def test_each_service_logs_in_to_nats_as_its_own_user_allowed_only_its_subjects(
    helm: Path,
) -> None:
    """Issue 16 item 6: one NATS user per service, its password given or generated, the
    same in the service's URL and in the server's `authorization` block, with the
    permissions of `contracts.bus_permissions`."""
    secret = _nats_secret(helm, "--set", "nats.passwords.exec-svc=given-password")
    users = _users(secret["auth.conf"])
    assert set(users) == set(SERVICES)
    for service in SERVICES:
        url = secret[f"nats-url-{service}"]
        password = users[service]["password"]
        assert url == f"nats://{service}:{password}@nats:4222"
        assert secret[f"password-{service}"] == password
        assert users[service]["permissions"] == permissions()[service]
    assert users["exec-svc"]["password"] == "given-password"
    generated = [users[service]["password"] for service in SERVICES if service != "exec-svc"]
    assert len(set(generated)) == len(generated)
    assert all(len(password) >= 32 for password in generated)


def test_the_charts_nats_authorization_is_a_config_nats_server_accepts(
    helm: Path, tmp_path: Path
) -> None:
    config = tmp_path / "auth.conf"
    config.write_text(_nats_secret(helm)["auth.conf"])
    server = Path(sys.executable).parent / "nats-server"
    result = subprocess.run(
        [str(server), "-t", "-c", str(config)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_nats_url_with_credentials_is_refused(helm: Path) -> None:
    """The chart gives each service its own user: a shared login in the URL is an error."""
    result = _helm(helm, "lint", str(CHART), *REQUIRED, "--set", "nats.url=nats://u:p@nats:4222")
    assert result.returncode != 0
    assert "nats" in result.stdout + result.stderr


def test_a_missing_connection_url_fails_the_render(helm: Path) -> None:
    pairs = zip(REQUIRED[::2], REQUIRED[1::2], strict=True)
    without_nats = [arg for pair in pairs if "nats.url=" not in pair[1] for arg in pair]
    result = _helm(helm, "template", "rel", str(CHART), *without_nats)
    assert result.returncode != 0
    assert "nats.url or nats.existingSecret is required" in result.stderr


def test_the_readme_installs_the_chart_with_values_it_has(helm: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Deploy on Kubernetes", 1)[1].split("\n## ", 1)[0]
    command = section.split("helm install llmsafespace charts/llmsafespace", 1)[1]
    command = command.split("```", 1)[0]
    sets = dict(re.findall(r"--set ([\w.]+)=(\S+)", command))
    assert sets
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in sets:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, f"README sets {key}: not in values"
            node = node[part]
    # The README's values, its shell substitutions filled in with something of their shape.
    filled = {key: re.sub(r"\$\([^)]*\)", "0" * 48, value) for key, value in sets.items()}
    args = [arg for key, value in filled.items() for arg in ("--set", key + "=" + value.strip('"'))]
    result = _helm(helm, "template", "rel", str(CHART), *args)
    assert result.returncode == 0, result.stderr


def _sandbox_svc(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod: dict[str, Any] = objects[("Deployment", "rel-llmsafespace-sandbox-svc")]["spec"][
        "template"
    ]["spec"]
    return pod


def _settings_in(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> SandboxSettings:
    """sandbox-svc's settings as its Pod's env makes them (a Secret's value: a stand-in)."""
    for item in container["env"]:
        monkeypatch.setenv(item["name"], item.get("value", "from-a-secret"))
    return SandboxSettings()


def test_without_a_bucket_snapshot_chunks_go_to_a_writable_volume(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root filesystem is read-only: the chunk dir must be a volume of its own, and
    only sandbox-svc keeps chunks."""
    objects = _objects(_render(helm, VALUES["default"]))
    pod = _sandbox_svc(objects)
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert not any(name.startswith(("SANDBOX_SVC_SNAPSHOT_S3", "AWS_")) for name in env)
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volume = mounts[env["SANDBOX_SVC_SNAPSHOT_DIR"]]
    (declared,) = [item for item in pod["volumes"] if item["name"] == volume]
    assert declared["emptyDir"]["sizeLimit"] == "10Gi"
    store = _settings_in(container, monkeypatch).chunk_store()
    assert isinstance(store, LocalChunkStore)
    for service in set(SERVICES) - {"sandbox-svc"}:
        deployment = objects[("Deployment", f"rel-llmsafespace-{service}")]
        (other,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "SANDBOX_SVC_SNAPSHOT_DIR" not in {item["name"] for item in other["env"]}

    claimed = _objects(_render(helm, [*REQUIRED, "--set", "snapshots.volume.existingClaim=shared"]))
    volumes = {item["name"]: item for item in _sandbox_svc(claimed)["volumes"]}
    assert volumes[volume]["persistentVolumeClaim"] == {"claimName": "shared"}


def test_a_bucket_sends_snapshot_chunks_to_s3_with_credentials_from_a_secret(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = [
        *REQUIRED,
        *("--set", "snapshots.s3.bucket=chunks"),
        *("--set", "snapshots.s3.endpoint=http://minio:9000"),
        *("--set", "snapshots.s3.region=eu-west-1"),
    ]
    made = [*bucket, *("--set", "snapshots.s3.accessKeyId=AKID")]
    made += ["--set", "snapshots.s3.secretAccessKey=hush"]
    existing = [*bucket, *("--set", "snapshots.s3.existingSecret=s3-credentials")]
    for values, secret in ((made, "rel-llmsafespace-snapshots"), (existing, "s3-credentials")):
        objects = _objects(_render(helm, values))
        pod = _sandbox_svc(objects)
        (container,) = pod["containers"]
        env = {item["name"]: item for item in container["env"]}
        assert "SANDBOX_SVC_SNAPSHOT_DIR" not in env
        assert "snapshots" not in {item["name"] for item in pod["volumes"]}
        plain = {name: item["value"] for name, item in env.items() if "value" in item}
        assert plain["SANDBOX_SVC_SNAPSHOT_S3_BUCKET"] == "chunks"
        assert plain["SANDBOX_SVC_SNAPSHOT_S3_ENDPOINT"] == "http://minio:9000"
        assert plain["AWS_DEFAULT_REGION"] == "eu-west-1"
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert "value" not in env[variable], variable
            assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == secret
        store = _settings_in(container, monkeypatch).chunk_store()
        assert isinstance(store, S3ChunkStore)
    stored = _objects(_render(helm, made))[("Secret", "rel-llmsafespace-snapshots")]["stringData"]
    assert stored == {"access-key-id": "AKID", "secret-access-key": "hush"}
    assert ("Secret", "rel-llmsafespace-snapshots") not in _objects(_render(helm, existing))
