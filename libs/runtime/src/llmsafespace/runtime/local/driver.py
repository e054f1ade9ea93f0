"""LocalDriver: each sandbox is a bubblewrap sandbox running as its own host uid."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import time
from pathlib import Path

import structlog

from ..agent_client import AgentClient
from ..driver import Handle, RuntimeSpec
from ..errors import AgentUnavailable, DriverError, RuntimeUnavailable, UnknownRuntime
from . import bwrap, seccomp
from .cgroups import Limits
from .config import LocalConfig
from .layout import MAX_SOCKET_PATH, TOKEN_NAME, Layout, SandboxMeta
from .mounts import mount_workspace
from .prepare import prepare
from .processes import Confinement, is_alive, spawn_detached
from .protections import landlock_abi
from .teardown import clean_stale, remove

POLL_INTERVAL = 0.01
SECCOMP_NAME = "seccomp.bpf"
log = structlog.get_logger()


class LocalDriver:
    """Creates sandboxes on this host; they outlive the driver and are adopted from state."""

    def __init__(self, config: LocalConfig) -> None:
        self._config = config
        self._layout = Layout(config.runtime_dir)
        self._uids = config.uid_registry()
        prepare(self._layout)
        self._cgroups = config.cgroups()
        missing = []
        if self._cgroups is None:
            missing.append("cgroups (memory, pids, cpu)")
        else:
            self._cgroups.setup(config.overall_cap())
        self._seccomp: Path | None = seccomp.export(self._layout.root / SECCOMP_NAME)
        self._landlock = landlock_abi()
        if not self._landlock:
            log.warning("landlock_unavailable")
        if missing and not config.allow_degraded:
            raise RuntimeUnavailable(
                f"this host lacks {', '.join(missing)}; set allow_degraded to run without"
            )
        if missing:
            log.warning("local_driver_degraded", missing=missing)
        clean_stale(self._layout, self._uids, self._cgroups)

    def protections(self) -> dict[str, object]:
        """Which protections sandboxes of this driver get (reported by ``/ready``)."""
        return {
            "ownUid": True,
            "namespaces": True,
            "seccomp": self._seccomp is not None,
            "cgroups": None if self._cgroups is None else self._cgroups.version.value,
            "workspaceLimit": True,
            "landlockAbi": self._landlock,
            "network": "none",
        }

    def _handle(self, meta: SandboxMeta) -> Handle:
        socket = self._layout.socket(meta.sandbox_id)
        return Handle(sandbox_id=meta.sandbox_id, endpoint=f"unix://{socket}", token=meta.token)

    def _interpreter(self, runtime: str) -> str:
        try:
            return self._config.interpreters[runtime]
        except KeyError:
            available = ", ".join(sorted(self._config.interpreters))
            raise UnknownRuntime(f"unknown runtime {runtime!r}; available: {available}") from None

    def _start(self, spec: RuntimeSpec, interpreter: str) -> SandboxMeta:
        """Allocate a uid, lay out the dirs and start bwrap (blocking)."""
        layout, sandbox_id = self._layout, spec.sandbox_id
        socket = layout.socket(sandbox_id)
        if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
            raise RuntimeUnavailable(
                f"agent socket path {socket} is longer than {MAX_SOCKET_PATH} bytes; "
                "use a shorter runtime_dir"
            )
        uid = self._uids.allocate(layout.root, sandbox_id)
        layout.state(sandbox_id).mkdir(mode=0o711)
        for path in (layout.run(sandbox_id), layout.workspace(sandbox_id)):
            path.mkdir(mode=0o700)
            os.chown(path, uid, uid)
        mount_workspace(layout.workspace(sandbox_id), spec.storage_bytes, uid)
        procs: list[Path] = []
        oom_file = None
        if self._cgroups is not None:
            procs = self._cgroups.create(uid, self._limits(spec))
            oom_file = self._cgroups.oom_file(uid)
        token = secrets.token_urlsafe(32)
        token_file = layout.run(sandbox_id) / TOKEN_NAME
        token_file.write_text(token)
        os.chown(token_file, uid, uid)
        token_file.chmod(0o600)
        meta = SandboxMeta(
            sandbox_id=sandbox_id, uid=uid, pid=0, token=token, created_at=time.time()
        )
        layout.meta(sandbox_id).write_text(meta.model_dump_json())
        profile = bwrap.Profile(
            interpreter=interpreter,
            workspace=layout.workspace(sandbox_id),
            run_dir=layout.run(sandbox_id),
            agent_dir=layout.agent,
            etc_dir=layout.etc,
            tmp_bytes=spec.storage_bytes,
            env=spec.env,
            oom_file=oom_file,
        )
        agent_log = layout.state(sandbox_id) / "agent.log"
        with contextlib.ExitStack() as stack:
            fds: tuple[int, ...] = ()
            if self._seccomp is not None:
                filter_file = stack.enter_context(self._seccomp.open("rb"))
                fds = (filter_file.fileno(),)
                profile = dataclasses.replace(profile, seccomp_fd=filter_file.fileno())
            confinement = Confinement(
                uid=uid,
                cgroup_procs=tuple(procs),
                nofile=self._config.nofile_per_sandbox,
                fsize_bytes=spec.storage_bytes,
                pass_fds=fds,
            )
            pid = spawn_detached(bwrap.command(profile), confinement, agent_log)
        meta = meta.model_copy(update={"pid": pid})
        layout.meta(sandbox_id).write_text(meta.model_dump_json())
        return meta

    def _limits(self, spec: RuntimeSpec) -> Limits:
        cap = self._config.overall_cap()
        return Limits(
            cpu=min(spec.cpu, cap.cpu),
            memory_bytes=spec.memory_bytes,
            pids=self._config.pids_per_sandbox,
        )

    async def _wait_ready(self, meta: SandboxMeta) -> None:
        handle = self._handle(meta)
        deadline = time.monotonic() + self._config.ready_timeout
        while True:
            try:
                client = await AgentClient.connect(handle.endpoint, handle.token, timeout=1.0)
            except AgentUnavailable:
                if not is_alive(meta.pid, meta.uid):
                    log = self._layout.state(meta.sandbox_id) / "agent.log"
                    raise RuntimeUnavailable(
                        f"sandbox {meta.sandbox_id} exited at start: {log.read_text()[-2000:]}"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeUnavailable(
                        f"sandbox {meta.sandbox_id} not ready in {self._config.ready_timeout} s"
                    ) from None
                await asyncio.sleep(POLL_INTERVAL)
                continue
            try:
                await client.ping()
            finally:
                await client.close()
            return

    async def create(self, spec: RuntimeSpec) -> Handle:
        """Start a sandbox; returns once its agent answers ping."""
        interpreter = self._interpreter(spec.runtime)
        if self._layout.state(spec.sandbox_id).exists():
            raise DriverError(f"sandbox {spec.sandbox_id} already exists")
        try:
            meta = await asyncio.to_thread(self._start, spec, interpreter)
            await self._wait_ready(meta)
        except BaseException:
            await asyncio.to_thread(
                remove, self._layout, self._uids, spec.sandbox_id, self._cgroups
            )
            raise
        return self._handle(meta)

    async def destroy(self, sandbox_id: str) -> None:
        """Kill every process of the sandbox and remove its state; idempotent."""
        await asyncio.to_thread(remove, self._layout, self._uids, sandbox_id, self._cgroups)

    def _alive(self, sandbox_id: str) -> SandboxMeta | None:
        meta = self._layout.read_meta(sandbox_id)
        if meta is None or not meta.pid or not is_alive(meta.pid, meta.uid):
            return None
        return meta

    async def list(self) -> list[Handle]:
        """Sandboxes alive now, including those made by earlier processes."""
        ids = await asyncio.to_thread(self._layout.sandbox_ids)
        metas = [await asyncio.to_thread(self._alive, sandbox_id) for sandbox_id in ids]
        return [self._handle(meta) for meta in metas if meta is not None]

    async def inspect(self, sandbox_id: str) -> Handle | None:
        """The sandbox's handle if it is alive."""
        meta = await asyncio.to_thread(self._alive, sandbox_id)
        return None if meta is None else self._handle(meta)

    async def close(self) -> None:
        """Nothing to release: sandboxes keep running and state lives on disk."""
