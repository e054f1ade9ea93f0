"""`llmsafespace cp`: copy files and directories into and out of a sandbox."""

import os
import re
from pathlib import Path
from typing import Any

import click

from ..errors import NotFoundError, ValidationError
from ..sandbox import Sandbox
from .settings import CliSettings, pass_settings

_REMOTE = re.compile(r"(sb-[a-z0-9]+):(/.*)", re.DOTALL)


def _remote(spec: str) -> tuple[str, str] | None:
    """(sandbox id, path) for `SANDBOX:/path`; None for a local path. The whole path is
    kept, a newline in it too (`$` would have dropped a trailing one)."""
    match = _REMOTE.fullmatch(spec)
    return (match.group(1), match.group(2)) if match else None


@click.command("cp")
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Copy a directory (as tar.gz).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_settings
def copy(
    settings: CliSettings, source: str, destination: str, recursive: bool, quiet: bool
) -> None:
    """Copy LOCAL to SANDBOX:/path, or SANDBOX:/path to LOCAL (paths inside the sandbox
    are under /workspace or /tmp). A file copied to a directory, or to a path ending with
    /, goes into it under its own name, as with cp."""
    up, down = _remote(destination), _remote(source)
    if (up is None) == (down is None):
        raise click.UsageError("exactly one of SOURCE and DESTINATION must be SANDBOX:/path")
    remote = up or down
    assert remote is not None
    sandbox = Sandbox.connect(remote[0], **settings.client())
    try:
        if up is not None:
            local = Path(source)
            if local.is_dir() and not recursive:
                raise click.UsageError(f"{source} is a directory: use --recursive")
            total = local.stat().st_size if local.is_file() else 0
            with _progress(quiet, total, f"{local.name} → {destination}") as advance:
                if local.is_dir():
                    sandbox.files.upload_dir(local, _directory(up[1]), progress=advance)
                else:
                    into = _remote_target(sandbox, up[1], local.name)
                    sandbox.files.upload(local, into, progress=advance)
        else:
            assert down is not None
            target = Path(destination)
            if recursive:
                with _progress(quiet, 0, f"{source} → {destination}") as advance:
                    sandbox.files.download_dir(_directory(down[1]), target, progress=advance)
                return
            if destination.endswith(("/", os.sep)) or target.is_dir():  # Path drops the /
                target = target / Path(down[1]).name
            with _progress(quiet, 0, f"{source} → {target}") as advance:
                sandbox.files.download(down[1], target, progress=advance)
    finally:
        sandbox.close()


def _directory(path: str) -> str:
    """A sandbox directory's path without the trailing slash the API refuses."""
    return path.rstrip("/") or "/"


def _remote_target(sandbox: Sandbox, path: str, name: str) -> str:
    """Where a file named `name` copied to `path` goes: into `path` when it ends with /
    or is a directory (or a link to one), else `path` itself."""
    if path.endswith("/") or _is_directory(sandbox, path):
        return f"{path.rstrip('/')}/{name}"
    return path


def _is_directory(sandbox: Sandbox, path: str) -> bool:
    """Whether the sandbox lists `path`: the API has no other way to tell a directory."""
    try:
        sandbox.files.list(path)
    except (NotFoundError, ValidationError):  # nothing there, a file, or not allowed
        return False
    return True


class _progress:
    """A click progress bar fed with "bytes so far" (silent with `quiet`, or without a
    `total` to measure against: a download's size is not known ahead; click's bar needs
    one, or an iterable)."""

    def __init__(self, quiet: bool, total: int, label: str) -> None:
        shown = total and not quiet
        self._bar: Any = click.progressbar(length=total, label=label) if shown else None
        self._done = 0

    def __enter__(self) -> "_progress":
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __call__(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
