"""A fake kubelet that runs real agents: each Pod the fake API server receives becomes a
``python -m llmsafespace.agent --listen`` process on its own loopback address.

Honest limits: no image, no user namespace, no cgroups, no network isolation — the agent
runs as root on the host's file system (the Pod's securityContext is only checked, in the
tests, as data). Of the image there is only what every runtime image adds at
``/opt/runtime`` (its bin and startup hook, written by the module the Dockerfiles run, for
the host's ``/usr/bin/python3``); the agent itself runs this checkout's venv interpreter.
Like a container it gets its own mount and pid namespaces (bubblewrap):
its `emptyDir` volumes as `/workspace` and `/tmp`, the Secret's token at the path the Pod
mounts it. What is real is the path the driver takes: API objects over HTTP, the token
through the Secret, the agent over TCP at the Pod IP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmsafespace.runtime.userland.tools import RUNTIME_ROOT, write_tree

from .apiserver import FakeApiServer, Object

SECRET_WAIT = 10.0
HOST_ENTRIES_HIDDEN = frozenset({"proc", "dev", "tmp", "run", "workspace"})
"""Host root entries a fake container does not see as they are (it gets its own)."""


REPO = Path(__file__).resolve().parents[2]
IMAGE_PYTHON = "/usr/bin/python3"  # the runtime image's interpreter (with its pip)


def _entries(directory: Path) -> list[str]:
    """Bind every entry of a host directory as it is (links as links)."""
    argv: list[str] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_symlink():
            argv += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            argv += ["--bind", str(entry), str(entry)]
        elif entry.is_file():
            argv += ["--ro-bind", str(entry), str(entry)]
    return argv


def container_argv(
    workdir: Path,
    token_path: str,
    command: list[str],
    volumes: dict[str, Path] | None = None,
    image: Path | None = None,
) -> list[str]:
    """bwrap around `command`: the host's root entries, but private `/workspace`, `/tmp`
    and `/run` (with the token where the Pod mounts its Secret), the Pod's other `emptyDir`
    volumes (``volumes``: mount path → host dir), the image's ``/opt/runtime`` (``image``,
    read-only) and a new pid namespace. A root entry holding such a mount (`/opt`) is
    rebuilt from its entries, so no mount point is ever made on the host."""
    volumes = volumes or {}
    rebuilt = {Path(path).parts[1] for path in volumes} | ({"opt"} if image else set())
    argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-ipc"]
    for entry in sorted(Path("/").iterdir()):
        if entry.name in HOST_ENTRIES_HIDDEN:
            continue
        if entry.is_symlink():
            argv += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.name in rebuilt:
            argv += ["--dir", str(entry), *_entries(entry)]
        elif entry.is_dir():
            argv += ["--bind", str(entry), str(entry)]
    argv += ["--dev-bind", "/dev", "/dev", "--proc", "/proc", "--tmpfs", "/run"]
    argv += ["--bind", str(workdir / "workspace"), "/workspace"]
    argv += ["--bind", str(workdir / "tmp"), "/tmp"]
    for path, source in sorted(volumes.items()):
        argv += ["--bind", str(source), path]
    if image is not None:
        argv += ["--ro-bind", str(image), RUNTIME_ROOT]
    # The agent runs from this checkout and its venv: visible again if /tmp hid them.
    argv += ["--ro-bind", str(REPO), str(REPO)]
    argv += ["--ro-bind", str(workdir / "token"), token_path]
    return [*argv, "--chdir", "/workspace", *command]


@dataclass
class RunningPod:
    namespace: str
    name: str
    ip: str
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    evicted: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class FakeKubelet:
    """Starts an agent for each new Pod and reports its phase back to the API server."""

    def __init__(self, api: FakeApiServer, root: Path) -> None:
        self._api = api
        self._root = root
        self.pods: dict[str, RunningPod] = {}
        self._ips: set[str] = set()
        self._image = root / "image-opt-runtime"
        write_tree(self._image, IMAGE_PYTHON)  # what `RUN python3 -m userland.tools` writes
        api.listeners.append(self._on_pod)

    def _on_pod(self, event: str, pod: Object) -> None:
        name = pod["metadata"]["name"]
        if event == "ADDED":
            running = RunningPod(pod["metadata"]["namespace"], name, self._new_ip(), self._root)
            self.pods[name] = running
            running.task = asyncio.create_task(self._run(running, pod))
        elif event == "DELETED" and name in self.pods:
            running = self.pods.pop(name)
            self._ips.discard(running.ip)
            self._kill(running)

    def _new_ip(self) -> str:
        while True:
            ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            if ip not in self._ips:
                self._ips.add(ip)
                return ip

    async def _run(self, running: RunningPod, pod: Object) -> None:
        spec = pod["spec"]
        container = spec["containers"][0]
        token_volume = next(v for v in spec["volumes"] if "secret" in v)
        secret_name = token_volume["secret"]["secretName"]
        secret = None
        for _ in range(int(SECRET_WAIT / 0.02)):
            secret = self._api.get("secrets", running.namespace, secret_name)
            if secret is not None:
                break
            await asyncio.sleep(0.02)
        if secret is None:
            self._status(running, "Pending", waiting="CreateContainerConfigError")
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"{running.name}-", dir=self._root))
        running.workdir = workdir
        token_file = workdir / "token"
        token_file.write_bytes(base64.b64decode(secret["data"]["token"]))
        (workdir / "workspace").mkdir()
        (workdir / "tmp").mkdir(mode=0o1777)
        volumes = {}
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for mount in container["volumeMounts"]:
            if mount["name"] in empty_dirs and mount["mountPath"] not in ("/workspace", "/tmp"):
                volumes[mount["mountPath"]] = workdir / "volumes" / mount["name"]
                volumes[mount["mountPath"]].mkdir(parents=True)
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == "agent")
        env = {**os.environ, **{e["name"]: e["value"] for e in container.get("env", [])}}
        mount = next(m for m in container["volumeMounts"] if m["name"] == token_volume["name"])
        command = container["command"]
        token_path = command[command.index("--token-file") + 1]
        assert token_path.startswith(mount["mountPath"] + "/")
        agent = [
            sys.executable,
            "-m",
            "llmsafespace.agent",
            "--listen",
            f"{running.ip}:{port}",
            "--token-file",
            token_path,
            "--workspace",
            "/workspace",
        ]
        running.process = await asyncio.create_subprocess_exec(
            *container_argv(workdir, token_path, agent, volumes, self._image),
            env=env,
            cwd=workdir,
            start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if self.pods.get(running.name) is not running:  # deleted while it was being started
            self._kill(running)
            await running.process.wait()  # reaped: no agent outlives its Pod
            return
        self._status(running, "Running")
        code = await running.process.wait()
        if self.pods.get(running.name) is running and not running.evicted:
            self._status(running, "Failed", exit_code=code)

    def _status(
        self, running: RunningPod, phase: str, *, exit_code: int | None = None, waiting: str = ""
    ) -> None:
        state: Object = {"running": {}}
        if exit_code is not None:
            state = {"terminated": {"exitCode": exit_code, "reason": "Error"}}
        elif waiting:
            state = {"waiting": {"reason": waiting}}
        self._api.update_status(
            running.namespace,
            running.name,
            {
                "phase": phase,
                "podIP": running.ip if phase == "Running" else None,
                "containerStatuses": [
                    {
                        "name": "agent",
                        "ready": phase == "Running",
                        "state": state,
                        "restartCount": 0,
                        "image": "",
                        "imageID": "",
                    }
                ],
            },
        )

    def _kill(self, running: RunningPod) -> None:
        if running.process is not None and running.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGKILL)

    def evict(self, name: str) -> None:
        """What the node does under pressure: kill the container, mark the Pod Evicted."""
        running = self.pods[name]
        running.evicted = True
        self._kill(running)
        self._api.update_status(
            running.namespace,
            name,
            {"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."},
        )

    def crash(self, name: str) -> None:
        """The agent dies (the Pod turns Failed with its exit code)."""
        self._kill(self.pods[name])

    async def stop(self) -> None:
        for running in list(self.pods.values()):
            self._kill(running)
            if running.process is not None:  # reaped, so its transport closes
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(running.process.wait(), 10)
            if running.task is not None:
                running.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running.task
        self.pods.clear()
