"""The fake cluster (in-memory API server + fake kubelet) on an event loop of its own.

The end-to-end suite runs the services as processes that reach this API server over
HTTP. It runs in a thread so that a test blocking the test loop (a sync client, a
subprocess wait) cannot stall the cluster the services depend on.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from llmsafespace.devstack.ports import free_port
from llmsafespace.runtime import KubernetesConfig

from .apiserver import FakeApiServer
from .kubelet import FakeKubelet

T = TypeVar("T")
NAMESPACE = "llmsafespace-sandboxes"


class FakeCluster:
    """Start with `start()`, stop with `stop()`; `environ()` is what the services need."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fake-cluster-", dir="/tmp"))
        self.root.chmod(0o755)
        self.agent_port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-cluster", daemon=True
        )
        self.api = FakeApiServer()
        self.kubelet: FakeKubelet | None = None

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the cluster's loop; blocks until it is done."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 10) -> T:
        """Call a function on the cluster's loop (the store is not thread-safe)."""
        result: Future[T] = Future()

        def invoke() -> None:
            try:
                result.set_result(function())
            except BaseException as exc:
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(invoke)
        return result.result(timeout)

    async def _start(self) -> None:
        await self.api.start()
        self.kubelet = FakeKubelet(self.api, self.root)

    async def _stop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.stop()
        await self.api.stop()

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    def stop(self) -> None:
        if self._thread.is_alive():
            self.run(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def config(self) -> KubernetesConfig:
        """A driver configuration for this cluster, as the services get it."""
        return KubernetesConfig(
            api_url=self.api.url, namespace=NAMESPACE, agent_port=self.agent_port
        )

    def environ(self) -> dict[str, str]:
        """The settings that point sandbox-svc and warmpool-svc at this cluster."""
        return {
            "RUNTIME_DRIVER": "kubernetes",
            "KUBERNETES_API_URL": self.api.url,
            "KUBERNETES_NAMESPACE": NAMESPACE,
            "KUBERNETES_AGENT_PORT": str(self.agent_port),
            "KUBERNETES_READY_TIMEOUT": "60",
            "KUBERNETES_POLL_INTERVAL": "0.05",
            "KUBERNETES_WATCH_INTERVAL": "0.5",
        }

    def pod_names(self) -> list[str]:
        return self.call(lambda: [pod["metadata"]["name"] for pod in self.api.of_kind("pods")])
