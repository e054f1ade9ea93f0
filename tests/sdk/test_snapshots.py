"""Snapshots from the SDK and the CLI: taken, listed, fetched, built into a warm pool and
deleted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk import (
    AsyncSandbox,
    AsyncSnapshot,
    ConflictError,
    NotFoundError,
    Sandbox,
    Snapshot,
    WarmPool,
)

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_a_snapshot_is_listed_fetched_pooled_and_deleted(client_env) -> None:
    with Sandbox(metadata={"suite": "snapshots"}) as sandbox:
        taken = sandbox.snapshot("sdk-sync")
    assert taken.id in [item.id for item in Snapshot.list(limit=100).snapshots]
    snapshot = Snapshot.get(taken.id)
    assert (snapshot.id, snapshot.info.name, snapshot.info.metadata) == (
        taken.id,
        "sdk-sync",
        {"suite": "snapshots"},
    )
    pool = WarmPool.create("sdk-snapshot-pool", snapshot=taken.id, min_size=0)
    try:
        assert pool.info.spec.snapshot == taken.id
        with pytest.raises(ConflictError):
            snapshot.delete()  # a pool is built from it
    finally:
        pool.delete()
    snapshot.delete()
    with pytest.raises(NotFoundError):
        Snapshot.get(taken.id)


async def test_async_snapshots_are_listed_fetched_and_deleted(client_env) -> None:
    async with await AsyncSandbox.create() as sandbox:
        taken = await sandbox.snapshot("sdk-async")
    page = await AsyncSnapshot.list(limit=1)
    assert page.pagination.limit == 1
    assert [item.id for item in page.snapshots] == [taken.id]  # newest first
    snapshot = await AsyncSnapshot.get(taken.id)
    assert snapshot.info.sandbox_id == sandbox.id
    await snapshot.delete()
    with pytest.raises(NotFoundError):
        await AsyncSnapshot.get(taken.id)


def test_the_cli_takes_lists_shows_and_removes_snapshots(client_env) -> None:
    created = cli(client_env, "sandbox", "create")
    assert created.returncode == 0, created.stderr
    sandbox_id = created.stdout.strip()
    try:
        taken = cli(client_env, "snapshot", "create", sandbox_id, "cli-snap")
    finally:
        cli(client_env, "sandbox", "rm", sandbox_id)
    assert taken.returncode == 0, taken.stderr
    snapshot_id = taken.stdout.strip()
    listed = json.loads(cli(client_env, "snapshot", "ls", "--json").stdout)
    assert snapshot_id in [item["id"] for item in listed["snapshots"]]
    assert snapshot_id in cli(client_env, "snapshot", "ls").stdout
    shown = cli(client_env, "snapshot", "get", snapshot_id)
    assert ("cli-snap" in shown.stdout, sandbox_id in shown.stdout) == (True, True)

    pool = cli(
        client_env,
        "pool",
        "create",
        "cli-snapshot-pool",
        "--snapshot",
        snapshot_id,
        "--min",
        "0",
        "--json",
    )
    assert pool.returncode == 0, pool.stderr
    assert json.loads(pool.stdout)["spec"]["snapshot"] == snapshot_id
    assert cli(client_env, "pool", "rm", "cli-snapshot-pool").returncode == 0

    removed = cli(client_env, "snapshot", "rm", snapshot_id)
    assert (removed.returncode, removed.stdout) == (0, f"{snapshot_id}\n")
    gone = cli(client_env, "snapshot", "get", snapshot_id)
    assert gone.returncode == 1
    assert gone.stderr.endswith("hint: `llmsafespace snapshot ls` lists your snapshots\n")
