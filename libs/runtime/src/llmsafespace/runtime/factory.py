"""The one way a service gets its driver: from its :class:`RuntimeSettings`."""

from __future__ import annotations

from collections.abc import Mapping

from .driver import Driver
from .kubernetes import KubernetesDriver
from .local import LocalConfig, LocalDriver
from .settings import RuntimeSettings


def create_driver(settings: RuntimeSettings, interpreters: Mapping[str, str]) -> Driver:
    """The driver ``settings`` name, configured for this host or cluster.

    ``interpreters`` (runtime name → host interpreter, from the runtime catalog) serve the
    local driver; the Kubernetes driver runs each runtime's image instead.
    """
    if settings.driver == "kubernetes":
        return KubernetesDriver(settings.kubernetes)
    return LocalDriver(LocalConfig(runtime_dir=settings.dir, interpreters=dict(interpreters)))
