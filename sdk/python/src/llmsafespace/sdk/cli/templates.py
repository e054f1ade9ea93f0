"""`llmsafespace templates …`: environments built once, reused by sandboxes and pools."""

import click

from ..models import TemplateInfo
from ..template import Template
from .output import emit_json, fields, table
from .settings import CliSettings, key_values, pass_settings


@click.group("templates")
def templates_group() -> None:
    """Build, list, show and remove templates."""


@templates_group.command("create")
@click.argument("name")
@click.option("--runtime", default="python:3.11", show_default=True)
@click.option("--pip", multiple=True, help="A pip package (repeatable).")
@click.option("--npm", multiple=True, help="An npm package (repeatable).")
@click.option("--setup", multiple=True, help="A setup command, run in order (repeatable).")
@click.option("--env", "-e", multiple=True, help="Environment NAME=VALUE (repeatable).")
@click.option("--public", is_flag=True, help="Usable by every user (admins only).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Until built.")
@click.option("--json", "as_json", is_flag=True, help="Print the template as JSON.")
@pass_settings
def create(
    settings: CliSettings,
    name: str,
    runtime: str,
    pip: tuple[str, ...],
    npm: tuple[str, ...],
    setup: tuple[str, ...],
    env: tuple[str, ...],
    public: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Build a template; with --wait (the default) exit 1 if the build fails."""
    template = Template.create(
        name,
        runtime=runtime,
        pip=list(pip),
        npm=list(npm),
        setup_commands=list(setup),
        env=key_values(env, "--env"),
        public=public,
        **settings.client(),
    )
    if wait:
        template.wait()
    _show(template.info, as_json)
    if template.info.status == "failed":
        raise SystemExit(1)


@templates_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the templates as JSON.")
@pass_settings
def list_templates(settings: CliSettings, as_json: bool) -> None:
    """List your templates and the public ones."""
    templates = Template.list(**settings.client())
    if as_json:
        emit_json(templates)
        return
    rows = [(t.name, t.spec.runtime, t.status.value, t.spec.public) for t in templates]
    table(("NAME", "RUNTIME", "STATUS", "PUBLIC"), rows)


@templates_group.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the template as JSON.")
@pass_settings
def get(settings: CliSettings, name: str, as_json: bool) -> None:
    """Show one template (a failed one with its reason and log tail)."""
    _show(Template.get(name, **settings.client()).info, as_json)


@templates_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def remove(settings: CliSettings, names: tuple[str, ...]) -> None:
    """Delete templates (refused while a sandbox or a warm pool uses one)."""
    for name in names:
        Template.get(name, **settings.client()).delete()
        print(name)


def _show(template: TemplateInfo, as_json: bool) -> None:
    if as_json:
        emit_json(template)
        return
    pairs: list[tuple[str, object]] = [
        ("name", template.name),
        ("runtime", template.spec.runtime),
        ("status", template.status.value),
        ("public", template.spec.public),
    ]
    if template.reason:
        pairs.append(("reason", template.reason))
    if template.log_tail:
        pairs.append(("log", template.log_tail[-1000:]))
    fields(pairs)
