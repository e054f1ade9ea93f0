"""The `llmsafespace` command line: sandboxes, executions, warm pools, templates,
snapshots and API keys.

Reads `LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY` (or `--api-url` / `--api-key`).
Errors are one line on stderr and a non-zero exit status; never a traceback."""

import posixpath
import shlex
import sys
from collections.abc import Sequence

import click

from ..errors import (
    APIConnectionError,
    AuthenticationError,
    LLMSafeSpaceError,
    NotFoundError,
    QuotaExceededError,
    ValidationError,
)
from .files import copy
from .keys import keys_group, whoami
from .mcp import mcp_command
from .pools import pool_group
from .sandboxes import exec_command, run_code, sandbox_group
from .settings import CliSettings
from .shell import shell
from .snapshots import snapshot_group
from .templates import templates_group

EXIT_ERROR = 1
_HINTS: dict[type[LLMSafeSpaceError], str] = {
    AuthenticationError: "check LLMSAFESPACE_API_KEY (make up writes it to .llmsafespace/env)",
    APIConnectionError: "is the server running? check LLMSAFESPACE_API_URL (make up starts it)",
    QuotaExceededError: "waiting will not lift a quota: delete sandboxes, pools or snapshots"
    " (`llmsafespace snapshot ls`, `snapshot rm`)",
}
_LISTINGS: dict[str, str] = {
    "sandbox ": "`llmsafespace sandbox ls` lists your sandboxes",
    "warm pool ": "`llmsafespace pool ls` lists the warm pools",
    "template ": "`llmsafespace templates ls` lists the templates",
    "snapshot ": "`llmsafespace snapshot ls` lists your snapshots",
    "API key ": "`llmsafespace keys ls` lists your keys",
}
"""What was not found, by how the server's message starts (`sandbox sb-… not found`) →
where to look for the right name."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api-url", envvar="LLMSAFESPACE_API_URL", help="API base, e.g. …/api/v1.")
@click.option("--api-key", envvar="LLMSAFESPACE_API_KEY", help="API key (lsp_…).")
@click.version_option(package_name="llmsafespace")
@click.pass_context
def cli(context: click.Context, api_url: str | None, api_key: str | None) -> None:
    """Run untrusted code in LLMSafeSpace sandboxes."""
    context.obj = CliSettings(api_url, api_key)


cli.add_command(sandbox_group)
cli.add_command(exec_command)
cli.add_command(run_code)
cli.add_command(pool_group)
cli.add_command(templates_group)
cli.add_command(snapshot_group)
cli.add_command(copy)
cli.add_command(keys_group)
cli.add_command(whoami)
cli.add_command(mcp_command)
cli.add_command(shell)


def describe(error: LLMSafeSpaceError) -> str:
    """One line for a failed command: the server's message, the bad fields, a hint."""
    line = f"error: {error.message}"
    if isinstance(error, ValidationError) and error.fields:
        line += " (" + "; ".join(f"{k}: {v}" for k, v in error.fields.items()) + ")"
    hint = next((text for cls, text in _HINTS.items() if isinstance(error, cls)), None)
    if isinstance(error, NotFoundError) and not hint:
        hint = not_found_hint(error.message)
    return f"{line}\nhint: {hint}" if hint else line


def not_found_hint(message: str) -> str | None:
    """Where to look for what was not found, told by the server's message; None when the
    message does not say what it was."""
    if message.startswith("/"):  # a file: `/workspace/x: No such file or directory`
        folder = posixpath.dirname(message.rsplit(": ", 1)[0]) or "/"
        return f"`llmsafespace exec SANDBOX -- ls -la {shlex.quote(folder)}` lists its directory"
    return next((hint for start, hint in _LISTINGS.items() if message.startswith(start)), None)


def describe_os_error(error: OSError) -> str:
    """One line for a local file that could not be read or written."""
    if error.strerror and error.filename is not None:
        return f"error: {error.filename}: {error.strerror}"
    return f"error: {error}"


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the CLI, turning SDK errors into one-line messages."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.stderr.write("aborted\n")
        sys.exit(EXIT_ERROR)
    except LLMSafeSpaceError as exc:
        sys.stderr.write(describe(exc) + "\n")
        sys.exit(EXIT_ERROR)
    except OSError as exc:  # a local path (the SDK turns network failures into its own)
        sys.stderr.write(describe_os_error(exc) + "\n")
        sys.exit(EXIT_ERROR)


__all__ = ["cli", "main"]
