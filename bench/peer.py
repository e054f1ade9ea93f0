"""The peer: a Jupyter Kernel Gateway on 127.0.0.1, started and stopped by the harness.

Its users create a kernel with `POST /api/kernels` and run code over the kernel's
`channels` WebSocket; the harness does the same. Fairness: the token is checked on every
request as ours checks its API key; the IOPub rate limit (1 MB/s by default, which would
drop most of a 10 MiB stream) is lifted as ours has no such limit; and its WebSocket
sockets get TCP_NODELAY like ours (Tornado leaves Nagle on for upgraded connections).
"""

import asyncio
import contextlib
import importlib.metadata
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from harness import CREATE_CONCURRENCY, state_dir
from memory import pids_with_argument, pss_kib
from stream_client import KernelChannels, connect

from llmsafespace.devstack.ports import HOST, free_port

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

# Kernel Gateway's own entry point, with TCP_NODELAY on each WebSocket once it is upgraded.
LAUNCH = """
import tornado.websocket

detach = tornado.websocket.WebSocketHandler._detach_stream

def detach_without_nagle(self):
    stream = detach(self)
    stream.set_nodelay(True)
    return stream

tornado.websocket.WebSocketHandler._detach_stream = detach_without_nagle

from kernel_gateway import launch_instance

launch_instance()
"""


class KernelGateway:
    """One `jupyter kernelgateway` process and the kernels it starts, in a temp dir."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(24)
        self.port = 0
        self._dir: Path | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def version(self) -> str:
        return importlib.metadata.version("jupyter_kernel_gateway")

    def client(self, timeout: float = 120) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout)

    async def start(self) -> None:
        self._dir = state_dir("llmsafespace-bench-kg-")
        self.port = free_port()
        jupyter = {
            name: str(self._dir / name.lower())
            for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR")
        }
        env = {
            **os.environ,
            **jupyter,
            "IPYTHONDIR": str(self._dir / "ipython"),
            "KG_IP": HOST,
            "KG_PORT": str(self.port),
            "KG_PORT_RETRIES": "0",
            "KG_AUTH_TOKEN": self.token,
        }
        with (self._dir / "kernelgateway.log").open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                LAUNCH,
                "--ZMQChannelsWebsocketConnection.limit_rate=False",
                env=env,
                cwd=self._dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        async with self.client(timeout=2) as client, asyncio.timeout(READY_TIMEOUT):
            while True:
                if self._process is None or self._process.returncode is not None:
                    raise RuntimeError(f"kernel gateway exited; see {self._dir}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/api")).status_code == 200:
                        return
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """SIGTERM (it shuts its kernels down), then SIGKILL whatever of ours is left:
        the gateway's process group and any kernel whose connection file is ours."""
        process, directory = self._process, self._dir
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if directory is not None:
            for pid in pids_with_argument(str(directory)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(directory, ignore_errors=True)
        self._process = self._dir = None

    async def new_kernel(self, api: httpx.AsyncClient) -> tuple[str, KernelChannels]:
        """Start a kernel and open its channels, as a Kernel Gateway user does."""
        response = await api.post("/api/kernels", json={"name": "python3"})
        if response.status_code != 201:
            raise RuntimeError(f"kernel create: {response.status_code} {response.text[:200]}")
        kernel_id = str(response.json()["id"])
        url = self.url.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels"
        return kernel_id, KernelChannels(await connect(url, self.headers))

    async def delete_kernel(
        self, api: httpx.AsyncClient, kernel_id: str, channels: KernelChannels
    ) -> None:
        await channels.close()
        await api.delete(f"/api/kernels/{kernel_id}")

    @contextlib.asynccontextmanager
    async def kernels(
        self, api: httpx.AsyncClient, count: int
    ) -> AsyncIterator[list[tuple[str, KernelChannels]]]:
        """`count` kernels, CREATE_CONCURRENCY started at a time, deleted afterwards."""
        limit = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def start() -> tuple[str, KernelChannels]:
            async with limit:
                return await self.new_kernel(api)

        started = await asyncio.gather(*(start() for _ in range(count)), return_exceptions=True)
        kernels = [kernel for kernel in started if not isinstance(kernel, BaseException)]
        try:
            yield kernels
        finally:
            for kernel_id, channels in kernels:
                await self.delete_kernel(api, kernel_id, channels)

    @staticmethod
    def kernel_pss_kib(kernel_id: str) -> int:
        """PSS of the kernel's process (found by its connection file's name)."""
        return sum(pss_kib(pid) for pid in pids_with_argument(f"kernel-{kernel_id}.json"))
