"""The Kubernetes driver: sandboxes as Pods."""

from .config import KubernetesConfig
from .driver import KubernetesDriver
from .failures import SandboxFailure
from .manifests import Egress

__all__ = ["Egress", "KubernetesConfig", "KubernetesDriver", "SandboxFailure"]
