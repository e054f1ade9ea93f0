"""`llmsafespace pool …`: warm pools."""

import click

from ..models import WarmPoolInfo
from ..warmpool import WarmPool
from .output import emit_json, fields, table
from .settings import CliSettings, pass_settings


@click.group("pool")
def pool_group() -> None:
    """Create, list, scale and remove warm pools."""


@pool_group.command("create")
@click.argument("name")
@click.option("--runtime", help="Runtime (default python:3.11; a template brings its own).")
@click.option("--template", help="Keep sandboxes of this template ready.")
@click.option("--snapshot", help="Keep sandboxes with this snapshot's workspace ready.")
@click.option("--min", "min_size", default=1, show_default=True, help="Sandboxes kept ready.")
@click.option("--max", "max_size", type=int, help="Upper bound when scaling.")
@click.option("--security-level", default="standard", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the pool as JSON.")
@pass_settings
def create(
    settings: CliSettings,
    name: str,
    runtime: str | None,
    template: str | None,
    snapshot: str | None,
    min_size: int,
    max_size: int | None,
    security_level: str,
    as_json: bool,
) -> None:
    """Create a warm pool."""
    pool = WarmPool.create(
        name,
        runtime=runtime,
        template=template,
        snapshot=snapshot,
        min_size=min_size,
        max_size=max_size,
        security_level=security_level,
        **settings.client(),
    )
    _show(pool.info, as_json)


@pool_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the pools as JSON.")
@pass_settings
def list_pools(settings: CliSettings, as_json: bool) -> None:
    """List warm pools."""
    pools = WarmPool.list(**settings.client())
    if as_json:
        emit_json(pools)
        return
    rows = [
        (
            pool.name,
            pool.spec.runtime,
            pool.spec.min_size,
            pool.spec.max_size,
            pool.status.available_pods,
        )
        for pool in pools
    ]
    table(("NAME", "RUNTIME", "MIN", "MAX", "READY"), rows)


@pool_group.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the pool as JSON.")
@pass_settings
def get(settings: CliSettings, name: str, as_json: bool) -> None:
    """Show one warm pool."""
    _show(WarmPool.get(name, **settings.client()).info, as_json)


@pool_group.command("scale")
@click.argument("name")
@click.option("--min", "min_size", type=int, help="New minimum size.")
@click.option("--max", "max_size", type=int, help="New maximum size.")
@click.option("--json", "as_json", is_flag=True, help="Print the pool as JSON.")
@pass_settings
def scale(
    settings: CliSettings, name: str, min_size: int | None, max_size: int | None, as_json: bool
) -> None:
    """Change a pool's bounds."""
    if min_size is None and max_size is None:
        raise click.UsageError("give --min, --max or both")
    pool = WarmPool.get(name, **settings.client()).scale(min_size=min_size, max_size=max_size)
    _show(pool.info, as_json)


@pool_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def remove(settings: CliSettings, names: tuple[str, ...]) -> None:
    """Delete warm pools (their ready sandboxes are destroyed)."""
    for name in names:
        WarmPool.get(name, **settings.client()).delete()
        print(name)


def _show(pool: WarmPoolInfo, as_json: bool) -> None:
    if as_json:
        emit_json(pool)
        return
    fields(
        [
            ("name", pool.name),
            ("runtime", pool.spec.runtime),
            ("min", pool.spec.min_size),
            ("max", pool.spec.max_size),
            ("ready", pool.status.available_pods),
            ("desired", pool.status.desired_pods),
        ]
    )
