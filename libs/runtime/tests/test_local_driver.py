"""Sandboxes of the local driver: isolation, teardown, adoption and sweep."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import llmsafespace.agent
import llmsafespace.runtime
from llmsafespace.runtime import (
    AgentClient,
    Handle,
    RuntimeId,
    RuntimeOwner,
    RuntimeSettings,
    RuntimeSpec,
    RuntimeUnavailable,
    UnknownRuntime,
    create_driver,
)
from llmsafespace.runtime.local import LocalConfig, LocalDriver, bwrap, sweep
from llmsafespace.runtime.local.mounts import (
    KEPT_TEMPLATES,
    MIN_IMAGE_BYTES,
    TEMPLATE_IDLE,
    _template,
    copy_sparse,
    disk_backed,
)
from llmsafespace.runtime.local.uids import UidRegistry

SECRET = "llmsafespace-test-secret-value"


def _uid_pids(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            status = Path("/proc", entry, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Uid", "").split("\t")[0] == str(uid) and not fields["State"].startswith("Z"):
            pids.append(int(entry))
    return pids


def _exists(path: str) -> bool:
    return os.path.exists(path)


def _fresh_runtime_dir() -> Path:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    return directory


def _uid_of(config: LocalConfig, sandbox_id: str) -> int:
    meta = (config.runtime_dir / "sandboxes" / sandbox_id / "meta.json").read_text()
    return int(meta.split('"uid":')[1].split(",")[0])


@pytest.fixture(scope="module")
async def handle(driver: LocalDriver) -> AsyncIterator[Handle]:
    os.environ["LLMSAFESPACE_TEST_SECRET"] = SECRET
    try:
        handle = await driver.create(RuntimeSpec(runtime_id="iso"))
    finally:
        del os.environ["LLMSAFESPACE_TEST_SECRET"]
    yield handle
    await driver.destroy("iso")


@pytest.fixture
async def client(handle: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(handle.endpoint, handle.token)
    yield client
    await client.close()


def test_the_public_names_are_exported_sorted() -> None:
    assert llmsafespace.runtime.__all__ == sorted(llmsafespace.runtime.__all__)


async def test_the_sandbox_runs_as_its_own_host_uid(handle: Handle, config: LocalConfig) -> None:
    uid = _uid_of(config, handle.runtime_id)
    assert config.uid_base <= uid < config.uid_base + config.uid_count
    assert _uid_pids(uid)


async def test_the_sandbox_sees_only_its_own_pids(client: AgentClient) -> None:
    result = await client.run_code(
        "import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())", timeout=10
    )
    assert result.result is not None
    assert max(eval(result.result)) < 50


async def test_the_sandbox_cannot_write_usr_or_etc(client: AgentClient) -> None:
    result = await client.run_command("touch /usr/x || touch /etc/x || echo written", timeout=10)
    assert "written" in result.stdout
    assert "Read-only file system" in result.stderr
    assert not _exists("/usr/x")
    assert not _exists("/etc/x")


async def test_pid_1_environ_holds_no_host_secret(client: AgentClient) -> None:
    result = await client.run_command("cat /proc/1/environ; env", timeout=10)
    assert result.exit_code == 0
    assert SECRET not in result.stdout


async def test_a_new_workspace_is_empty_and_the_sandbox_s_own(
    driver: LocalDriver, config: LocalConfig
) -> None:
    """Not even the image's ``lost+found`` (removed once from the template, not per create)."""
    handle = await driver.create(RuntimeSpec(runtime_id=RuntimeId("fresh")))
    try:
        client = await AgentClient.connect(handle.endpoint, handle.token)
        result = await client.run_command("ls -A /workspace; stat -c %u:%a /workspace", timeout=10)
        await client.close()
    finally:
        await driver.destroy(RuntimeId("fresh"))
    assert result.stdout == "1000:700\n"


async def test_the_workspace_is_writable_and_kernel_symbols_are_masked(
    client: AgentClient,
) -> None:
    command = "echo hi > /workspace/f && cat f; cat /proc/kallsyms"
    result = await client.run_command(command, timeout=10)
    assert result.stdout == "hi\n"
    assert result.exit_code != 0


async def test_an_unknown_runtime_names_the_available_ones(driver: LocalDriver) -> None:
    with pytest.raises(UnknownRuntime, match=r"python:3\.11"):
        await driver.create(RuntimeSpec(runtime_id="bad", runtime="ruby:9"))


async def test_destroy_leaves_no_process_and_no_dirs(
    driver: LocalDriver, config: LocalConfig
) -> None:
    handle = await driver.create(RuntimeSpec(runtime_id="doomed"))
    uid = _uid_of(config, "doomed")
    client = await AgentClient.connect(handle.endpoint, handle.token)
    await client.run_command("sleep 60 >/dev/null 2>&1 &", timeout=10)
    await client.close()
    await driver.destroy("doomed")
    await driver.destroy("doomed")
    assert _uid_pids(uid) == []
    assert not (config.runtime_dir / "sandboxes" / "doomed").exists()
    assert not (config.runtime_dir / "workspaces" / "doomed").exists()
    assert not (config.uid_registry_dir / str(uid)).exists()
    assert await driver.inspect("doomed") is None


async def test_a_second_driver_adopts_a_running_sandbox_with_its_owner(
    driver: LocalDriver, config: LocalConfig
) -> None:
    await driver.create(RuntimeSpec(runtime_id="adopted", owner=RuntimeOwner.WARMPOOL_SVC))
    await driver.close()
    other = create_driver(
        RuntimeSettings(driver="local", dir=config.runtime_dir), config.interpreters
    )
    try:
        listed = {handle.runtime_id: handle.owner for handle in await other.list()}
        assert listed["adopted"] is RuntimeOwner.WARMPOOL_SVC
        handle = await other.inspect("adopted")
        assert handle is not None
        client = await AgentClient.connect(handle.endpoint, handle.token)
        assert (await client.run_code("1 + 1", timeout=10)).result == "2"
        await client.close()
    finally:
        await other.destroy("adopted")


async def test_sweep_removes_every_sandbox_of_its_runtime_dir_and_no_other() -> None:
    directory, neighbour_dir = _fresh_runtime_dir(), _fresh_runtime_dir()
    config = LocalConfig(runtime_dir=directory)
    driver = LocalDriver(config)
    neighbour = LocalDriver(LocalConfig(runtime_dir=neighbour_dir))
    for name in ("a", "b"):
        await driver.create(RuntimeSpec(runtime_id=name))
    await neighbour.create(RuntimeSpec(runtime_id="a"))
    uids = [_uid_of(config, name) for name in ("a", "b")]
    neighbour_uid = _uid_of(LocalConfig(runtime_dir=neighbour_dir), "a")
    assert neighbour_uid not in uids, "uids are host-wide: two runtime dirs never share one"
    assert sweep(directory) == 2
    assert all(_uid_pids(uid) == [] for uid in uids)
    assert await driver.list() == []
    assert list((directory / "sandboxes").iterdir()) == []
    assert [handle.runtime_id for handle in await neighbour.list()] == ["a"]
    assert _uid_pids(neighbour_uid)
    assert sweep(neighbour_dir) == 1
    shutil.rmtree(directory)
    shutil.rmtree(neighbour_dir)


def test_a_uid_whose_holder_vanished_is_reclaimed_but_a_busy_one_is_not(
    tmp_path: Path,
) -> None:
    registry = UidRegistry(tmp_path / "uids", base=250000, count=2)
    gone = registry.allocate(tmp_path / "deleted-runtime-dir", "lost")
    recent = registry.allocate(tmp_path / "deleted-runtime-dir", "recent")
    with pytest.raises(RuntimeUnavailable, match="in use"):
        registry.allocate(tmp_path, "third")
    old = time.time() - 3600
    os.utime(tmp_path / "uids" / str(gone), (old, old))
    assert registry.allocate(tmp_path, "third") == gone
    assert registry.held_by(tmp_path) == {gone: "third"}
    assert registry.held_by(tmp_path / "deleted-runtime-dir") == {recent: "recent"}


def test_a_runtime_dir_others_cannot_traverse_is_refused() -> None:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o700)
    with pytest.raises(RuntimeUnavailable, match="o\\+x"):
        LocalDriver(LocalConfig(runtime_dir=directory / "rt"))
    directory.rmdir()


def test_the_kubernetes_driver_needs_a_cluster(config: LocalConfig) -> None:
    with pytest.raises(RuntimeUnavailable, match="kubernetes"):
        create_driver(RuntimeSettings(driver="kubernetes"), config.interpreters)


def test_the_driver_reports_its_protections(driver: LocalDriver) -> None:
    protections = driver.protections()
    assert protections["seccomp"] is True
    assert protections["cgroups"] in ("v1", "v2")
    assert protections["workspaceLimit"] is True
    assert protections["network"] in ("none", "slirp4netns")
    assert protections["missing"] == []


def test_the_cgroup_parent_cannot_climb_out_of_the_hierarchy() -> None:
    with pytest.raises(ValueError, match="cgroup_parent"):
        LocalConfig(runtime_dir=Path("/tmp/x"), cgroup_parent="../escape")


def test_the_agent_copy_is_byte_compiled_against_its_sources(
    driver: LocalDriver, runtime_dir: Path
) -> None:
    """Sandboxes cannot write ``__pycache__``: the driver compiles the agent once, as
    hash-checked pycs the sandbox's interpreter loads instead of compiling each start."""
    package = runtime_dir / "agent" / "llmsafespace" / "agent"
    modules = sorted(package.glob("*.py"))
    assert modules
    for module in modules:
        pyc = Path(importlib.util.cache_from_source(str(module))).read_bytes()
        assert pyc[:4] == importlib.util.MAGIC_NUMBER
        assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based, checked
        assert pyc[8:16] == importlib.util.source_hash(module.read_bytes())


def test_a_workspace_image_is_copied_with_its_holes_and_only_for_root(tmp_path: Path) -> None:
    source, target = tmp_path / "template.img", tmp_path / "workspace.img"
    with open(source, "wb") as file:
        file.write(b"superblock")
        file.seek(8 * 2**20)
        file.write(b"group descriptors")
        file.truncate(64 * 2**20)
    copy_sparse(source, target)
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_blocks * 512 < 2**20  # the holes stayed holes
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):  # never over an existing workspace
        copy_sparse(source, target)


@pytest.mark.skipif(not disk_backed(), reason="no mkfs.ext4 or loop devices here")
def test_empty_workspace_images_of_sizes_asked_for_once_do_not_pile_up(tmp_path: Path) -> None:
    """One empty image per size: those idle past TEMPLATE_IDLE go when a new one is made,
    but the KEPT_TEMPLATES used last and any used lately stay."""
    sizes = [MIN_IMAGE_BYTES + n * 2**20 for n in range(KEPT_TEMPLATES + 3)]
    long_ago = time.time() - TEMPLATE_IDLE - 60
    for age, size in enumerate(sizes[:-1]):  # the later the size, the later its use
        made = _template(tmp_path, size)
        os.utime(made, (long_ago + age, long_ago + age))
    _template(tmp_path, sizes[0])  # used again now
    _template(tmp_path, sizes[-1])  # a new size: the idle beyond the 8 used last go
    kept = sorted(int(path.stem.split("-")[1]) for path in tmp_path.glob("template-*.img"))
    assert kept == [sizes[0], *sizes[-KEPT_TEMPLATES + 1 :]]


def _agent_command(directory: Path) -> list[str]:
    """The local driver's agent command, with every directory in ``directory``."""
    profile = bwrap.Profile(
        interpreter=sys.executable,
        workspace=directory,
        run_dir=directory,
        agent_dir=directory,
        etc_dir=directory,
        tmp_bytes=2**20,
    )
    return bwrap.agent_command(profile)


def test_the_agent_starts_without_runpy(tmp_path: Path) -> None:
    """``python -m`` would load runpy and importlib.util in every sandbox's agent."""
    (tmp_path / "token").write_text("token")
    socket = tmp_path / "agent.sock"
    command = _agent_command(tmp_path)
    argv = [command[0], "-X", "importtime", *command[1 : command.index("--socket")]]
    argv += ["--socket", str(socket), "--token-file", str(tmp_path / "token")]
    argv += ["--workspace", str(tmp_path)]
    agent_root = Path(llmsafespace.agent.__file__).parents[2]
    env = {"PYTHONPATH": str(agent_root)}
    agent = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        while not socket.exists() and agent.poll() is None:
            time.sleep(0.01)
        assert agent.poll() is None
    finally:
        agent.kill()
        _, imports = agent.communicate()
    loaded = {line.rsplit("|", 1)[-1].strip() for line in imports.splitlines()}
    assert "llmsafespace.agent.server" in loaded
    assert "runpy" not in loaded


def test_the_agent_does_not_import_modules_left_in_the_workspace_it_starts_in(
    tmp_path: Path,
) -> None:
    """The agent starts in ``/workspace`` again after a resume or a restore: a module the
    user left there must not be what it imports (it would run before Landlock, holding
    the token)."""
    (tmp_path / "selectors.py").write_text(
        "open(__file__ + '.imported', 'w').close()\nraise SystemExit('shadowed')\n"
    )
    (tmp_path / "token").write_text("token")
    socket = tmp_path / "agent.sock"
    command = _agent_command(tmp_path)
    argv = [*command[: command.index("--socket")], "--socket", str(socket)]
    argv += ["--token-file", str(tmp_path / "token"), "--workspace", str(tmp_path)]
    agent_root = Path(llmsafespace.agent.__file__).parents[2]
    agent = subprocess.Popen(argv, cwd=tmp_path, env={"PYTHONPATH": str(agent_root)})
    try:
        while not socket.exists() and agent.poll() is None:
            time.sleep(0.01)
        assert agent.poll() is None
        assert not (tmp_path / "selectors.py.imported").exists()
    finally:
        agent.kill()
        agent.wait()
