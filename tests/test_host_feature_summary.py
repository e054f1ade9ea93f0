"""Issue 14 item 5: ten gVisor tests skipped on a run without anyone noticing. Every run
ends with a summary line of what was skipped for lack of a host feature."""

import ast
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST_FEATURE = "host feature: "  # the root conftest.py's prefix


def test_skips_for_a_missing_host_feature_are_summed_up_at_the_end() -> None:
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".host-feature-") as directory:
        test_file = Path(directory) / "test_probe.py"
        test_file.write_text(
            textwrap.dedent(
                """
                import pytest

                @pytest.mark.parametrize("n", [1, 2])
                def test_needs_gvisor(n):
                    pytest.skip("host feature: gVisor (runsc) is not installed")

                def test_other_skip():
                    pytest.skip("not today")

                def test_runs():
                    pass
                """
            )
        )
        ran = subprocess.run(
            [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    summary = next(line for line in lines if "for lack of a host feature" in line)
    assert "2 skipped for lack of a host feature" in summary
    following = lines[lines.index(summary) + 1]
    assert following.strip() == "2 x gVisor (runsc) is not installed"
    assert "not today" not in following  # an ordinary skip is not a host feature


# What a skip for lack of something on this host talks about (issue 14 found gVisor and
# network-mode skips without the prefix, so the summary missed them).
_HOST_WORDS = re.compile(r"not installed|is missing|unavailable|no route to|cannot reach", re.I)
_ROOTS = ("libs", "services", "devstack", "sdk", "tests")


def _skip_reasons(source: str) -> list[tuple[int, str]]:
    """(line, leading text) of each literal reason given to ``pytest.skip`` or
    ``skipif(reason=...)``; an f-string counts by its text before the first field."""
    reasons = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        arguments = [kw.value for kw in node.keywords if kw.arg in ("reason", "msg")]
        if node.func.attr == "skip":
            arguments += node.args[:1]
        elif node.func.attr != "skipif":
            continue
        for argument in arguments:
            parts = argument.values if isinstance(argument, ast.JoinedStr) else [argument]
            text = "".join(
                str(part.value)
                for part in parts
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
            reasons.append((node.lineno, text))
    return reasons


def test_every_skip_for_lack_of_a_host_feature_carries_the_prefix() -> None:
    unmarked = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for root in _ROOTS
        for path in (ROOT / root).rglob("test_*.py")
        if ".venv" not in path.parts
        for line, text in _skip_reasons(path.read_text())
        if _HOST_WORDS.search(text) and not text.startswith(HOST_FEATURE)
    ]
    assert unmarked == []
