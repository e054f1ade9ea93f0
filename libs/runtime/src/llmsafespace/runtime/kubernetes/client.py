"""The API client of the Kubernetes driver: where it finds the cluster."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes import config as kubeconfig

from .config import KubernetesConfig


def api_client(config: KubernetesConfig) -> Any:
    """A client for the API server named by ``config`` (URL, kubeconfig or in-cluster)."""
    configuration = k8s.Configuration()
    if config.api_url is not None:
        configuration.host = config.api_url
        token = config.token.get_secret_value() if config.token is not None else None
        if config.token_file is not None:
            token = config.token_file.read_text().strip()
        if token:
            configuration.api_key = {"authorization": f"Bearer {token}"}
        if config.ca_file is not None:
            configuration.ssl_ca_cert = str(config.ca_file)
    elif config.kubeconfig is not None:
        kubeconfig.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(config.kubeconfig), client_configuration=configuration
        )
    else:
        kubeconfig.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    return k8s.ApiClient(configuration)
