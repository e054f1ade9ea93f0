"""Templates through the real stack, on both drivers: built once from the test's package
mirror (its build followed over the WebSocket), then a layer every sandbox and warm pool of
the template finds at /opt/template (bound read-only by the local driver, copied into each
Pod by the Kubernetes driver); owned like sandboxes, kept while in use, and failing builds
say why."""

import asyncio
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
import websockets
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from llmsafespace.contracts import TemplateStatus
from llmsafespace.devstack import Stack
from llmsafespace.sdk import AsyncSandbox, AsyncTemplate, NotFoundError

from ..kubernetes.cluster import FakeCluster
from .test_packages import build_wheel, serve_directory

pytestmark = pytest.mark.stack
BUILD_SECONDS = 240


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(package name, index URL): a one-package PEP 503 index on 127.0.0.1."""
    root: Path = tmp_path_factory.mktemp("template-index")
    name = f"tplpkg_{secrets.token_hex(4)}"
    build_wheel(root, name, "1.0", "ANSWER = 42\n")
    server, url = serve_directory(root)
    yield name, f"{url}/simple/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def mirrored(stack: Stack, index: tuple[str, str]) -> AsyncIterator[str]:
    """exec-svc restarted with PACKAGE_INDEX_URL at the test's index, for the module."""
    replicas = stack.replicas["exec-svc"]
    originals = [service.env for service in replicas]
    async with stack.stopped("exec-svc"):
        for service, original in zip(replicas, originals, strict=True):
            service.env = {**original, "PACKAGE_INDEX_URL": index[1]}  # type: ignore[misc]
    try:
        yield index[0]
    finally:
        async with stack.stopped("exec-svc"):
            for service, original in zip(replicas, originals, strict=True):
                service.env = original  # type: ignore[misc]


@pytest.fixture(scope="module")
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=120) as client:
        yield client


async def follow_build(stack: Stack, template: dict[str, Any]) -> list[dict[str, Any]]:
    """The build's messages, from its first, over the builder's WebSocket."""
    url = stack.api_url.replace("http://", "ws://")
    url += f"/sandboxes/{template['buildSandboxId']}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    execution_id = template["buildExecutionId"]
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": 0}))
        while not messages or messages[-1]["type"] not in ("execution_complete", "error"):
            message = json.loads(await asyncio.wait_for(ws.recv(), BUILD_SECONDS))
            if message.get("executionId") == execution_id or message["type"] == "error":
                messages.append(message)
    return messages


async def settled(api: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """The template once its build has ended (ready or failed)."""
    async with asyncio.timeout(BUILD_SECONDS):
        while True:
            got = await api.get(f"/templates/{name}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            if body["status"] != "building":
                return body
            await asyncio.sleep(0.2)


async def available(api: httpx.AsyncClient, pool: str) -> None:
    """Once the pool has a ready sandbox."""
    async with asyncio.timeout(BUILD_SECONDS):
        while True:
            status = (await api.get(f"/warmpools/{pool}/status")).json()
            if status["availablePods"] >= 1:
                return
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def template(
    stack: Stack, admin: httpx.AsyncClient, mirrored: str
) -> AsyncIterator[dict[str, Any]]:
    """A template built from the mirror's package, a setup command and env; its build's
    streamed messages under `messages`."""
    name = f"tpl-{secrets.token_hex(4)}"
    created = await admin.post(
        "/templates",
        json={
            "name": name,
            "packages": {"pip": [mirrored]},
            "setupCommands": ["echo made-by-setup > greeting.txt"],
            "env": {"GREETING": "hello"},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "building", body
    assert "layer" not in body, body
    messages = await follow_build(stack, body)
    ready = await settled(admin, name)
    yield {**ready, "messages": messages, "package": mirrored}
    await admin.delete(f"/templates/{name}")


async def run(api: httpx.AsyncClient, sandbox_id: str, kind: str, content: str) -> dict[str, Any]:
    executed = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": kind, "content": content}
    )
    assert executed.status_code == 200, executed.text
    result: dict[str, Any] = executed.json()
    return result


PROBE = (
    "import os, {package}\n"
    "print({package}.ANSWER, os.environ['GREETING'], open('/opt/template/greeting.txt').read())"
)


async def test_a_template_build_is_streamed_and_its_sandboxes_have_its_packages_env_and_files(
    admin: httpx.AsyncClient, template: dict[str, Any], cluster: FakeCluster | None
) -> None:
    assert template["status"] == "ready", template
    kinds = [message["type"] for message in template["messages"]]
    assert kinds[0] == "execution_start", kinds
    assert kinds[-1] == "execution_complete", kinds
    output = "".join(m["content"] for m in template["messages"] if m["type"] == "output")
    assert f"Successfully installed {template['package']}" in output, output
    created = await admin.post("/sandboxes", json={"template": template["name"]})
    assert created.status_code == 201, created.text
    sandbox = created.json()
    try:
        assert sandbox["runtime"] == "python:3.11", sandbox
        probe = await run(admin, sandbox["id"], "code", PROBE.format(package=template["package"]))
        assert probe["stdout"].split() == ["42", "hello", "made-by-setup"], str(probe)
        write = await run(
            admin, sandbox["id"], "command", "echo changed > /opt/template/greeting.txt"
        )
        if cluster is None:  # the local driver binds the one layer read-only
            assert write["exitCode"] != 0, write
        else:  # each Pod has its own copy: a change stays in it
            other = await admin.post("/sandboxes", json={"template": template["name"]})
            assert other.status_code == 201, other.text
            try:
                probe = await run(
                    admin, other.json()["id"], "code", PROBE.format(package=template["package"])
                )
                assert probe["stdout"].split() == ["42", "hello", "made-by-setup"], str(probe)
            finally:
                await admin.delete(f"/sandboxes/{other.json()['id']}")
        # Still in use: the template cannot go.
        refused = await admin.delete(f"/templates/{template['name']}")
        assert refused.status_code == 409, refused.text
        assert sandbox["id"] in refused.json()["error"]["message"], refused.text
    finally:
        await admin.delete(f"/sandboxes/{sandbox['id']}")


async def test_a_snapshot_keeps_its_sandboxes_template_and_a_restore_binds_it_again(
    admin: httpx.AsyncClient, template: dict[str, Any]
) -> None:
    created = await admin.post("/sandboxes", json={"template": template["name"]})
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    try:
        taken = await admin.post(f"/sandboxes/{source}/snapshots", json={"name": "of-template"})
        assert taken.status_code == 201, taken.text
    finally:
        await admin.delete(f"/sandboxes/{source}")
    snapshot = taken.json()
    assert snapshot["template"] == template["name"], snapshot
    # The restore does not name the template: the snapshot brings it.
    restored = await admin.post("/sandboxes", json={"snapshot": snapshot["id"]})
    assert restored.status_code == 201, restored.text
    sandbox_id = restored.json()["id"]
    try:
        probe = await run(admin, sandbox_id, "code", PROBE.format(package=template["package"]))
        assert probe["stdout"].split() == ["42", "hello", "made-by-setup"], str(probe)
    finally:
        await admin.delete(f"/sandboxes/{sandbox_id}")
        await admin.delete(f"/snapshots/{snapshot['id']}")


async def test_a_warm_pool_of_a_template_serves_creates_naming_it_warm(
    admin: httpx.AsyncClient, template: dict[str, Any]
) -> None:
    pool = f"wp-{secrets.token_hex(4)}"
    created = await admin.post(
        "/warmpools", json={"name": pool, "template": template["name"], "minSize": 1}
    )
    assert created.status_code == 201, created.text
    try:
        await available(admin, pool)
        refused = await admin.delete(f"/templates/{template['name']}")
        assert refused.status_code == 409, refused.text
        assert pool in refused.json()["error"]["message"], refused.text
        sandbox = await admin.post("/sandboxes", json={"template": template["name"]})
        assert sandbox.status_code == 201, sandbox.text
        assert sandbox.json()["fromWarmPool"] is True, sandbox.json()
        sandbox_id = sandbox.json()["id"]
        try:
            probe = await run(admin, sandbox_id, "code", PROBE.format(package=template["package"]))
            assert probe["stdout"].split() == ["42", "hello", "made-by-setup"], str(probe)
        finally:
            await admin.delete(f"/sandboxes/{sandbox_id}")
        # A create without the template does not take the template's warm sandboxes.
        plain = await admin.post("/sandboxes", json={"metadata": {"probe": "plain"}})
        assert plain.status_code == 201, plain.text
        try:
            missing = await run(admin, plain.json()["id"], "command", "ls /opt/template")
            assert missing["exitCode"] != 0, missing
        finally:
            await admin.delete(f"/sandboxes/{plain.json()['id']}")
    finally:
        await admin.delete(f"/warmpools/{pool}")


async def test_another_users_template_is_not_found_and_not_usable(
    second_user_api: httpx.AsyncClient, template: dict[str, Any]
) -> None:
    got = await second_user_api.get(f"/templates/{template['name']}")
    assert got.status_code == 404, got.text
    listed = await second_user_api.get("/templates")
    assert template["name"] not in [t["name"] for t in listed.json()["templates"]]
    deleted = await second_user_api.delete(f"/templates/{template['name']}")
    assert deleted.status_code == 404, deleted.text
    used = await second_user_api.post("/sandboxes", json={"template": template["name"]})
    assert used.status_code == 400, used.text
    assert template["name"] not in used.json()["error"]["details"]["available"], used.text


async def test_an_unknown_template_is_a_400_naming_the_ready_ones(
    admin: httpx.AsyncClient, template: dict[str, Any]
) -> None:
    created = await admin.post("/sandboxes", json={"template": "no-such-template"})
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert error["code"] == "invalid_request", error
    assert template["name"] in error["details"]["available"], error
    assert template["name"] in error["message"], error
    pool = await admin.post("/warmpools", json={"name": "wp-unknown", "template": "nope"})
    assert pool.status_code == 400, pool.text


@pytest.mark.local_driver("the node runtime's image is not built for the fake kubelet")
async def test_a_template_of_another_runtime_is_used_without_naming_it(
    admin: httpx.AsyncClient,
) -> None:
    name = f"tpl-node-{secrets.token_hex(4)}"
    created = await admin.post(
        "/templates",
        json={"name": name, "runtime": "node:20", "setupCommands": ["echo node > made.txt"]},
    )
    assert created.status_code == 201, created.text
    pool = f"wp-node-{secrets.token_hex(4)}"
    try:
        assert (await settled(admin, name))["status"] == "ready"
        sandbox = await admin.post("/sandboxes", json={"template": name})
        assert sandbox.status_code == 201, sandbox.text
        assert sandbox.json()["runtime"] == "node:20", sandbox.text
        result = await run(admin, sandbox.json()["id"], "code", "console.log(6 * 7)")
        assert result["stdout"] == "42\n", result
        await admin.delete(f"/sandboxes/{sandbox.json()['id']}")
        made = await admin.post("/warmpools", json={"name": pool, "template": name, "minSize": 1})
        assert made.status_code == 201, made.text
        assert made.json()["spec"]["runtime"] == "node:20", made.text
        other = await admin.post("/sandboxes", json={"template": name, "runtime": "python:3.11"})
        assert other.status_code == 400, other.text
        assert "omit `runtime`" in other.json()["error"]["message"], other.text
    finally:
        await admin.delete(f"/warmpools/{pool}")
        await admin.delete(f"/templates/{name}")


async def test_a_build_that_fails_says_why_with_its_log(
    admin: httpx.AsyncClient, mirrored: str
) -> None:
    name = f"tpl-bad-{secrets.token_hex(4)}"
    missing = f"nosuchpkg-{secrets.token_hex(4)}"
    created = await admin.post(
        "/templates",
        json={"name": name, "packages": {"pip": [mirrored, missing]}, "setupCommands": ["true"]},
    )
    assert created.status_code == 201, created.text
    try:
        failed = await settled(admin, name)
        assert failed["status"] == "failed", failed
        assert "pip install failed" in failed["reason"], failed
        assert missing in failed["reason"] + failed["logTail"], failed
        used = await admin.post("/sandboxes", json={"template": name})
        assert used.status_code == 400, used.text
        assert "failed" in used.json()["error"]["message"], used.text
        assert name not in used.json()["error"]["details"]["available"], "the ready ones"
        # The builder is gone with the build.
        builder = await admin.get(f"/sandboxes/{failed['buildSandboxId']}")
        assert builder.json()["status"] == "terminated", builder.text
    finally:
        await admin.delete(f"/templates/{name}")


async def test_a_failing_setup_command_fails_the_build_with_its_output(
    admin: httpx.AsyncClient,
) -> None:
    name = f"tpl-setup-{secrets.token_hex(4)}"
    created = await admin.post(
        "/templates",
        json={"name": name, "setupCommands": ["true", "echo about-to-fail >&2; exit 3", "true"]},
    )
    assert created.status_code == 201, created.text
    try:
        failed = await settled(admin, name)
        assert failed["status"] == "failed", failed
        assert failed["reason"] == "setup command 2 failed (exit code 3): about-to-fail", failed
        assert "about-to-fail" in failed["logTail"], failed
    finally:
        await admin.delete(f"/templates/{name}")


async def test_only_admins_publish_templates(second_user_api: httpx.AsyncClient) -> None:
    created = await second_user_api.post(
        "/templates", json={"name": f"tpl-{secrets.token_hex(4)}", "public": True}
    )
    assert created.status_code == 403, created.text
    bad = await second_user_api.post(
        "/templates", json={"name": "tpl-x", "packages": {"pip": ["not a name!"]}}
    )
    assert bad.status_code == 400, bad.text


async def cli(stack: Stack, *args: str) -> str:
    """The `llmsafespace` command's output; it must succeed."""
    env = {
        **os.environ,
        "LLMSAFESPACE_API_URL": stack.api_url,
        "LLMSAFESPACE_API_KEY": stack.admin_key,
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("llmsafespace")),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_sdk_and_the_cli_build_list_use_and_delete_a_template(stack: Stack) -> None:
    client = {"api_url": stack.api_url, "api_key": stack.admin_key}
    name = f"tpl-sdk-{secrets.token_hex(4)}"
    template = await AsyncTemplate.create(
        name, setup_commands=["echo sdk > note.txt"], env={"FROM_SDK": "yes"}, **client
    )
    assert template.status is TemplateStatus.BUILDING
    await template.wait(BUILD_SECONDS)
    assert template.status is TemplateStatus.READY, template.info
    assert name in [t.name for t in await AsyncTemplate.list(**client)]
    async with await AsyncSandbox.create(template=name, **client) as sandbox:
        result = await sandbox.run_command("cat /opt/template/note.txt; echo $FROM_SDK")
        assert result.stdout.split() == ["sdk", "yes"], result
    listed = await cli(stack, "templates", "ls")
    assert name in listed, listed
    await cli(stack, "templates", "rm", name)
    with pytest.raises(NotFoundError):
        await AsyncTemplate.get(name, **client)


async def test_an_mcp_session_creates_a_sandbox_from_a_template(
    stack: Stack, template: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    url = stack.api_url.removesuffix("/api/v1") + "/mcp"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http_client,
        Client(streamable_http_client(url, http_client=http_client)) as client,
    ):
        created = await client.call_tool("create_sandbox", {"template": template["name"]})
        assert not created.is_error, created.content
        assert isinstance(created.content[0], types.TextContent)
        sandbox = json.loads(created.content[0].text)
        assert sandbox["runtime"] == "python:3.11", sandbox
        args = {"sandbox_id": sandbox["sandbox_id"]}
        try:
            code = PROBE.format(package=template["package"])
            probe = await client.call_tool("run_code", {"code": code, **args})
            assert isinstance(probe.content[0], types.TextContent)
            assert json.loads(probe.content[0].text)["stdout"].split() == [
                "42",
                "hello",
                "made-by-setup",
            ], probe.content
        finally:
            await client.call_tool("terminate_sandbox", args)
