"""`llmsafespace sandbox …`, `exec` and `run`."""

import codecs
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

import click

from ..errors import LLMSafeSpaceError, StreamUnavailableError
from ..models import SUFFIXES, ExecutionResult, SandboxInfo
from ..sandbox import ExecutionStream, Sandbox
from .output import emit_json, fields, table
from .settings import CliSettings, key_values, pass_settings


@click.group("sandbox")
def sandbox_group() -> None:
    """Create, list, show and remove sandboxes."""


@sandbox_group.command("create")
@click.option("--runtime", help="Runtime (default python:3.11; a template brings its own).")
@click.option("--template", help="Start from this template (see `llmsafespace templates`).")
@click.option("--security-level", default="standard", show_default=True)
@click.option("--timeout", default=300, show_default=True, help="Lifetime in seconds.")
@click.option("--cpu", type=float, help="CPUs (e.g. 0.5).")
@click.option("--memory", help="Memory limit (e.g. 512Mi).")
@click.option("--metadata", "-m", multiple=True, help="Label KEY=VALUE (repeatable).")
@click.option("--env", "-e", multiple=True, help="Environment NAME=VALUE (repeatable).")
@click.option("--no-warm-pool", is_flag=True, help="Always start a fresh sandbox.")
@click.option(
    "--network", is_flag=True, help="Outbound network (TCP 80 and 443 to public addresses)."
)
@click.option(
    "--egress-port",
    type=int,
    multiple=True,
    help="Outbound TCP port (repeatable; implies --network).",
)
@click.option("--egress-host", multiple=True, help="Host name the ports are for (repeatable).")
@click.option("--egress-cidr", multiple=True, help="IP network the ports are for (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the sandbox as JSON.")
@pass_settings
def create(
    settings: CliSettings,
    runtime: str | None,
    template: str | None,
    security_level: str,
    timeout: int,
    cpu: float | None,
    memory: str | None,
    metadata: tuple[str, ...],
    env: tuple[str, ...],
    no_warm_pool: bool,
    network: bool,
    egress_port: tuple[int, ...],
    egress_host: tuple[str, ...],
    egress_cidr: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a sandbox and print its id."""
    if (egress_host or egress_cidr) and not egress_port:
        raise click.UsageError("--egress-host and --egress-cidr need --egress-port")
    network_access: dict[str, object] | None = None
    if egress_port:  # one rule: these ports, on these names and networks (or anywhere)
        rule = {"ports": list(egress_port), "hosts": list(egress_host), "cidrs": list(egress_cidr)}
        network_access = {"enabled": True, "egress": [rule]}
    elif network:
        network_access = {"enabled": True}
    resources: dict[str, object] = {}
    if cpu is not None:
        resources["cpu"] = cpu
    if memory is not None:
        resources["memory"] = memory
    sandbox = Sandbox(
        runtime=runtime,
        template=template,
        security_level=security_level,
        timeout=timeout,
        resources=resources or None,
        network_access=network_access,
        use_warm_pool=not no_warm_pool,
        metadata=key_values(metadata, "--metadata"),
        env=key_values(env, "--env"),
        **settings.client(),
    )
    sandbox.close()
    if as_json:
        emit_json(sandbox.info_cached)
    else:
        print(sandbox.id)


@sandbox_group.command("ls")
@click.option("--limit", default=20, show_default=True)
@click.option("--offset", default=0, show_default=True)
@click.option("--status", help="Only sandboxes in this status (e.g. running).")
@click.option("--metadata", "-m", multiple=True, help="Only sandboxes with label KEY=VALUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@pass_settings
def list_sandboxes(
    settings: CliSettings,
    limit: int,
    offset: int,
    status: str | None,
    metadata: tuple[str, ...],
    as_json: bool,
) -> None:
    """List your sandboxes."""
    page = Sandbox.list(
        limit=limit,
        offset=offset,
        status=status,
        metadata=key_values(metadata, "--metadata"),
        **settings.client(),
    )
    if as_json:
        emit_json(page)
        return
    rows = [
        (item.id, item.status.value, item.runtime, item.created_at.isoformat(timespec="seconds"))
        for item in page.sandboxes
    ]
    table(("ID", "STATUS", "RUNTIME", "CREATED"), rows)


@sandbox_group.command("get")
@click.argument("sandbox_id")
@click.option("--json", "as_json", is_flag=True, help="Print the sandbox as JSON.")
@pass_settings
def get(settings: CliSettings, sandbox_id: str, as_json: bool) -> None:
    """Show one sandbox."""
    sandbox = Sandbox.connect(sandbox_id, **settings.client())
    sandbox.close()
    info = sandbox.info_cached
    if as_json:
        emit_json(info)
    else:
        _describe(info)


@sandbox_group.command("rm")
@click.argument("sandbox_ids", nargs=-1, required=True)
@pass_settings
def remove(settings: CliSettings, sandbox_ids: tuple[str, ...]) -> None:
    """Terminate sandboxes."""
    for sandbox_id in sandbox_ids:
        sandbox = Sandbox.connect(sandbox_id, **settings.client())
        try:
            sandbox.terminate()
        finally:
            sandbox.close()
        print(sandbox_id)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("sandbox_id")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", default=300.0, show_default=True, help="Seconds.")
@click.option("--cwd", help="Working directory inside the sandbox.")
@click.option(
    "--stdin/--no-stdin",
    "forward",
    default=None,
    help="Forward local stdin to the command (as text, UTF-8) until it ends.  [default:"
    " when stdin is not a terminal]",
)
@pass_settings
def exec_command(
    settings: CliSettings,
    sandbox_id: str,
    command: tuple[str, ...],
    timeout: float,
    cwd: str | None,
    forward: bool | None,
) -> None:
    """Run a shell command: `llmsafespace exec SANDBOX -- CMD …`. Output streams live;
    the exit code is the command's. Piped or redirected stdin is forwarded
    (`llmsafespace exec SB -- wc -l < file`); a terminal's is not (the command's stdin is
    then empty)."""
    if forward is None:
        forward = not sys.stdin.isatty()
    source = sys.stdin.buffer if forward else None
    _finish(_execute(settings, sandbox_id, "command", " ".join(command), timeout, cwd, source))


@click.command("run")
@click.argument("sandbox_id")
@click.option("--code", "-c", help="Python source to run.")
@click.option("--file", "-f", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", default=300.0, show_default=True, help="Seconds.")
@click.option(
    "--images",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    default=Path(),
    show_default=True,
    help="Directory for the images the code displays (each path is printed).",
)
@pass_settings
def run_code(
    settings: CliSettings,
    sandbox_id: str,
    code: str | None,
    path: Path | None,
    timeout: float,
    images: Path,
) -> None:
    """Run Python (`--code` or `--file`) in the sandbox's interpreter. Images it displays
    (matplotlib figures, `display(...)`) are written to `--images`, their paths printed."""
    if (code is None) == (path is None):
        raise click.UsageError("give exactly one of --code or --file")
    source = code if code is not None else path.read_text() if path else ""
    images.mkdir(parents=True, exist_ok=True)
    _finish(_execute(settings, sandbox_id, "code", source, timeout, None), images)


def _execute(
    settings: CliSettings,
    sandbox_id: str,
    mode: str,
    content: str,
    timeout: float,
    cwd: str | None,
    stdin: BinaryIO | None = None,
) -> ExecutionResult:
    sandbox = Sandbox.connect(sandbox_id, **settings.client())
    try:
        write_out = _writer(sys.stdout)
        write_err = _writer(sys.stderr)
        stream = (
            sandbox.stream_code(content, timeout=timeout, on_stdout=write_out, on_stderr=write_err)
            if mode == "code"
            else sandbox.stream_command(
                content,
                timeout=timeout,
                cwd=cwd,
                on_stdout=write_out,
                on_stderr=write_err,
                stdin=stdin is not None,
            )
        )
        if stdin is not None:
            threading.Thread(target=_feed, args=(stdin, stream), daemon=True).start()
        try:
            return stream.wait()
        except StreamUnavailableError:
            result = (
                sandbox.run_code(content, timeout=timeout)
                if mode == "code"
                else sandbox.run_command(content, timeout=timeout, cwd=cwd)
            )
            sys.stdout.write(result.stdout)
            sys.stderr.write(result.stderr)
            return result
    finally:
        sandbox.close()


FEED_BYTES = 64 * 1024


def _feed(source: BinaryIO, stream: ExecutionStream) -> None:
    """Send what `source` gives to the command's stdin as it arrives, then its end. On a
    thread of its own (reads block); it stops quietly once the command has ended."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while chunk := os.read(source.fileno(), FEED_BYTES):  # what is there, up to this
            if text := decoder.decode(chunk):
                stream.send_stdin(text)
        stream.send_stdin(decoder.decode(b"", final=True), eof=True)
    except (LLMSafeSpaceError, OSError, RuntimeError):
        pass  # the command ended (or the stream failed, which `wait` reports)


def _writer(stream: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


IMAGES = ("image/png", "image/jpeg", "image/svg+xml")


def _finish(result: ExecutionResult, images: Path | None = None) -> None:
    if result.result is not None:
        print(result.result)
    for number, rich in enumerate(result.results, 1):
        mime = next((mime for mime in IMAGES if mime in rich.data), None)
        if images is not None and mime is not None:
            path = images / f"{result.execution_id}-{number}{SUFFIXES[mime]}"
            print(rich.save(path))
    if result.error is not None:
        sys.stderr.write(result.error.traceback or f"{result.error.name}: {result.error.value}\n")
    if result.status.value == "timeout":
        sys.stderr.write("llmsafespace: the execution timed out\n")
    raise SystemExit(result.exit_code if 0 <= result.exit_code <= 255 else 1)


def _describe(info: SandboxInfo) -> None:
    fields(
        [
            ("id", info.id),
            ("status", info.status.value),
            ("runtime", info.runtime),
            ("security", info.security_level.value),
            ("created", info.created_at.isoformat(timespec="seconds")),
            ("expires", info.expires_at.isoformat(timespec="seconds")),
            ("metadata", ", ".join(f"{k}={v}" for k, v in info.metadata.items()) or "-"),
        ]
    )
