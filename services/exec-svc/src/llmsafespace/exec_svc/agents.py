"""Reaching a sandbox's agent: endpoints resolved through sandbox-svc (briefly cached,
ownership checked on every use) and one multiplexed connection per sandbox. A sandbox
that starts running is announced by sandbox-svc (`EXEC_PREPARE`): its endpoint is cached
and its agent connected then, so its first call neither resolves nor waits for the
agent's handshake."""

import asyncio
import time

from llmsafespace.contracts import (
    Caller,
    ErrorCode,
    ResolvedSandbox,
    SandboxRef,
    ServiceError,
    commands,
)
from llmsafespace.runtime import AgentClient, DriverError
from llmsafespace.servicekit import Bus


class Agents:
    def __init__(self, bus: Bus, ttl: float, resolve_timeout: float) -> None:
        self._bus = bus
        self._ttl = ttl
        self._resolve_timeout = resolve_timeout  # long: a resolve may resume the sandbox
        self._resolved: dict[str, tuple[float, ResolvedSandbox]] = {}
        self._clients: dict[str, AgentClient] = {}
        # One connect in flight per sandbox, shared by everyone who needs it meanwhile:
        # a slow or unreachable agent delays only its own sandbox's callers.
        self._connecting: dict[str, asyncio.Future[AgentClient]] = {}
        self._paused: set[str] = set()  # as sandbox-svc's events last said

    async def client(self, caller: Caller, sandbox_id: str) -> tuple[ResolvedSandbox, AgentClient]:
        """The sandbox (owner checked) and a connected client; raises `ServiceError`."""
        resolved = await self._resolve(caller, sandbox_id)
        client = self._clients.get(sandbox_id)
        if client is not None and not client.closed:
            return resolved, client
        # Shielded: a caller that gives up does not cancel the others' connect.
        return resolved, await asyncio.shield(self._connection(resolved))

    def prepare(self, resolved: ResolvedSandbox) -> None:
        """A sandbox just started running (sandbox-svc says how to reach it): cache that
        as a resolve would, and connect now, in the background (a connect that fails is
        forgotten; the first call then resolves and connects as usual)."""
        self._resolved[resolved.sandbox_id] = (time.monotonic() + self._ttl, resolved)
        client = self._clients.get(resolved.sandbox_id)
        if client is None or client.closed:
            self._connection(resolved)

    def _connection(self, resolved: ResolvedSandbox) -> asyncio.Future[AgentClient]:
        """The connect in flight to the sandbox's agent, started if there is none."""
        sandbox_id = resolved.sandbox_id
        connecting = self._connecting.get(sandbox_id)
        if connecting is None:
            connecting = asyncio.ensure_future(self._connect(resolved))
            self._connecting[sandbox_id] = connecting
            connecting.add_done_callback(lambda done: self._connected(sandbox_id, done))
        return connecting

    async def _connect(self, resolved: ResolvedSandbox) -> AgentClient:
        try:
            client = await AgentClient.connect(resolved.endpoint, resolved.token)
        except DriverError as exc:
            self.forget(resolved.sandbox_id)
            raise ServiceError(
                ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {resolved.sandbox_id} is not reachable"
            ) from exc
        self._clients[resolved.sandbox_id] = client
        return client

    def _connected(self, sandbox_id: str, done: asyncio.Future[AgentClient]) -> None:
        del self._connecting[sandbox_id]
        if not done.cancelled():
            done.exception()  # retrieved here too, should every waiter have given up

    async def _resolve(self, caller: Caller, sandbox_id: str) -> ResolvedSandbox:
        cached = self._resolved.get(sandbox_id)
        if cached and cached[0] > time.monotonic():
            resolved = cached[1]
            if not caller.can_access(resolved.owner_id):
                raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {sandbox_id} not found")
            return resolved
        resolved = await self._bus.request(
            commands.SANDBOX_RESOLVE,
            SandboxRef(caller=caller, sandbox_id=sandbox_id),
            timeout=self._resolve_timeout,
        )
        self._resolved[sandbox_id] = (time.monotonic() + self._ttl, resolved)
        return resolved

    def pausing(self, sandbox_id: str, paused: bool) -> None:
        """A sandbox was paused (or runs again): its next call resolves anew, and a
        request that fails meanwhile says the sandbox was paused (`paused`)."""
        if paused:
            self._resolved.pop(sandbox_id, None)
            self._paused.add(sandbox_id)
        else:
            self._paused.discard(sandbox_id)

    def paused(self, sandbox_id: str) -> bool:
        return sandbox_id in self._paused

    def forget(self, sandbox_id: str) -> None:
        """Drop what is cached for a sandbox (after its agent became unreachable)."""
        self._resolved.pop(sandbox_id, None)
        self._paused.discard(sandbox_id)
        client = self._clients.pop(sandbox_id, None)
        if client is not None:
            asyncio.get_running_loop().create_task(client.close())

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
