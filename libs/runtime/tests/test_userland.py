"""The sandbox's tools and startup hook as a runtime image writes them (the module run
on its own, nothing of this package around it), and the hook's offline pip hint."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from llmsafespace.runtime import userland
from llmsafespace.runtime.userland.sitecustomize import pip_downloads

PYTHON = "/usr/bin/python3"  # a bare interpreter, as in an image: no venv, no llmsafespace


@pytest.fixture
def runtime_root(tmp_path: Path) -> Path:
    """``/opt/runtime`` of an image, written as its Dockerfile does."""
    shutil.copytree(Path(userland.__file__).parent, tmp_path / "build" / "userland")
    root = tmp_path / "opt" / "runtime"
    subprocess.run(
        [PYTHON, "-m", "userland.tools", str(root)],
        env={"PYTHONPATH": str(tmp_path / "build"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return root


def test_the_tools_module_writes_bin_and_hooks_on_its_own(runtime_root: Path) -> None:
    bin_dir = runtime_root / "bin"
    assert os.readlink(bin_dir / "python") == os.readlink(bin_dir / "python3") == PYTHON
    pip = subprocess.run([bin_dir / "pip", "--version"], capture_output=True, text=True, check=True)
    assert "python 3.11" in pip.stdout
    hook = runtime_root / "hooks" / "sitecustomize.py"
    assert hook.read_text() == (Path(userland.__file__).parent / "sitecustomize.py").read_text()


@pytest.mark.parametrize(
    ("argv", "downloads"),
    [
        (["python3", "-m", "pip", "install", "six"], True),
        (["python3", "-m", "pip", "-q", "install", "six"], True),
        (["/usr/bin/python3", "-I", "-m", "pip", "download", "six"], True),
        (["python3", "-m", "pip", "list"], False),
        (["python3", "-m", "venv", "install"], False),
        (["python3", "install.py"], False),
    ],
)
def test_only_pip_commands_that_download_are_hinted(argv: list[str], downloads: bool) -> None:
    assert pip_downloads(argv) is downloads


def _pip(runtime_root: Path, *args: str, offline: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{runtime_root / 'bin'}:/usr/bin:/bin", "PIP_NO_INDEX": "1"}
    env["PIP_TARGET"] = str(runtime_root.parent / "packages")  # as in a sandbox
    env["PYTHONPATH"] = str(runtime_root / "hooks")
    if offline:
        env["LLMSAFESPACE_OFFLINE"] = "1"
    return subprocess.run(
        [str(runtime_root / "bin" / "python3"), "-m", "pip", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_offline_a_failing_pip_download_says_how_to_get_packages(runtime_root: Path) -> None:
    for args in (("install", "six"), ("-q", "install", "six"), ("download", "six")):
        failed = _pip(runtime_root, *args, offline=True)
        assert failed.returncode == 1, failed
        assert "No matching distribution" in failed.stderr or args[0] == "-q", failed
        assert "networkAccess" in failed.stderr, failed
        assert "POST /sandboxes/{id}/packages" in failed.stderr, failed
    listed = _pip(runtime_root, "list", offline=True)
    assert listed.returncode == 0
    assert "networkAccess" not in listed.stderr
    online = _pip(runtime_root, "install", "six", offline=False)
    assert online.returncode == 1
    assert "networkAccess" not in online.stderr
