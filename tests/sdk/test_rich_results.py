"""Rich results in the SDK: `results[i]` with its typed accessors and `save`, from the sync
and async clients and from streams (`Display` events), and the CLI writing images."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk import AsyncSandbox, Complete, Display, Result, Sandbox, Stdout

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))

# A 2x1 RGB PNG made with the standard library, in the sandbox as here.
MAKE_PNG = """
import struct, zlib
def chunk(kind, body):
    return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
PNG = (b'\\x89PNG\\r\\n\\x1a\\n'
       + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 1, 8, 2, 0, 0, 0))
       + chunk(b'IDAT', zlib.compress(b'\\x00\\xff\\x00\\x00\\x00\\x00\\xff'))
       + chunk(b'IEND', b''))
class Dot:
    def _repr_png_(self):
        return PNG
    def _repr_html_(self):
        return '<b>dot</b>'
    def __repr__(self):
        return 'Dot()'
"""
namespace: dict[str, object] = {}
exec(MAKE_PNG, namespace)
PNG = namespace["PNG"]
assert isinstance(PNG, bytes)


def test_run_code_results_have_typed_accessors_and_save(
    client_env: dict[str, str], tmp_path: Path
) -> None:
    with Sandbox(timeout=600) as sandbox:
        execution = sandbox.run_code(MAKE_PNG + "display(Dot())\n{'k': [1, 2]}")
        dot, main = execution.results
        assert isinstance(dot, Result)
        assert (dot.png, dot.html, dot.text, dot.jpeg, dot.svg) == (
            PNG,
            "<b>dot</b>",
            "Dot()",
            None,
            None,
        )
        assert dot.is_main_result is False
        assert dot.formats == ["image/png", "text/html", "text/plain"]
        assert dot.save(tmp_path / "dot.png").read_bytes() == PNG
        assert dot.save(tmp_path / "dot.html").read_text() == "<b>dot</b>"
        assert dot.save(tmp_path / "dot").read_bytes() == PNG  # the richest type
        assert (main.is_main_result, main.text) == (True, "{'k': [1, 2]}")
        assert execution.result == main.text
        shown = sandbox.run_code("display({'application/json': {'a': 1}}, raw=True)")
        [raw] = shown.results
        assert (raw.json, raw.text, shown.result) == ({"a": 1}, "", None)


async def test_a_stream_yields_display_events_in_order_with_the_output(
    client_env: dict[str, str], shared: AsyncSandbox, requires_stream: None
) -> None:
    code = MAKE_PNG + "for i in range(2):\n    print(i)\n    display(Dot())\n'end'"
    events = [event async for event in shared.stream_code(code)]
    kinds = [
        (type(event).__name__, event.text if isinstance(event, Stdout) else None)
        for event in events
    ]
    assert kinds == [
        ("Stdout", "0\n"),
        ("Display", None),
        ("Stdout", "1\n"),
        ("Display", None),
        ("Display", None),
        ("Complete", None),
    ]
    displays = [event for event in events if isinstance(event, Display)]
    assert [event.result.png for event in displays[:2]] == [PNG, PNG]
    assert displays[2].result.is_main_result
    assert displays[2].result.text == "'end'"
    complete = events[-1]
    assert isinstance(complete, Complete)
    assert [r.text for r in complete.result.results] == ["Dot()", "Dot()", "'end'"]
    assert complete.result.result == "'end'"


def test_the_cli_writes_images_to_files_and_prints_their_paths(
    client_env: dict[str, str], shared: AsyncSandbox, tmp_path: Path
) -> None:
    code = MAKE_PNG + "display(Dot())\nprint('after')\nDot()"
    ran = subprocess.run(
        [CLI, "run", shared.id, "--code", code, "--images", str(tmp_path / "out")],
        env={**os.environ, **client_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:2] == ["after", "Dot()"]
    paths = [Path(line) for line in lines[2:]]
    assert len(paths) == 2
    assert all(path.parent == tmp_path / "out" and path.suffix == ".png" for path in paths)
    assert [path.read_bytes() for path in paths] == [PNG, PNG]
