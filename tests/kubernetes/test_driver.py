"""The Kubernetes driver against the in-memory API server, with real agents as Pods."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from llmsafespace.runtime import (
    AgentClient,
    DriverError,
    Handle,
    KeepsTemplates,
    KubernetesConfig,
    KubernetesDriver,
    NetworkRule,
    RuntimeId,
    RuntimeOwner,
    RuntimeSpec,
    RuntimeUnavailable,
    SandboxFailure,
    UnknownRuntime,
    UnsupportedSpec,
)
from llmsafespace.runtime.kubernetes import names
from llmsafespace.runtime.local import bwrap
from llmsafespace.runtime.userland.environment import AGENT_MAIN

from .apiserver import FakeApiServer
from .conftest import NAMESPACE
from .kubelet import FakeKubelet


async def _next_failure(driver: KubernetesDriver) -> SandboxFailure:
    failures = driver.failures()
    try:
        return await asyncio.wait_for(anext(failures), 10)
    finally:
        await failures.aclose()


async def test_create_runs_code_over_tcp_and_destroy_removes_everything(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    handle = await driver.create(RuntimeSpec(runtime_id="sb-one", env={"GREETING": "hi"}))
    assert handle.endpoint.startswith("tcp://127.")
    agent = await AgentClient.connect(handle.endpoint, handle.token)
    try:
        await agent.run_code("x = 20", timeout=10)
        result = await agent.run_code("import os; print(os.environ['GREETING']); x + 1", timeout=10)
    finally:
        await agent.close()
    assert (result.stdout, result.result) == ("hi\n", "21")
    assert await driver.inspect("sb-one") == handle
    assert await driver.list() == [handle]

    await driver.destroy("sb-one")
    assert apiserver.objects == {}
    assert await driver.inspect("sb-one") is None
    await driver.destroy("sb-one")  # idempotent


async def test_pod_is_locked_down_and_labelled(
    driver: KubernetesDriver, apiserver: FakeApiServer, config: KubernetesConfig
) -> None:
    spec = RuntimeSpec(
        runtime_id="sb-Locked_Down",
        owner=RuntimeOwner.SANDBOX_SVC,
        cpu=0.5,
        memory_bytes=256 * 2**20,
    )
    handle = await driver.create(spec)
    assert handle.owner is RuntimeOwner.SANDBOX_SVC
    name = names.object_name("sb-Locked_Down")
    pod = apiserver.get("pods", NAMESPACE, name)
    assert pod is not None
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/part-of": "llmsafespace",
        "app.kubernetes.io/component": "sandbox",
        "llmsafespace.dev/sandbox-id": "sb-Locked_Down",
        "llmsafespace.dev/pool": "none",
        "llmsafespace.dev/owner": "sandbox-svc",  # who reclaims it, never read from the id
    }
    assert [each.owner for each in await driver.list()] == [RuntimeOwner.SANDBOX_SVC]
    pod_spec = pod["spec"]
    assert pod_spec["automountServiceAccountToken"] is False
    assert "runtimeClassName" not in pod_spec  # standard level: the cluster default
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod_spec["containers"]
    assert container["image"] == "ghcr.io/llmsafespace/runtime-python:3.11"
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"]["limits"]["cpu"] == "500m"
    assert container["resources"]["limits"]["memory"] == str(256 * 2**20)
    assert container["resources"]["requests"] == container["resources"]["limits"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["workspace"]["emptyDir"]["sizeLimit"] == str(spec.storage_bytes)
    assert volumes["tmp"]["emptyDir"]["sizeLimit"] == str(config.tmp_bytes)

    secret = apiserver.get("secrets", NAMESPACE, names.secret_name("sb-Locked_Down"))
    policy = apiserver.get("networkpolicies", NAMESPACE, name)
    assert secret is not None
    assert policy is not None
    assert base64.b64decode(secret["data"]["token"]).decode() == handle.token
    owner = {"kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}
    for owned in (secret, policy):
        (ref,) = owned["metadata"]["ownerReferences"]
        assert {key: ref[key] for key in owner} == owner
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == []
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["from"] == [
        {"podSelector": {"matchLabels": config.exec_pod_labels}},
        {"podSelector": {"matchLabels": config.pool_pod_labels}},
        {"podSelector": {"matchLabels": config.sandbox_pod_labels}},
    ]
    assert ingress["ports"] == [{"protocol": "TCP", "port": config.agent_port}]

    # A missed Secret/policy delete leaks nothing: the collector follows the owner.
    apiserver.delete("pods", NAMESPACE, name)
    assert apiserver.objects == {}
    await driver.destroy("sb-Locked_Down")


async def test_unknown_runtime_names_the_available_ones(driver: KubernetesDriver) -> None:
    with pytest.raises(UnknownRuntime, match=r"python:3\.11"):
        await driver.create(RuntimeSpec(runtime_id="sb-x", runtime="cobol:1"))


async def test_creating_an_existing_sandbox_fails(driver: KubernetesDriver) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-twice"))
    with pytest.raises(DriverError, match="already exists"):
        await driver.create(RuntimeSpec(runtime_id="sb-twice"))
    await driver.destroy("sb-twice")


async def test_an_evicted_pod_is_reported_and_no_longer_listed(
    driver: KubernetesDriver, kubelet: FakeKubelet, apiserver: FakeApiServer
) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-evicted"))
    failures = driver.failures()
    first = asyncio.ensure_future(anext(failures))
    await apiserver.pods_listed()  # the watcher has seen the pod running
    kubelet.evict(names.object_name("sb-evicted"))
    failure = await asyncio.wait_for(first, 10)
    await failures.aclose()
    assert failure == SandboxFailure("sb-evicted", "Evicted: The node was low on memory.")
    assert await driver.list() == []
    assert await driver.failure("sb-evicted") == failure.reason  # what a reconcile sees
    assert await driver.inspect("sb-evicted") is None
    await driver.destroy("sb-evicted")


async def test_a_crashed_agent_is_reported_with_its_exit_code(
    driver: KubernetesDriver, kubelet: FakeKubelet
) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-crash"))
    kubelet.crash(names.object_name("sb-crash"))
    failure = await _next_failure(driver)
    assert failure.runtime_id == "sb-crash"
    assert "exit code -9" in failure.reason
    await driver.destroy("sb-crash")


async def test_a_pod_deleted_behind_our_back_is_reported_as_vanished(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-gone"))
    await driver.create(RuntimeSpec(runtime_id="sb-kept"))
    failures = driver.failures()
    first = asyncio.ensure_future(anext(failures))
    await apiserver.pods_listed()  # the watcher has seen both pods
    apiserver.delete("pods", NAMESPACE, names.object_name("sb-gone"))
    failure = await asyncio.wait_for(first, 10)
    await failures.aclose()
    assert failure == SandboxFailure("sb-gone", "the pod disappeared")
    assert await driver.failure("sb-gone") == failure.reason
    assert [h.runtime_id for h in await driver.list()] == ["sb-kept"]
    await driver.destroy("sb-kept")


async def test_destroyed_sandboxes_are_not_reported(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-quiet"))
    failures = driver.failures()
    first = asyncio.ensure_future(anext(failures))
    await apiserver.pods_listed()  # the watcher has seen the pod
    await driver.destroy("sb-quiet")
    await apiserver.pods_listed(times=2)  # and has looked again since it went
    assert not first.done()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await failures.aclose()


async def test_a_pod_that_never_starts_fails_creation_and_is_cleaned_up(
    apiserver: FakeApiServer, config: KubernetesConfig
) -> None:
    # No kubelet: the pod stays Pending.
    driver = KubernetesDriver(config.model_copy(update={"ready_timeout": 0.5}))
    try:
        with pytest.raises(DriverError, match=r"not ready in 0\.5 s"):
            await driver.create(RuntimeSpec(runtime_id="sb-pending"))
    finally:
        await driver.close()
    assert apiserver.objects == {}


async def test_high_security_uses_gvisor_and_network_ports_open_only_public_egress(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    spec = RuntimeSpec(runtime_id="sb-high", security_level="high", network_ports=(443,))
    await driver.create(spec)
    name = names.object_name("sb-high")
    pod = apiserver.get("pods", NAMESPACE, name)
    policy = apiserver.get("networkpolicies", NAMESPACE, name)
    assert pod is not None
    assert policy is not None
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    dns, https = policy["spec"]["egress"]
    assert dns == {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    (public,) = https["to"]
    assert public["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8"} <= set(public["ipBlock"]["except"])
    await driver.destroy("sb-high")


async def test_egress_cidrs_become_ip_blocks_and_host_names_are_refused(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    rules = (
        NetworkRule(ports=(443,), cidrs=("11.99.0.0/24",)),
        NetworkRule(ports=(22,)),
    )
    await driver.create(
        RuntimeSpec(runtime_id="sb-cidrs", network_ports=(22, 443), network_rules=rules)
    )
    policy = apiserver.get("networkpolicies", NAMESPACE, names.object_name("sb-cidrs"))
    assert policy is not None
    _, https, ssh = policy["spec"]["egress"]
    assert https == {
        "to": [{"ipBlock": {"cidr": "11.99.0.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert ssh["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert ssh["ports"] == [{"protocol": "TCP", "port": 22}]
    await driver.destroy("sb-cidrs")

    named = (NetworkRule(ports=(443,), hosts=("pypi.org",)),)
    with pytest.raises(UnsupportedSpec, match="give `cidrs` instead"):
        await driver.create(
            RuntimeSpec(runtime_id="sb-named", network_ports=(443,), network_rules=named)
        )
    assert apiserver.get("pods", NAMESPACE, names.object_name("sb-named")) is None


async def test_egress_cidrs_holding_private_ranges_leave_them_unreachable(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    wide = ("0.0.0.0/0", "8.0.0.0/5", "::/0")
    rules = (NetworkRule(ports=(443,), cidrs=wide),)
    spec = RuntimeSpec(runtime_id="sb-wide", network_ports=(443,), network_rules=rules)
    await driver.create(spec)
    policy = apiserver.get("networkpolicies", NAMESPACE, names.object_name("sb-wide"))
    assert policy is not None
    _, https = policy["spec"]["egress"]
    anywhere, eight, v6 = (block["ipBlock"] for block in https["to"])
    assert [anywhere["cidr"], eight["cidr"], v6["cidr"]] == list(wide)
    assert {
        "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16",
    } <= set(anywhere["except"])  # fmt: skip
    assert eight["except"] == ["10.0.0.0/8"]
    assert {"fc00::/7", "fe80::/10", "::ffff:0:0/96"} <= set(v6["except"])
    await driver.destroy("sb-wide")

    inside = (NetworkRule(ports=(443,), cidrs=("198.18.0.0/16",)),)
    with pytest.raises(UnsupportedSpec, match=r"198\.18\.0\.0/16 is loopback, private"):
        await driver.create(
            RuntimeSpec(runtime_id="sb-inside", network_ports=(443,), network_rules=inside)
        )
    assert apiserver.get("pods", NAMESPACE, names.object_name("sb-inside")) is None


async def test_stats_report_the_memory_limit_and_leave_unmeasured_use_unknown(
    driver: KubernetesDriver,
) -> None:
    await driver.create(RuntimeSpec(runtime_id="sb-stats", memory_bytes=256 * 2**20))
    stats = await driver.stats("sb-stats")
    assert stats is not None
    assert stats.memory_limit_bytes == 256 * 2**20
    # This API server serves no metrics.k8s.io (no metrics-server): use is unknown, not 0.
    assert (stats.cpu_ms, stats.cpu_cores, stats.memory_bytes, stats.pids) == (None,) * 4
    await driver.destroy("sb-stats")
    assert await driver.stats("sb-stats") is None


async def test_pods_get_the_sandbox_environment_of_the_local_driver(
    driver: KubernetesDriver, apiserver: FakeApiServer, tmp_path: Path
) -> None:
    """PIP_TARGET, LANG, offline pip/npm and its hint, NODE_PATH and the tools on PATH, as a
    bubblewrap sandbox gets them: one source, ``sandbox_environment``; a create's env wins."""
    offline = RuntimeSpec(runtime_id="sb-env-off", env={"LANG": "en_US.UTF-8"})
    networked = RuntimeSpec(runtime_id="sb-env-on", network_ports=(443,))
    pods = {}
    for spec in (offline, networked):
        await driver.create(spec)
        pod = apiserver.get("pods", NAMESPACE, names.object_name(spec.runtime_id))
        assert pod is not None
        (container,) = pod["spec"]["containers"]
        pods[spec.runtime_id] = {each["name"]: each["value"] for each in container["env"]}
    env = pods["sb-env-off"]
    assert env["PATH"].split(":")[0] == "/opt/runtime/bin"
    assert env["PIP_TARGET"] == "/workspace/.packages"
    assert env["NODE_PATH"] == "/workspace/node_modules"
    assert env["HOME"] == "/workspace"
    assert env["LANG"] == "en_US.UTF-8"  # the create's own
    assert env["PIP_NO_INDEX"] == "1"
    assert env["NPM_CONFIG_OFFLINE"] == "true"
    assert env["LLMSAFESPACE_OFFLINE"] == "1"  # the hook and the npm wrapper say why
    user_path = env["LLMSAFESPACE_USER_PYTHONPATH"].split(":")
    assert user_path == ["/workspace/.packages", "/opt/runtime/hooks"]
    assert pods["sb-env-on"]["LANG"] == "C.UTF-8"
    assert not {"PIP_NO_INDEX", "NPM_CONFIG_OFFLINE", "LLMSAFESPACE_OFFLINE"} & set(
        pods["sb-env-on"]
    )

    def local(tcp_ports: tuple[int, ...] | None, extra: dict[str, str]) -> dict[str, str]:
        profile = bwrap.Profile(
            interpreter="/usr/bin/python3",
            workspace=tmp_path,
            run_dir=tmp_path,
            agent_dir=tmp_path,
            etc_dir=tmp_path,
            tmp_bytes=2**20,
            env=extra,
            tcp_ports=tcp_ports,
        )
        return {k: v for k, v in bwrap.environment(profile).items() if k != "PYTHONPATH"}

    assert env == local(None, {"LANG": "en_US.UTF-8"})
    assert pods["sb-env-on"] == local((443,), {})


async def _code(handle: Handle, code: str) -> str | None:
    agent = await AgentClient.connect(handle.endpoint, handle.token)
    try:
        return (await agent.run_code(code, timeout=10)).result
    finally:
        await agent.close()


async def test_a_kept_layer_is_copied_into_each_sandbox_of_the_template_until_dropped(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    builder = await driver.create(RuntimeSpec(runtime_id="sb-builder"))
    built = (
        "import os; os.makedirs('/workspace/.packages/tplmod', exist_ok=True)\n"
        "open('/workspace/.packages/tplmod/__init__.py', 'w').write('ANSWER = 42')\n"
        "open('/workspace/note.txt', 'w').write('kept')"
    )
    await _code(builder, built)
    assert isinstance(driver, KeepsTemplates)
    await driver.keep_layer(RuntimeId("sb-builder"), "tpl-one-abcd")
    await driver.destroy("sb-builder")
    assert [handle.runtime_id for handle in await driver.list()] == []  # a layer is no sandbox

    handle = await driver.create(RuntimeSpec(runtime_id="sb-of-tpl", template_layer="tpl-one-abcd"))
    pod = apiserver.get("pods", NAMESPACE, names.object_name("sb-of-tpl"))
    assert pod is not None
    (container,) = pod["spec"]["containers"]
    assert {"name": "template", "mountPath": "/opt/template"} in container["volumeMounts"]
    env = {each["name"]: each["value"] for each in container["env"]}
    assert "/opt/template/.packages" in env["LLMSAFESPACE_USER_PYTHONPATH"].split(":")
    read = "open('/opt/template/note.txt').read() + str(__import__('tplmod').ANSWER)"
    assert await _code(handle, read) == "'kept42'"  # before create returned, importable
    assert await _code(handle, "import os; os.listdir('/workspace')") == "[]"

    await driver.drop_layer("tpl-one-abcd")
    await driver.drop_layer("tpl-one-abcd")  # idempotent
    with pytest.raises(RuntimeUnavailable, match="build the template again"):
        await driver.create(RuntimeSpec(runtime_id="sb-too-late", template_layer="tpl-one-abcd"))
    assert apiserver.get("pods", NAMESPACE, names.object_name("sb-too-late")) is None


async def test_pods_start_the_agent_as_the_local_driver_does(
    driver: KubernetesDriver, apiserver: FakeApiServer
) -> None:
    """`python -c AGENT_MAIN`, not `-m`: one program for both drivers, without runpy
    (its import is checked on the local driver's agent)."""
    spec = RuntimeSpec(runtime_id="sb-agent-start")
    await driver.create(spec)
    pod = apiserver.get("pods", NAMESPACE, names.object_name(spec.runtime_id))
    assert pod is not None
    (container,) = pod["spec"]["containers"]
    assert container["command"][:4] == ["python3", "-P", "-c", AGENT_MAIN]
