"""Kubernetes object names and labels for a sandbox id (ids may hold '_' and capitals)."""

from __future__ import annotations

import hashlib
import re

PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
SANDBOX_ID = "llmsafespace.dev/sandbox-id"
POOL = "llmsafespace.dev/pool"
OWNER = "llmsafespace.dev/owner"
PROJECT = "llmsafespace"
SANDBOX = "sandbox"
LAYER = "template-layer"  # the component of a Pod holding a template's layer
SELECTOR = f"{PART_OF}={PROJECT},{COMPONENT}={SANDBOX}"
"""Every sandbox's objects carry these labels; list and watch select on them (a layer's
Pod is not a sandbox: its component is ``LAYER``)."""

_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def object_name(runtime_id: str) -> str:
    """A DNS-1123 name that is unique per id, even when ids differ only by case or '_'."""
    digest = hashlib.sha256(runtime_id.encode()).hexdigest()[:8]
    return f"sbx-{runtime_id.lower().replace('_', '-')}-{digest}"


def secret_name(runtime_id: str) -> str:
    return f"{object_name(runtime_id)}-token"


def label_value(value: str) -> str:
    """``value`` if Kubernetes accepts it as a label value, else a stable digest of it
    (the whole value must match: `$` would admit a trailing newline)."""
    if _LABEL_VALUE.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:16]


def labels(
    runtime_id: str, pool: str | None, owner: str | None, component: str = SANDBOX
) -> dict[str, str]:
    """The selector's labels, the runtime's id and pool, and the service that owns it."""
    return {
        PART_OF: PROJECT,
        COMPONENT: component,
        SANDBOX_ID: label_value(runtime_id),
        POOL: label_value(pool) if pool else "none",
        OWNER: owner or "none",
    }
