"""Issue 14 item 5: ten gVisor tests skipped on a run without anyone noticing. Every run
ends with a summary line of what was skipped for lack of a host feature."""

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
