"""`llmsafespace keys …`: the caller's API keys."""

import click

from ..keys import ApiKeys
from .output import emit_json, fields, table
from .settings import CliSettings, pass_settings


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke your API keys."""


@keys_group.command("create")
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option(
    "--expires-in-days", type=click.IntRange(1, 3650), help="Expire after this many days."
)
@click.option("--json", "as_json", is_flag=True, help="Print the key's record as JSON.")
@pass_settings
def create(settings: CliSettings, name: str, expires_in_days: int | None, as_json: bool) -> None:
    """Create a key and print it (it is shown only this once)."""
    created = ApiKeys(**settings.client()).create(name, expires_in_days=expires_in_days)
    if as_json:
        emit_json(created)
        return
    print(created.api_key)
    click.echo(
        f"key {created.id} ({created.prefix}…) created; store it now, it is not shown again",
        err=True,
    )


@keys_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@pass_settings
def list_keys(settings: CliSettings, as_json: bool) -> None:
    """List your keys (never their secrets)."""
    keys = ApiKeys(**settings.client()).list()
    if as_json:
        emit_json(keys)
        return
    rows = [
        (
            key.id,
            key.name,
            key.prefix,
            key.created_at.isoformat(timespec="seconds"),
            key.expires_at.isoformat(timespec="seconds") if key.expires_at else "never",
            "revoked" if key.revoked_at else "active",
        )
        for key in keys
    ]
    table(("ID", "NAME", "PREFIX", "CREATED", "EXPIRES", "STATE"), rows)


@keys_group.command("revoke")
@click.argument("key_ids", metavar="KEY_ID...", nargs=-1, required=True)
@pass_settings
def revoke(settings: CliSettings, key_ids: tuple[str, ...]) -> None:
    """Revoke keys by id (at once: requests with them are refused)."""
    keys = ApiKeys(**settings.client())
    for key_id in key_ids:
        keys.revoke(key_id)
        print(key_id)


@click.command("whoami")
@click.option("--json", "as_json", is_flag=True, help="Print the user as JSON.")
@pass_settings
def whoami(settings: CliSettings, as_json: bool) -> None:
    """Show the user whose key is in use."""
    user = ApiKeys(**settings.client()).whoami()
    if as_json:
        emit_json(user)
        return
    fields([("id", user.id), ("username", user.username), ("role", user.role.value)])
