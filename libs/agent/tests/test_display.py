"""Rich results: the display formatter, and cells displaying through a real worker."""

from __future__ import annotations

import base64
import importlib.util
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.display import MAX_BUNDLE_BYTES, Display, capped, mimebundle
from llmsafespace.agent.figures import BACKEND
from llmsafespace.agent.interpreter import Interpreter
from llmsafespace.agent.outcome import Outcome
from llmsafespace.agent.protocol import Frame

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class Rich:
    def _repr_html_(self) -> str:
        return "<b>rich</b>"

    def _repr_png_(self) -> bytes:
        return PNG

    def _repr_json_(self) -> dict[str, int]:
        return {"a": 1}

    def _repr_latex_(self) -> None:
        return None  # offers no LaTeX after all

    def __repr__(self) -> str:
        return "Rich()"


class Bundled:
    """Offers its own bundle, and records what it was asked for."""

    asked: dict[str, Any] | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        self.asked = {"include": include, "exclude": exclude}
        return {"text/plain": "bundled", "image/png": PNG, "text/html": "<i>b</i>"}, {}

    def _repr_html_(self) -> str:
        return "<i>from the method</i>"  # the bundle's own html wins


class Broken:
    def _repr_html_(self) -> str:
        raise RuntimeError("no html today")

    def _repr_svg_(self) -> int:
        return 3  # not a string

    def __repr__(self) -> str:
        raise ValueError("no repr either")


def test_text_plain_is_the_repr_and_richer_types_come_from_the_repr_methods() -> None:
    data = mimebundle(Rich())
    assert data == {
        "text/plain": "Rich()",
        "text/html": "<b>rich</b>",
        "image/png": base64.b64encode(PNG).decode(),
        "application/json": {"a": 1},
    }


def test_a_mimebundle_is_taken_as_offered_with_bytes_as_base64() -> None:
    obj = Bundled()
    data = mimebundle(obj, exclude={"text/html"})
    assert obj.asked == {"include": None, "exclude": {"text/html"}}
    assert data == {"text/plain": "bundled", "image/png": base64.b64encode(PNG).decode()}
    assert mimebundle(obj)["text/html"] == "<i>b</i>"


def test_a_failing_formatter_loses_its_type_and_nothing_else() -> None:
    data = mimebundle(Broken())
    assert list(data) == ["text/plain"]
    assert "ValueError: no repr either" in data["text/plain"]


def test_a_bundle_past_the_cap_drops_its_largest_entries_and_keeps_text() -> None:
    data = {"text/plain": "small", "text/html": "x" * 1000, "image/png": "y" * 5000}
    bundle = capped(data, main=False, limit=2000)
    assert bundle == {
        "data": {"text/plain": "small", "text/html": "x" * 1000},
        "isMainResult": False,
        "truncated": True,
    }
    assert capped({"text/plain": "ok"}, main=True)["truncated"] is False


def test_a_text_past_the_cap_is_shortened_with_a_marker() -> None:
    bundle = capped({"text/plain": "z" * 10_000, "text/html": "h" * 10_000}, True, limit=1000)
    assert list(bundle["data"]) == ["text/plain"]
    text = bundle["data"]["text/plain"]
    assert len(text.encode()) <= 1000
    assert text.startswith("zzz")
    assert text.endswith("[truncated: the result exceeded the display size limit]")
    assert bundle["truncated"] is True


def test_the_cap_counts_bytes_as_sent_json_escaped() -> None:
    for char in ("\x01", "é", "\n"):
        bundle = capped({"text/plain": char * 10_000}, False, limit=1000)
        text = bundle["data"]["text/plain"]
        assert len(json.dumps(text)) <= 1000
        assert text.startswith(char * 100)
        assert bundle["truncated"] is True


def test_display_publishes_each_object_in_order_and_raw_bundles_as_given() -> None:
    shown: list[dict[str, Any]] = []
    display = Display(shown.append)
    display(1, "two", include={"text/plain"})
    display({"image/png": PNG, "text/plain": "an image"}, raw=True)
    assert [bundle["data"] for bundle in shown] == [
        {"text/plain": "1"},
        {"text/plain": "'two'"},
        {"image/png": base64.b64encode(PNG).decode(), "text/plain": "an image"},
    ]
    assert not any(bundle["isMainResult"] for bundle in shown)


@pytest.fixture
def interpreter() -> Iterator[Interpreter]:
    with tempfile.TemporaryDirectory() as cwd:
        interpreter = Interpreter(cwd, {"PATH": "/usr/bin:/bin"})
        yield interpreter
        interpreter.close()


Event = tuple[str, Any]


def _run(interpreter: Interpreter, code: str) -> tuple[Outcome, list[Event]]:
    events: list[Event] = []

    def sink(stream: str, text: str) -> None:
        if events and events[-1][0] == stream:  # a write may arrive split
            events[-1] = (stream, events[-1][1] + text)
        else:
            events.append((stream, text))

    def display(bundle: Frame) -> None:
        events.append(("display", bundle))

    outcome = interpreter.run(code, time_limit=30, sink=sink, cancel=Cancel(), display=display)
    return outcome, events


def test_displays_in_a_loop_come_in_order_with_the_output(
    interpreter: Interpreter,
) -> None:
    outcome, events = _run(
        interpreter, "for i in range(3):\n    print('before', i)\n    display(i)\n'end'"
    )
    assert outcome.status == "completed"
    assert outcome.result == "'end'"
    expected: list[Event] = []
    for i in range(3):
        expected += [("stdout", f"before {i}\n")]
        expected += [("display", {"data": {"text/plain": str(i)}, "isMainResult": False})]
    expected += [("display", {"data": {"text/plain": "'end'"}, "isMainResult": True})]
    for bundle in (event[1] for event in events if event[0] == "display"):
        assert bundle.pop("truncated") is False
    assert events == expected


def test_a_class_defined_in_a_cell_offers_its_mimebundle(interpreter: Interpreter) -> None:
    code = (
        "class Chart:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'image/png': b'\\x89PNG', 'application/json': {'n': [1, 2]}}\n"
        "    def __repr__(self):\n"
        "        return 'Chart()'\n"
        "Chart()"
    )
    outcome, events = _run(interpreter, code)
    assert outcome.result == "Chart()"
    assert events == [
        (
            "display",
            {
                "data": {
                    "image/png": base64.b64encode(b"\x89PNG").decode(),
                    "application/json": {"n": [1, 2]},
                    "text/plain": "Chart()",
                },
                "isMainResult": True,
                "truncated": False,
            },
        )
    ]


def test_a_trailing_none_or_semicolon_displays_nothing(interpreter: Interpreter) -> None:
    for code in ("None", "x = 1\nx;", "print('only output')"):
        outcome, events = _run(interpreter, code)
        assert outcome.result is None
        assert [kind for kind, _ in events if kind == "display"] == []


def test_a_result_too_large_is_truncated_and_the_interpreter_keeps_serving(
    interpreter: Interpreter,
) -> None:
    code = (
        "class Huge:\n"
        "    def _repr_html_(self):\n"
        f"        return 'h' * {4 * MAX_BUNDLE_BYTES}\n"
        "    def __repr__(self):\n"
        f"        return 'r' * {4 * MAX_BUNDLE_BYTES}\n"
        "big = Huge()\n"
        "display(big)\n"
        "big"
    )
    outcome, events = _run(interpreter, code)
    assert outcome.status == "completed"
    bundles = [bundle for kind, bundle in events if kind == "display"]
    assert [bundle["isMainResult"] for bundle in bundles] == [False, True]
    for bundle in bundles:
        assert bundle["truncated"] is True
        assert list(bundle["data"]) == ["text/plain"]
        assert len(json.dumps(bundle).encode()) < MAX_BUNDLE_BYTES + 1024
    assert outcome.result is not None
    assert outcome.result.endswith("[truncated: the result exceeded the display size limit]")
    again, _ = _run(interpreter, "big.__class__.__name__")
    assert again.result == "'Huge'"  # the same worker: state kept


def test_matplotlib_installed_later_still_gets_the_agents_backend_and_no_env_var(
    interpreter: Interpreter, tmp_path: Path
) -> None:
    if importlib.util.find_spec("matplotlib") is not None:
        pytest.skip("a real matplotlib is installed here; this test stands one in")
    code = (
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "try:\n    import matplotlib\nexcept ImportError:\n    missing = True\nmissing"
    )
    before, _ = _run(interpreter, code)
    assert before.result == "True"
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("rcParams = {'backend': 'agg'}\n")
    after, _ = _run(interpreter, "import matplotlib\nmatplotlib.rcParams['backend']")
    assert after.result == repr(BACKEND)
    environment, _ = _run(interpreter, "import os\n'MPLBACKEND' in os.environ")
    assert environment.result == "False", "a subprocess's matplotlib keeps its default"
