"""The objects of one sandbox: its Pod, its token Secret and its NetworkPolicy (plain dicts)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ..driver import NetworkRule, RuntimeSpec
from ..unreachable import blocked_within
from ..userland.environment import AGENT_MAIN, TEMPLATE_DIR, sandbox_environment
from . import names
from .config import KubernetesConfig

Manifest = dict[str, Any]

UID = 1000
TOKEN_DIR = "/run/llmsafespace"
LAYER = "llmsafespace.dev/template-layer"  # annotation: the layer a holder Pod keeps
TOKEN_KEY = "token"
PUBLIC_V4 = "0.0.0.0/0"  # a rule without cidrs: any public IPv4 address


@dataclass(frozen=True)
class Egress:
    """Outbound access a sandbox asked for: DNS, and these TCP ports on public addresses
    (or, per rule, on the rule's networks)."""

    ports: tuple[int, ...] = ()
    rules: tuple[NetworkRule, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Per-sandbox choices that are not resources: image, isolation and network."""

    image: str
    runtime_class: str | None
    pool: str | None
    egress: Egress | None
    template: bool = False  # an emptyDir at TEMPLATE_DIR, which the driver fills
    holds_layer: str | None = None  # not a sandbox: the Pod keeping this template layer

    @property
    def component(self) -> str:
        return names.SANDBOX if self.holds_layer is None else names.LAYER


def _millicores(cpu: float) -> str:
    return f"{max(1, round(cpu * 1000))}m"


def pod(spec: RuntimeSpec, placement: Placement, config: KubernetesConfig) -> Manifest:
    """The sandbox Pod: non-root, read-only root, no capabilities, agent on TCP.

    Its ``env`` is the sandbox's environment as on the local driver (the image holds the
    tools it names, ``/opt/runtime``), then the create's own."""
    port = config.agent_port
    env = sandbox_environment(networked=placement.egress is not None, template=placement.template)
    env |= spec.env
    layers = 2 if placement.template else 1  # the workspace, and a template's copy
    resources = {
        "cpu": _millicores(spec.cpu),
        "memory": str(spec.memory_bytes),
        "ephemeral-storage": str(layers * spec.storage_bytes + config.tmp_bytes),
    }
    container: Manifest = {
        "name": "agent",
        "image": placement.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": [
            "python3",
            "-P",  # /workspace, its working dir, is not on the agent's path (see bwrap)
            "-c",
            AGENT_MAIN,
            "--listen",
            f"0.0.0.0:{port}",
            "--token-file",
            f"{TOKEN_DIR}/{TOKEN_KEY}",
            "--workspace",
            "/workspace",
        ],
        "workingDir": "/workspace",
        "env": [{"name": key, "value": value} for key, value in sorted(env.items())],
        "ports": [{"name": "agent", "containerPort": port, "protocol": "TCP"}],
        "resources": {"requests": resources, "limits": resources},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2},
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/workspace"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
        ],
    }
    body: Manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": names.object_name(spec.runtime_id),
            "namespace": config.namespace,
            "labels": _labels(spec, placement),
            "annotations": _annotations(spec, placement),
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": UID,
                "fsGroup": UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [
                {"name": "workspace", "emptyDir": {"sizeLimit": str(spec.storage_bytes)}},
                {"name": "tmp", "emptyDir": {"sizeLimit": str(config.tmp_bytes)}},
                {
                    "name": "token",
                    "secret": {
                        "secretName": names.secret_name(spec.runtime_id),
                        "defaultMode": 0o400,
                    },
                },
            ],
        },
    }
    if placement.runtime_class:
        body["spec"]["runtimeClassName"] = placement.runtime_class
    if placement.template:
        container["volumeMounts"].append({"name": "template", "mountPath": TEMPLATE_DIR})
        body["spec"]["volumes"].append(
            {"name": "template", "emptyDir": {"sizeLimit": str(spec.storage_bytes)}}
        )
    return body


def _labels(spec: RuntimeSpec, placement: Placement) -> dict[str, str]:
    return names.labels(spec.runtime_id, placement.pool, spec.owner, placement.component)


def _annotations(spec: RuntimeSpec, placement: Placement) -> dict[str, str]:
    annotations: dict[str, str] = {names.SANDBOX_ID: spec.runtime_id}
    if placement.holds_layer is not None:
        annotations[LAYER] = placement.holds_layer
    return annotations


def ip_block(cidr: str) -> Manifest:
    """A destination network with every unreachable range inside it cut out: a rule's
    ``0.0.0.0/0`` or ``8.0.0.0/5`` must not open the cluster's or the metadata address.

    ``ValueError`` for a network that is unreachable as a whole."""
    block: Manifest = {"cidr": cidr}
    if excluded := blocked_within(cidr):
        block["except"] = excluded
    return {"ipBlock": block}


def owner(pod_name: str, pod_uid: str) -> list[Manifest]:
    """Owner references to the Pod: deleting it garbage-collects what it owns."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod_name,
            "uid": pod_uid,
            "blockOwnerDeletion": True,
        }
    ]


def secret(spec: RuntimeSpec, token: str, placement: Placement, owners: list[Manifest]) -> Manifest:
    """The agent's token, mounted read-only into the Pod."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": names.secret_name(spec.runtime_id),
            "labels": _labels(spec, placement),
            "annotations": _annotations(spec, placement),
            "ownerReferences": owners,
        },
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def network_policy(
    spec: RuntimeSpec, placement: Placement, config: KubernetesConfig, owners: list[Manifest]
) -> Manifest:
    """Ingress only from the services that talk to the agent, on its port: exec-svc,
    warmpool-svc (preloads and customises warm sandboxes) and sandbox-svc (waits for the
    agent, captures and restores snapshots, copies template layers); egress denied unless
    asked for."""
    sources: list[Manifest] = [
        {"podSelector": {"matchLabels": dict(labels)}}
        for labels in (config.exec_pod_labels, config.pool_pod_labels, config.sandbox_pod_labels)
    ]
    if config.exec_namespace:
        for source in sources:
            source["namespaceSelector"] = {
                "matchLabels": {"kubernetes.io/metadata.name": config.exec_namespace}
            }
    egress: list[Manifest] = []
    if placement.egress is not None:
        egress = [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
        rules = placement.egress.rules or (NetworkRule(ports=placement.egress.ports),)
        for rule in rules:
            if not rule.ports:
                continue
            to = [ip_block(cidr) for cidr in rule.cidrs or (PUBLIC_V4,)]
            ports = [{"protocol": "TCP", "port": port} for port in rule.ports]
            egress.append({"to": to, "ports": ports})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": names.object_name(spec.runtime_id),
            "labels": _labels(spec, placement),
            "annotations": _annotations(spec, placement),
            "ownerReferences": owners,
        },
        "spec": {
            "podSelector": {"matchLabels": {names.SANDBOX_ID: names.label_value(spec.runtime_id)}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": sources, "ports": [{"protocol": "TCP", "port": config.agent_port}]}
            ],
            "egress": egress,
        },
    }
