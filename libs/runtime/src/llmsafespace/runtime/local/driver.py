"""LocalDriver: each sandbox is a bubblewrap sandbox running as its own host uid."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket as socketlib
import time
from collections.abc import AsyncGenerator
from pathlib import Path

import structlog

from llmsafespace.contracts.ids import RuntimeId

from ..agent_client import AgentClient
from ..driver import Handle, RuntimeOwner, RuntimeSpec, RuntimeStats, SandboxFailure
from ..errors import (
    AgentUnavailable,
    DriverError,
    RuntimeUnavailable,
    UnknownRuntime,
    UnsupportedSpec,
)
from ..userland.tools import write_tools
from . import bwrap, gvisor, layers, network, seccomp
from .cgroups import Limits, favor_moves
from .config import LocalConfig
from .exits import REASON as EXIT_REASON
from .exits import ExitWatch
from .layout import MAX_SOCKET_PATH, TOKEN_NAME, Layout, SandboxMeta
from .mounts import disk_backed, mount_scratch, mount_workspace
from .prepare import prepare
from .processes import Confinement, is_alive, is_running, live_pids, spawn_detached
from .protections import landlock_abi
from .teardown import clean_stale, remove

POLL_INTERVAL = 0.002  # a failed attempt costs ~0.1 ms; the agent is up in ~40 ms
EXIT_RESCAN_INTERVAL = 1.0  # seconds between looks for sandboxes started elsewhere
SECCOMP_NAME = "seccomp.bpf"
log = structlog.get_logger()


class LocalDriver:
    """Creates sandboxes on this host; they outlive the driver and are adopted from state."""

    def __init__(self, config: LocalConfig) -> None:
        self._config = config
        self._layout = Layout(config.runtime_dir)
        self._uids = config.uid_registry()
        prepare(self._layout)
        self._tools = {
            interpreter: write_tools(self._layout.root, interpreter)
            for interpreter in set(config.interpreters.values())
        }
        gvisor.prepare_rootfs(self._layout)
        self._cgroups = config.cgroups()
        missing = []
        if self._cgroups is None:
            missing.append("cgroups (memory, pids, cpu)")
        else:
            self._cgroups.setup(config.overall_cap())
            if not favor_moves():
                log.info("cgroup_moves_wait_for_rcu", reason="no cgroup2 favordynmods")
        self._seccomp: Path | None = seccomp.export(self._layout.root / SECCOMP_NAME)
        self._landlock = landlock_abi()
        if not self._landlock:
            log.warning("landlock_unavailable")
        if not disk_backed():
            log.warning("workspace_in_memory", missing="mkfs.ext4 or loop devices")
        if missing and not config.allow_degraded:
            raise RuntimeUnavailable(
                f"this host lacks {', '.join(missing)}; set allow_degraded to run without"
            )
        if missing:
            log.warning("local_driver_degraded", missing=missing)
        self._missing = missing
        self._network_missing = network.missing(self._landlock)
        if not self._network_missing:
            try:
                network.install_fence(config.uid_base, config.uid_count)
            except RuntimeUnavailable as exc:
                self._network_missing.append(str(exc))
        if self._network_missing:
            log.info("network_mode_unavailable", missing=self._network_missing)
        self.timings: dict[str, float] = {}  # ms per step of the last cold create
        self._destroyed: set[str] = set()
        clean_stale(self._layout, self._uids, self._cgroups)

    def protections(self) -> dict[str, object]:
        """Which protections sandboxes of this driver get (reported by ``/ready``)."""
        return {
            "ownUid": True,
            "namespaces": True,
            "seccomp": self._seccomp is not None,
            "cgroups": None if self._cgroups is None else self._cgroups.version.value,
            "workspaceLimit": True,
            "workspace": "ext4 image" if disk_backed() else "tmpfs",
            "landlockAbi": self._landlock,
            "network": "slirp4netns" if not self._network_missing else "none",
            "networkMissing": list(self._network_missing),
            "gvisor": gvisor.installed(),
            "memoryCapBytes": self._config.overall_cap().memory_bytes,  # all sandboxes together
            "missing": list(self._missing),
            "missingByLevel": {
                level: self.missing_protections(level) for level in ("standard", "high")
            },
        }

    def missing_protections(self, security_level: str) -> list[str]:
        """What sandboxes of ``security_level`` would get on a fully equipped host but
        do not get here ([] normally). At ``high`` gVisor stands in for seccomp and
        Landlock, which do not apply inside it."""
        missing = [] if self._cgroups is not None else ["cgroups"]
        if security_level == "high":
            return missing if gvisor.installed() else [*missing, "gvisor"]
        if self._seccomp is None:
            missing.append("seccomp")
        if not self._landlock:
            missing.append("landlock")
        return missing

    def _check_supported(self, spec: RuntimeSpec) -> None:
        """Refuse what this host cannot isolate, before anything is allocated."""
        if spec.security_level == "high":
            if not gvisor.installed():
                raise UnsupportedSpec(
                    "securityLevel 'high' runs sandboxes under gVisor, which is not installed "
                    f"on this host: {gvisor.INSTALL_HINT}"
                )
            if spec.network_ports is not None:
                raise UnsupportedSpec(
                    "networkAccess is not available with securityLevel 'high' on the local "
                    "driver (its gVisor sandboxes have no network); drop one of the two"
                )
        if spec.network_ports is not None and self._network_missing:
            raise RuntimeUnavailable(
                "networkAccess is unavailable on this host; it lacks "
                + "; ".join(self._network_missing)
            )

    def _uid_busy(self, uid: int) -> bool:
        """A uid still in use: its cgroup exists (teardown removes it before the uid is
        released). Without cgroups, whether any process runs as it (a /proc scan)."""
        if self._cgroups is None:
            return bool(live_pids(uid))
        return any(path.exists() for path in self._cgroups.dirs(uid).values())

    def _handle(self, meta: SandboxMeta) -> Handle:
        socket = self._layout.socket(meta.sandbox_id)
        return Handle(
            runtime_id=RuntimeId(meta.sandbox_id),
            owner=None if meta.owner is None else RuntimeOwner(meta.owner),
            endpoint=f"unix://{socket}",
            token=meta.token,
        )

    def _interpreter(self, runtime: str) -> str:
        try:
            return self._config.interpreters[runtime]
        except KeyError:
            available = ", ".join(sorted(self._config.interpreters))
            raise UnknownRuntime(f"unknown runtime {runtime!r}; available: {available}") from None

    def _check_packages(self, runtime: str) -> None:
        """A runtime's package prefix must have been built (``scripts/setup.sh``)."""
        packages = self._config.packages.get(runtime)
        if packages is not None and not packages.is_dir():
            raise RuntimeUnavailable(
                f"runtime {runtime!r} is not installed on this host: {packages} is missing "
                "(scripts/setup.sh builds it)"
            )

    def _layer(self, layer: str | None) -> Path | None:
        """A template layer's dir; one that is not kept here is refused."""
        if layer is None:
            return None
        path = layers.path(self._layout.root, layer)
        if not path.is_dir():
            raise RuntimeUnavailable(f"template layer {layer} is not on this host")
        return path

    def _start(self, spec: RuntimeSpec, interpreter: str) -> SandboxMeta:
        """Allocate a uid, lay out the dirs and start bwrap (blocking)."""
        layout, runtime_id = self._layout, spec.runtime_id
        socket = layout.socket(runtime_id)
        if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
            raise RuntimeUnavailable(
                f"agent socket path {socket} is longer than {MAX_SOCKET_PATH} bytes; "
                "use a shorter runtime_dir"
            )
        clock = _Clock()
        uid = self._uids.allocate(layout.root, runtime_id, self._uid_busy)
        clock.lap("uid")
        layout.state(runtime_id).mkdir(mode=0o711)
        for path in (layout.run(runtime_id), layout.workspace(runtime_id)):
            path.mkdir(mode=0o700)
            os.chown(path, uid, uid)
        clock.lap("dirs")
        mount_workspace(
            layout.workspace(runtime_id),
            layout.image(runtime_id),
            spec.storage_bytes,
            uid,
            fallback_bytes=_memory_share(spec),
            templates=layout.image_templates,
        )
        high = spec.security_level == "high"
        tmp_bytes = min(spec.storage_bytes, _memory_share(spec))
        scratch = None
        if not high:  # gVisor's /tmp and /dev/shm are its own
            scratch = layout.scratch(runtime_id)
            for path in scratch:
                mount_scratch(path, tmp_bytes, uid)
        clock.lap("mount")
        procs: list[Path] = []
        oom_file = None
        if self._cgroups is not None:
            procs = self._cgroups.create(uid, self._limits(spec))
            oom_file = self._cgroups.oom_file(uid)
        clock.lap("cgroup")
        token = secrets.token_urlsafe(32)
        token_file = layout.run(runtime_id) / TOKEN_NAME
        token_file.write_text(token)
        os.chown(token_file, uid, uid)
        token_file.chmod(0o600)
        meta = SandboxMeta(
            sandbox_id=runtime_id,
            owner=spec.owner,
            uid=uid,
            pid=0,
            token=token,
            created_at=time.time(),
            security_level=spec.security_level,
        )
        layout.write_meta(meta)
        agent_log = layout.state(runtime_id) / "agent.log"
        if spec.network_ports is not None and network.restricted(spec.network_rules):
            dns_pid, dns_port = network.start_dns_filter(
                layout.state(runtime_id) / "dnsfilter.json",
                spec.network_rules,
                self._config.dns_upstream or network.resolvers(),
                uid,
                procs,
                agent_log,
            )
            meta = meta.model_copy(update={"dns_filter_pid": dns_pid})
            layout.write_meta(meta)
            network.install_egress(uid, dns_port, spec.network_rules)
            clock.lap("egress")
        profile = bwrap.Profile(
            interpreter=interpreter,
            workspace=layout.workspace(runtime_id),
            run_dir=layout.run(runtime_id),
            agent_dir=layout.agent,
            etc_dir=layout.etc,
            tmp_bytes=tmp_bytes,
            scratch=scratch,
            workspace_bytes=spec.storage_bytes,
            env=spec.env,
            oom_file=oom_file,
            tcp_ports=spec.network_ports,
            tools_dir=self._tools.get(interpreter),
            packages_dir=self._config.packages.get(spec.runtime),
            template_dir=self._layer(spec.template_layer),
            language=self._config.languages.get(spec.runtime, "python"),
        )
        confinement = Confinement(
            uid=uid,
            cgroup_procs=tuple(procs),
            nofile=self._config.nofile_per_sandbox,
            # gVisor's sentry keeps sandbox memory in a file that grows past any disk
            # limit; inside, gVisor applies RLIMIT_FSIZE itself.
            fsize_bytes=None if high else spec.storage_bytes,
        )
        argv = self._runsc(profile, uid, runtime_id) if high else None
        clock.lap("files")
        with contextlib.ExitStack() as stack:
            fds: tuple[int, ...] = ()
            if self._seccomp is not None and not high:  # gVisor installs its own filters
                filter_file = stack.enter_context(self._seccomp.open("rb"))
                fds = (filter_file.fileno(),)
                profile = dataclasses.replace(profile, seccomp_fd=filter_file.fileno())
            own = _Fds()
            stack.callback(own.close_all)
            info_read = info_write = None
            if spec.network_ports is not None:
                info_read, info_write = own.pipe()
                fds += (info_write,)
                profile = dataclasses.replace(profile, info_fd=info_write)
            if argv is None:  # its options are read from an fd, not shown as /proc/1/cmdline
                full = bwrap.command(profile)
                split = full.index("--")  # bwrap takes the command itself from its argv
                args_fd = own.add(bwrap.args_file(full[1:split]))
                argv, fds = [bwrap.BWRAP, "--args", str(args_fd), *full[split:]], (*fds, args_fd)
            pid = spawn_detached(argv, dataclasses.replace(confinement, pass_fds=fds), agent_log)
            clock.lap("spawn")
            if info_read is not None and info_write is not None:
                own.close(info_write)
                self._start_network(network.read_child_pid(info_read), confinement, agent_log)
                clock.lap("network")
        meta = meta.model_copy(update={"pid": pid})
        layout.write_meta(meta)
        self.timings = clock.laps
        return meta

    def _runsc(self, profile: bwrap.Profile, uid: int, runtime_id: str) -> list[str]:
        """Write the gVisor sandbox's bundle and state dir; the runsc argv that starts it."""
        bundle, runsc_root = self._layout.bundle(runtime_id), self._layout.runsc_root(runtime_id)
        config = gvisor.spec(profile, self._layout.gvisor_rootfs, self._config.nofile_per_sandbox)
        gvisor.write_bundle(bundle, config, uid)
        runsc_root.mkdir(mode=0o700)
        os.chown(runsc_root, uid, uid)
        return gvisor.command(runsc_root, bundle, runtime_id)

    @staticmethod
    def _start_network(child: int, confinement: Confinement, agent_log: Path) -> None:
        """slirp4netns for the sandbox whose first process is ``child``, ready on return."""
        own = _Fds()
        try:
            net_fd, user_fd = (own.add(fd) for fd in network.namespace_fds(child))
            ready_read, ready_write = own.pipe()
            spawn_detached(
                network.slirp_command(net_fd, user_fd, ready_write),
                dataclasses.replace(confinement, pass_fds=(net_fd, user_fd, ready_write)),
                agent_log,
            )
            own.close(ready_write)
            network.wait_ready(ready_read)
        finally:
            own.close_all()

    def _limits(self, spec: RuntimeSpec) -> Limits:
        cap = self._config.overall_cap()
        return Limits(
            cpu=min(spec.cpu, cap.cpu),
            memory_bytes=spec.memory_bytes,
            pids=self._config.pids_per_sandbox,
        )

    async def _wait_ready(self, meta: SandboxMeta) -> None:
        handle = self._handle(meta)
        started = time.perf_counter()
        deadline = time.monotonic() + self._config.ready_timeout
        socket = self._layout.socket(meta.sandbox_id)
        while True:
            try:
                if not _listening(socket):  # a probe costs less than a client's attempt
                    raise AgentUnavailable("not listening yet")
                _seal(socket.parent)
                client = await AgentClient.connect(handle.endpoint, handle.token, timeout=1.0)
            except AgentUnavailable:
                # Not is_alive(pid, uid): right after the spawn the process may still be
                # setpriv, before its switch to the sandbox uid.
                if not is_running(meta.pid):
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
            self.timings["ready"] = (time.perf_counter() - started) * 1000
            return

    async def create(self, spec: RuntimeSpec) -> Handle:
        """Start a sandbox; returns once its agent answers ping."""
        interpreter = self._interpreter(spec.runtime)
        self._check_supported(spec)
        self._check_packages(spec.runtime)
        if self._layout.state(spec.runtime_id).exists():
            raise DriverError(f"sandbox {spec.runtime_id} already exists")
        try:
            meta = await asyncio.to_thread(self._start, spec, interpreter)
            await self._wait_ready(meta)
        except BaseException:
            await asyncio.to_thread(
                remove, self._layout, self._uids, spec.runtime_id, self._cgroups
            )
            raise
        return self._handle(meta)

    def _keep_layer(self, runtime_id: str, layer: str) -> None:
        meta = self._alive(runtime_id)
        if meta is None:
            raise DriverError(f"sandbox {runtime_id} is not running")
        layers.keep(self._layout.root, self._layout.workspace(runtime_id), meta.uid, layer)
        log.info("template_layer_kept", runtime_id=runtime_id, layer=layer)

    async def keep_layer(self, runtime_id: str, layer: str) -> None:
        """Copy the sandbox's workspace into the layer store (see ``layers``)."""
        await asyncio.to_thread(self._keep_layer, runtime_id, layer)

    async def drop_layer(self, layer: str) -> None:
        """Remove a template layer; idempotent."""
        await asyncio.to_thread(layers.drop, self._layout.root, layer)

    async def destroy(self, runtime_id: str) -> None:
        """Kill every process of the sandbox and remove its state; idempotent."""
        self._destroyed.add(runtime_id)
        await asyncio.to_thread(remove, self._layout, self._uids, runtime_id, self._cgroups)

    def failures(self) -> AsyncGenerator[SandboxFailure, None]:
        """Report, once each and as it happens, sandboxes whose agent process ended on its
        own (OOM-killed, crashed, killed); those this driver destroyed are not reported."""
        return ExitWatch(self._layout, self._destroyed, EXIT_RESCAN_INTERVAL).run()

    async def failure(self, runtime_id: RuntimeId) -> str:
        """Its agent exited while its dir is still here; else it disappeared."""
        meta = await asyncio.to_thread(self._layout.read_meta, runtime_id)
        return EXIT_REASON if meta is not None else "the runtime disappeared"

    def _alive(self, runtime_id: str) -> SandboxMeta | None:
        meta = self._layout.read_meta(runtime_id)
        if meta is None or not meta.pid or not is_alive(meta.pid, meta.uid):
            return None
        return meta

    async def list(self) -> list[Handle]:
        """Sandboxes alive now, including those made by earlier processes."""
        ids = await asyncio.to_thread(self._layout.sandbox_ids)
        metas = [await asyncio.to_thread(self._alive, runtime_id) for runtime_id in ids]
        return [self._handle(meta) for meta in metas if meta is not None]

    async def inspect(self, runtime_id: str) -> Handle | None:
        """The sandbox's handle if it is alive."""
        meta = await asyncio.to_thread(self._alive, runtime_id)
        return None if meta is None else self._handle(meta)

    def _stats(self, runtime_id: str) -> RuntimeStats | None:
        meta = self._alive(runtime_id)
        if meta is None:
            return None
        usage = None if self._cgroups is None else self._cgroups.usage(meta.uid)
        return RuntimeStats() if usage is None else RuntimeStats(**dataclasses.asdict(usage))

    async def stats(self, runtime_id: str) -> RuntimeStats | None:
        """Its cgroup's counters (v1 or v2); every field None on a host without cgroups."""
        return await asyncio.to_thread(self._stats, runtime_id)

    def _set_paused(self, runtime_id: str, paused: bool) -> None:
        meta = self._alive(runtime_id)
        if meta is None:
            raise RuntimeUnavailable(f"sandbox {runtime_id} is not running")
        if self._cgroups is None:
            raise UnsupportedSpec("pause needs cgroups, which this host does not offer")
        if paused:
            self._cgroups.freeze(meta.uid)
        else:
            self._cgroups.thaw(meta.uid)

    async def pause(self, runtime_id: str) -> None:
        """Freeze the sandbox's cgroup: no CPU, processes and memory kept."""
        await asyncio.to_thread(self._set_paused, runtime_id, True)

    async def resume(self, runtime_id: str) -> None:
        """Thaw the sandbox's cgroup."""
        await asyncio.to_thread(self._set_paused, runtime_id, False)

    def _is_paused(self, runtime_id: str) -> bool:
        meta = self._alive(runtime_id)
        return meta is not None and self._cgroups is not None and self._cgroups.frozen(meta.uid)

    async def is_paused(self, runtime_id: str) -> bool:
        """Whether its cgroup is frozen (or freezing)."""
        return await asyncio.to_thread(self._is_paused, runtime_id)

    async def close(self) -> None:
        """Nothing to release: sandboxes keep running and state lives on disk."""


class _Clock:
    """Milliseconds spent in each step of a create (for the isolation benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = (now - self._last) * 1000
        self._last = now


class _Fds:
    """File descriptors closed exactly once: early with ``close``, or at the end."""

    def __init__(self) -> None:
        self._open: set[int] = set()

    def add(self, fd: int) -> int:
        self._open.add(fd)
        return fd

    def pipe(self) -> tuple[int, int]:
        read, write = os.pipe()
        return self.add(read), self.add(write)

    def close(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            os.close(fd)

    def close_all(self) -> None:
        for fd in list(self._open):
            self.close(fd)


def _memory_share(spec: RuntimeSpec) -> int:
    """The most a memory-backed filesystem of the sandbox (``/tmp``, ``/dev/shm``) may
    hold: a quarter of its memory limit each, so filling them never OOM-kills its agent."""
    return spec.memory_bytes // 4


def _listening(path: Path) -> bool:
    """The agent accepts connections on ``path`` (it has bound and listens). Sealing the
    run dir as soon as the socket file exists is too early: under gVisor the file appears
    while the bind is still going on, and the bind then fails with EACCES. No user code has
    run yet, so connecting here without the client's checks is safe."""
    with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _seal(run_dir: Path) -> None:
    """Once the agent made its socket: the run dir becomes root's, so code in the sandbox
    (the agent's uid) can no longer replace the socket or add a link next to it."""
    os.chown(run_dir, 0, 0)
    os.chmod(run_dir, 0o700)
