"""Snapshots: a sandbox's workspace, env, metadata, runtime and template, kept to start
sandboxes from.

The interpreter's memory (variables, imported modules, running processes) is not part of a
snapshot: a sandbox started from one has the files, installed packages and env, and a
fresh interpreter.
"""

from datetime import datetime

from pydantic import Field

from .base import Contract, Request
from .caller import Caller
from .ids import SandboxId, SnapshotId
from .sandbox import Pagination


class CreateSnapshotRequest(Request):
    """`POST /sandboxes/{id}/snapshots` body."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")


class Snapshot(Contract):
    """A durable, immutable snapshot as its owner sees it."""

    id: SnapshotId
    owner_id: str
    name: str
    sandbox_id: SandboxId = Field(description="The sandbox it was taken from")
    runtime: str
    template: str | None = Field(
        default=None,
        description="The template the sandbox was made from; a sandbox started from the"
        " snapshot binds it again (its packages and files are not in the workspace)",
    )
    metadata: dict[str, str]
    env_names: list[str] = Field(description="The environment variables it carries (names)")
    size_bytes: int = Field(description="The workspace's size as an uncompressed tar archive")
    stored_bytes: int = Field(
        description="Bytes this snapshot added to storage: chunks no earlier snapshot had"
    )
    created_at: datetime


class CreateSnapshot(Contract):
    """`cmd.snapshot.create`: snapshot a running sandbox's workspace."""

    caller: Caller
    sandbox_id: SandboxId
    request: CreateSnapshotRequest


class SnapshotRef(Contract):
    """`cmd.snapshot.get|delete`: one snapshot, on behalf of a caller."""

    caller: Caller
    snapshot_id: SnapshotId


class RestoreSnapshot(Contract):
    """`cmd.snapshot.restore`: stream a snapshot's workspace into a running runtime that
    is not a sandbox yet (a warm pool's, built from the snapshot), on behalf of the
    pool's owner, who must be able to use the snapshot."""

    caller: Caller
    snapshot_id: SnapshotId
    endpoint: str = Field(min_length=1, description="The runtime's agent")
    token: str = Field(min_length=1, description="The agent's token")


class SnapshotPoolsQuery(Contract):
    """`cmd.warmpool.snapshot.pools` (sandbox-svc to warmpool-svc): the pools built from
    a snapshot, which must not be deleted while they exist (they could not refill)."""

    snapshot_id: SnapshotId


class SnapshotPools(Contract):
    pools: list[str]


class ListSnapshots(Contract):
    """`cmd.snapshot.list`: one page of the caller's snapshots (every one for admins)."""

    caller: Caller
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class SnapshotPage(Contract):
    """`cmd.snapshot.list` reply and `GET /snapshots` body."""

    snapshots: list[Snapshot]
    pagination: Pagination
