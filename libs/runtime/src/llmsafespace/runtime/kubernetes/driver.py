"""KubernetesDriver: one Pod per sandbox, its token in a Secret, a NetworkPolicy around it."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import structlog
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from llmsafespace.contracts.ids import RuntimeId

from ..agent_client import AgentClient
from ..driver import Handle, RuntimeOwner, RuntimeSpec, RuntimeStats
from ..errors import (
    AgentUnavailable,
    DriverError,
    RuntimeUnavailable,
    UnknownRuntime,
    UnsupportedSpec,
)
from ..userland.environment import TEMPLATE_DIR
from . import layers, manifests, names
from .client import api_client
from .config import KubernetesConfig
from .failures import SandboxFailure, pod_failure
from .usage import METRICS_GROUP, METRICS_VERSION, pod_stats

T = TypeVar("T")
log = structlog.get_logger()


def _endpoint(pod_ip: str, port: int) -> str:
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"tcp://{host}:{port}"


def _runtime_id(obj: Any) -> RuntimeId | None:
    annotations = obj.metadata.annotations or {}
    value = annotations.get(names.SANDBOX_ID)
    return RuntimeId(value) if isinstance(value, str) else None


def _owner(pod: Any) -> RuntimeOwner | None:
    value = (pod.metadata.labels or {}).get(names.OWNER)
    return RuntimeOwner(value) if value in set(RuntimeOwner) else None


GONE = "the pod disappeared"


class KubernetesDriver:
    """Creates sandboxes as Pods through the official client, off the event loop; keeps
    template layers in Pods of their own (``layers``)."""

    def __init__(self, config: KubernetesConfig, api: Any | None = None) -> None:
        self._config = config
        try:
            self._api = api if api is not None else api_client(config)
        except (ConfigException, OSError) as exc:
            raise RuntimeUnavailable(
                f"the kubernetes driver found no cluster (api_url, kubeconfig or in-cluster): {exc}"
            ) from exc
        self._core = k8s.CoreV1Api(self._api)
        self._net = k8s.NetworkingV1Api(self._api)
        self._destroyed: set[str] = set()

    def protections(self) -> dict[str, object]:
        """What sandbox Pods get (the cluster enforces it)."""
        return {
            "driver": "kubernetes",
            "namespace": self._config.namespace,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "capabilities": "none",
            "seccomp": "RuntimeDefault",
            "runtimeClasses": dict(self._config.runtime_classes),
            "network": "NetworkPolicy: deny egress, ingress from the platform's services only",
        }

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking API call in a worker thread."""
        kwargs.setdefault("_request_timeout", self._config.request_timeout)
        return await asyncio.to_thread(method, *args, **kwargs)

    def _placement(self, spec: RuntimeSpec) -> manifests.Placement:
        try:
            image = self._config.images[spec.runtime]
        except KeyError:
            available = ", ".join(sorted(self._config.images))
            raise UnknownRuntime(
                f"unknown runtime {spec.runtime!r}; available: {available}"
            ) from None
        if any(rule.hosts for rule in spec.network_rules):
            raise UnsupportedSpec(
                "egress by host name is not available on the Kubernetes driver (a "
                "NetworkPolicy cannot name hosts); give `cidrs` instead"
            )
        for cidr in (cidr for rule in spec.network_rules for cidr in rule.cidrs):
            try:
                manifests.ip_block(cidr)
            except ValueError as error:
                raise UnsupportedSpec(f"{error}: sandboxes never reach it") from None
        egress = (
            None
            if spec.network_ports is None
            else manifests.Egress(spec.network_ports, spec.network_rules)
        )
        return manifests.Placement(
            image=image,
            runtime_class=self._config.runtime_classes.get(spec.security_level),
            pool=spec.pool,
            egress=egress,
            template=spec.template_layer is not None,
        )

    async def create(self, spec: RuntimeSpec) -> Handle:
        """Create Pod, NetworkPolicy and Secret; return once the Pod runs, its agent answers
        and, for a template's sandbox, its copy of the layer is in ``/opt/template``."""
        handle = await self._start(spec, self._placement(spec))
        if spec.template_layer is not None:
            try:
                await self._copy_layer(spec.template_layer, handle)
            except BaseException:
                await asyncio.shield(self.destroy(spec.runtime_id))
                raise
        log.info("sandbox_pod_ready", runtime_id=spec.runtime_id, endpoint=handle.endpoint)
        return handle

    async def _copy_layer(self, layer: str, handle: Handle) -> None:
        holder = await self.inspect(layers.holder_id(layer))
        if holder is None:
            raise RuntimeUnavailable(str(layers.lost(layer)))
        try:
            await layers.copy_tree(holder, layers.WORKSPACE, handle, TEMPLATE_DIR)
        except DriverError as exc:
            raise RuntimeUnavailable(f"copying template layer {layer!r} failed: {exc}") from exc

    async def keep_layer(self, runtime_id: RuntimeId, layer: str) -> None:
        """Start the Pod that keeps ``layer`` and copy the builder's workspace into it."""
        builder = await self.inspect(runtime_id)
        if builder is None:
            raise DriverError(f"sandbox {runtime_id} is not running: no layer to keep")
        pod: Any = await self._call(
            self._core.read_namespaced_pod, names.object_name(runtime_id), self._config.namespace
        )
        (workspace,) = (v for v in pod.spec.volumes if v.name == "workspace")
        spec = RuntimeSpec(
            runtime_id=layers.holder_id(layer),
            cpu=layers.HOLDER_CPU,
            memory_bytes=layers.HOLDER_MEMORY,
            storage_bytes=int(workspace.empty_dir.size_limit),
        )
        image = pod.spec.containers[0].image
        placement = manifests.Placement(
            image=image, runtime_class=None, pool=None, egress=None, holds_layer=layer
        )
        holder = await self._start(spec, placement)
        try:
            await layers.copy_tree(builder, layers.WORKSPACE, holder, layers.WORKSPACE)
        except BaseException:
            await asyncio.shield(self.destroy(spec.runtime_id))
            raise
        log.info("template_layer_kept", layer=layer, holder=spec.runtime_id)

    async def drop_layer(self, layer: str) -> None:
        """Delete the Pod keeping ``layer``; idempotent."""
        await self.destroy(layers.holder_id(layer))

    async def _start(self, spec: RuntimeSpec, placement: manifests.Placement) -> Handle:
        namespace = self._config.namespace
        token = secrets.token_urlsafe(32)
        try:
            created = await self._call(
                self._core.create_namespaced_pod,
                namespace,
                manifests.pod(spec, placement, self._config),
            )
        except ApiException as exc:
            if exc.status == 409:
                raise DriverError(f"sandbox {spec.runtime_id} already exists") from exc
            raise RuntimeUnavailable(f"cannot create the sandbox pod: {exc.reason}") from exc
        self._destroyed.discard(spec.runtime_id)
        try:
            metadata: Any = created.metadata
            owners = manifests.owner(str(metadata.name), str(metadata.uid))
            # The policy before the Secret: the container cannot start before its token exists.
            await self._call(
                self._net.create_namespaced_network_policy,
                namespace,
                manifests.network_policy(spec, placement, self._config, owners),
            )
            await self._call(
                self._core.create_namespaced_secret,
                namespace,
                manifests.secret(spec, token, placement, owners),
            )
            return await self._wait_ready(spec.runtime_id, token)
        except BaseException:
            await asyncio.shield(self.destroy(spec.runtime_id))
            raise

    async def _wait_ready(self, runtime_id: RuntimeId, token: str) -> Handle:
        name = names.object_name(runtime_id)
        deadline = time.monotonic() + self._config.ready_timeout
        while True:
            try:
                pod = await self._call(self._core.read_namespaced_pod, name, self._config.namespace)
            except ApiException as exc:
                if exc.status == 404:
                    raise RuntimeUnavailable(f"sandbox {runtime_id}: the pod vanished") from exc
                raise
            failure = pod_failure(pod)
            if failure is not None:
                raise RuntimeUnavailable(f"sandbox {runtime_id} failed to start: {failure}")
            if pod.status is not None and pod.status.phase == "Running" and pod.status.pod_ip:
                handle = Handle(
                    runtime_id=runtime_id,
                    owner=_owner(pod),
                    endpoint=_endpoint(pod.status.pod_ip, self._config.agent_port),
                    token=token,
                )
                if await self._answers(handle):
                    return handle
            if time.monotonic() > deadline:
                raise RuntimeUnavailable(
                    f"sandbox {runtime_id} not ready in {self._config.ready_timeout:g} s"
                )
            await asyncio.sleep(self._config.poll_interval)

    async def _answers(self, handle: Handle) -> bool:
        try:
            agent = await AgentClient.connect(handle.endpoint, handle.token, timeout=2.0)
        except AgentUnavailable:
            return False
        try:
            await agent.ping()
        except DriverError:
            return False
        finally:
            await agent.close()
        return True

    async def destroy(self, runtime_id: str) -> None:
        """Delete the Pod, its Secret and its NetworkPolicy; idempotent."""
        self._destroyed.add(runtime_id)
        namespace, name = self._config.namespace, names.object_name(runtime_id)
        deletes: tuple[tuple[Callable[..., Any], str, dict[str, Any]], ...] = (
            (self._core.delete_namespaced_pod, name, {"grace_period_seconds": 0}),
            (self._net.delete_namespaced_network_policy, name, {}),
            (self._core.delete_namespaced_secret, names.secret_name(runtime_id), {}),
        )
        for delete, object_name, options in deletes:
            try:
                await self._call(delete, object_name, namespace, **options)
            except ApiException as exc:
                if exc.status != 404:
                    raise DriverError(f"cannot delete {object_name}: {exc.reason}") from exc

    async def _tokens(self) -> dict[str, str]:
        listing = await self._call(
            self._core.list_namespaced_secret, self._config.namespace, label_selector=names.SELECTOR
        )
        tokens: dict[str, str] = {}
        for item in listing.items:
            runtime_id = _runtime_id(item)
            encoded = (item.data or {}).get(manifests.TOKEN_KEY)
            if runtime_id and encoded:
                tokens[runtime_id] = base64.b64decode(encoded).decode()
        return tokens

    async def _pods(self) -> list[Any]:
        listing = await self._call(
            self._core.list_namespaced_pod, self._config.namespace, label_selector=names.SELECTOR
        )
        return list(listing.items)

    def _handle(self, pod: Any, tokens: dict[str, str]) -> Handle | None:
        runtime_id = _runtime_id(pod)
        if runtime_id is None or runtime_id not in tokens or pod_failure(pod) is not None:
            return None
        if pod.status is None or pod.status.phase != "Running" or not pod.status.pod_ip:
            return None
        endpoint = _endpoint(pod.status.pod_ip, self._config.agent_port)
        return Handle(
            runtime_id=runtime_id, owner=_owner(pod), endpoint=endpoint, token=tokens[runtime_id]
        )

    async def list(self) -> list[Handle]:
        """Running sandbox Pods of this deployment (by label), with their tokens."""
        pods, tokens = await asyncio.gather(self._pods(), self._tokens())
        handles = (self._handle(pod, tokens) for pod in pods)
        return [handle for handle in handles if handle is not None]

    async def inspect(self, runtime_id: str) -> Handle | None:
        """The sandbox's handle if its Pod is running."""
        namespace = self._config.namespace
        try:
            pod = await self._call(
                self._core.read_namespaced_pod, names.object_name(runtime_id), namespace
            )
            secret = await self._call(
                self._core.read_namespaced_secret, names.secret_name(runtime_id), namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise DriverError(f"cannot read sandbox {runtime_id}: {exc.reason}") from exc
        encoded = (secret.data or {}).get(manifests.TOKEN_KEY, "")
        return self._handle(pod, {runtime_id: base64.b64decode(encoded).decode()})

    async def stats(self, runtime_id: str) -> RuntimeStats | None:
        """The memory limit from the Pod; CPU (a rate, in cores) and memory in use from
        the metrics API where the cluster serves it, else None. No cumulative CPU time
        or process count: the metrics API has neither."""
        namespace, name = self._config.namespace, names.object_name(runtime_id)
        metrics_api = k8s.CustomObjectsApi(self._api)

        async def metrics() -> dict[str, Any] | None:
            try:
                found: Any = await self._call(
                    metrics_api.get_namespaced_custom_object,
                    METRICS_GROUP,
                    METRICS_VERSION,
                    namespace,
                    "pods",
                    name,
                )
            except (ApiException, OSError) as exc:  # no metrics-server, or not scraped yet
                log.debug("pod_metrics_unavailable", runtime_id=runtime_id, error=str(exc))
                return None
            return found if isinstance(found, dict) else None

        usage = asyncio.create_task(metrics())
        try:
            pod = await self._call(self._core.read_namespaced_pod, name, namespace)
        except ApiException as exc:
            usage.cancel()
            if exc.status == 404:
                return None
            raise DriverError(f"cannot read sandbox {runtime_id}: {exc.reason}") from exc
        return pod_stats(pod, await usage)

    async def failure(self, runtime_id: RuntimeId) -> str:
        """What the Pod's status says (Evicted, an exit code…), or that it disappeared."""
        try:
            pod = await self._call(
                self._core.read_namespaced_pod,
                names.object_name(runtime_id),
                self._config.namespace,
            )
        except ApiException as exc:
            if exc.status == 404:
                return GONE
            raise DriverError(f"cannot read sandbox {runtime_id}: {exc.reason}") from exc
        return pod_failure(pod) or "the pod is not running"

    async def failures(self) -> AsyncGenerator[SandboxFailure, None]:
        """Report, once each, sandboxes whose Pod failed, was evicted or disappeared.

        Polls the Pod list every ``watch_interval``. A Pod this process destroyed is not
        reported; other replicas' destroys are, so consumers act only on sandboxes that
        are still running in their store.
        """
        seen: set[RuntimeId] = set()
        reported: set[RuntimeId] = set()
        while True:
            try:
                pods = await self._pods()
            except (ApiException, OSError) as exc:
                log.warning("sandbox_watch_failed", error=str(exc))
                await asyncio.sleep(self._config.watch_interval)
                continue
            present: set[RuntimeId] = set()
            for pod in pods:
                runtime_id = _runtime_id(pod)
                if runtime_id is None or runtime_id in self._destroyed:
                    continue
                present.add(runtime_id)
                reason = pod_failure(pod)
                if reason is not None and runtime_id not in reported:
                    reported.add(runtime_id)
                    yield SandboxFailure(runtime_id, reason)
            for gone in seen - present - self._destroyed - reported:
                reported.add(gone)
                yield SandboxFailure(gone, GONE)
            seen = present
            reported &= present
            await asyncio.sleep(self._config.watch_interval)

    async def close(self) -> None:
        """Close the API connection pool; sandboxes keep running."""
        await asyncio.to_thread(self._api.close)
