"""A fake cluster per test: the in-memory API server, a kubelet running real agents, a driver."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.devstack.ports import free_port
from llmsafespace.runtime import KubernetesConfig, KubernetesDriver

from .apiserver import FakeApiServer
from .kubelet import FakeKubelet

NAMESPACE = "sandboxes"


@pytest.fixture
def kubelet_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="fake-kubelet-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def apiserver() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def kubelet(apiserver: FakeApiServer, kubelet_root: Path) -> AsyncIterator[FakeKubelet]:
    node = FakeKubelet(apiserver, kubelet_root)
    yield node
    await node.stop()


@pytest.fixture
def config(apiserver: FakeApiServer) -> KubernetesConfig:
    return KubernetesConfig(
        namespace=NAMESPACE,
        api_url=apiserver.url,
        agent_port=free_port(),
        images={"python:3.11": "ghcr.io/llmsafespace/runtime-python:3.11"},
        ready_timeout=20,
        poll_interval=0.05,
        watch_interval=0.05,
    )


@pytest.fixture
async def driver(config: KubernetesConfig, kubelet: FakeKubelet) -> AsyncIterator[KubernetesDriver]:
    k8s = KubernetesDriver(config)
    yield k8s
    await k8s.close()
