"""The one way a service gets its driver: from its :class:`RuntimeSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llmsafespace.contracts.runtimes import Catalog

from .driver import Driver
from .kubernetes import KubernetesDriver
from .local import LocalConfig, LocalDriver
from .settings import RuntimeSettings


def create_driver(
    settings: RuntimeSettings,
    interpreters: Mapping[str, str],
    packages: Mapping[str, str] | None = None,
    languages: Mapping[str, str] | None = None,
) -> Driver:
    """The driver ``settings`` name, configured for this host or cluster.

    ``interpreters`` (runtime name → host interpreter of the agent), ``packages`` (→ host
    dir of preinstalled packages) and ``languages`` (→ language of run_code), from the
    runtime catalog, serve the local driver; the Kubernetes driver runs each runtime's
    image instead.
    """
    if settings.driver == "kubernetes":
        return KubernetesDriver(settings.kubernetes)
    dirs = {name: Path(path) for name, path in (packages or {}).items()}
    config = LocalConfig(
        runtime_dir=settings.dir,
        interpreters=dict(interpreters),
        packages=dirs,
        languages=dict(languages or {}),
    )
    return LocalDriver(config)


def driver_for(settings: RuntimeSettings, catalog: Catalog) -> Driver:
    """The driver of a service that creates sandboxes (sandbox-svc, warmpool-svc): the
    one ``settings`` name, serving the runtimes ``catalog`` offers."""
    return create_driver(
        settings, catalog.interpreters(), catalog.packages_dirs(), catalog.languages()
    )
