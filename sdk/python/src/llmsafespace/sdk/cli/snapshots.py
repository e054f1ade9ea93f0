"""`llmsafespace snapshot …`: snapshots of sandboxes' workspaces (they count against a
quota until removed)."""

import click

from ..models import SnapshotInfo
from ..sandbox import Sandbox
from ..snapshot import Snapshot
from .output import emit_json, fields, table
from .settings import CliSettings, pass_settings


@click.group("snapshot")
def snapshot_group() -> None:
    """Take, list, show and remove snapshots."""


@snapshot_group.command("create")
@click.argument("sandbox_id")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@pass_settings
def create(settings: CliSettings, sandbox_id: str, name: str, as_json: bool) -> None:
    """Snapshot a running sandbox's workspace, env, metadata and runtime (not its memory)
    and print the snapshot's id."""
    sandbox = Sandbox.connect(sandbox_id, **settings.client())
    try:
        snapshot = sandbox.snapshot(name)
    finally:
        sandbox.close()
    if as_json:
        emit_json(snapshot)
    else:
        print(snapshot.id)


@snapshot_group.command("ls")
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@pass_settings
def list_snapshots(settings: CliSettings, limit: int, offset: int, as_json: bool) -> None:
    """List your snapshots, newest first."""
    page = Snapshot.list(limit=limit, offset=offset, **settings.client())
    if as_json:
        emit_json(page)
        return
    rows = [
        (
            item.id,
            item.name,
            item.sandbox_id,
            item.runtime,
            item.size_bytes,
            item.created_at.isoformat(timespec="seconds"),
        )
        for item in page.snapshots
    ]
    table(("ID", "NAME", "SANDBOX", "RUNTIME", "BYTES", "CREATED"), rows)


@snapshot_group.command("get")
@click.argument("snapshot_id")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@pass_settings
def get(settings: CliSettings, snapshot_id: str, as_json: bool) -> None:
    """Show one snapshot."""
    info = Snapshot.get(snapshot_id, **settings.client()).info
    if as_json:
        emit_json(info)
    else:
        _describe(info)


@snapshot_group.command("rm")
@click.argument("snapshot_ids", nargs=-1, required=True)
@pass_settings
def remove(settings: CliSettings, snapshot_ids: tuple[str, ...]) -> None:
    """Delete snapshots (refused while a warm pool is built from one)."""
    for snapshot_id in snapshot_ids:
        Snapshot.get(snapshot_id, **settings.client()).delete()
        print(snapshot_id)


def _describe(info: SnapshotInfo) -> None:
    fields(
        [
            ("id", info.id),
            ("name", info.name),
            ("sandbox", info.sandbox_id),
            ("runtime", info.runtime),
            ("template", info.template or "-"),
            ("size", f"{info.size_bytes} bytes ({info.stored_bytes} stored)"),
            ("created", info.created_at.isoformat(timespec="seconds")),
            ("env", ", ".join(info.env_names) or "-"),
            ("metadata", ", ".join(f"{k}={v}" for k, v in info.metadata.items()) or "-"),
        ]
    )
