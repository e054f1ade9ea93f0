"""Images cannot be built here (no Docker engine): check what can be checked offline."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

DOCKERFILES = sorted(
    [*ROOT.glob("services/*/Dockerfile"), *ROOT.glob("runtimes/*/Dockerfile")],
    key=lambda path: str(path),
)
IDS = [str(path.relative_to(ROOT)) for path in DOCKERFILES]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_every_service_and_runtime_has_a_dockerfile() -> None:
    services = {path.name for path in (ROOT / "services").iterdir() if path.is_dir()}
    assert {p.parent.name for p in DOCKERFILES if p.parent.parent.name == "services"} == services
    assert {"python", "node"} <= {p.parent.name for p in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_copy_sources_exist_in_the_build_context(dockerfile: Path) -> None:
    for instruction, args in _instructions(dockerfile):
        if instruction != "COPY" or "--from=" in args:
            continue
        *sources, _ = [word for word in shlex.split(args) if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} is missing"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_runs_as_non_root_with_a_healthcheck_and_an_importable_entrypoint(
    dockerfile: Path,
) -> None:
    instructions = _instructions(dockerfile)
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    if dockerfile.parent.parent.name == "runtimes":
        assert users[-1] == "1000:1000"
    assert any(instruction == "HEALTHCHECK" for instruction, _ in instructions)
    (entrypoint,) = [json.loads(args) for inst, args in instructions if inst == "ENTRYPOINT"]
    assert entrypoint[1] == "-m"
    assert importlib.util.find_spec(entrypoint[2]) is not None, entrypoint[2]


def test_service_dockerfiles_install_dependencies_before_the_source() -> None:
    for dockerfile in ROOT.glob("services/*/Dockerfile"):
        steps = [args for inst, args in _instructions(dockerfile) if inst in ("COPY", "RUN")]
        first_source = next(i for i, args in enumerate(steps) if args.startswith("libs/ "))
        dependencies = next(i for i, args in enumerate(steps) if "--no-install-workspace" in args)
        assert dependencies < first_source, dockerfile


def test_hadolint_finds_nothing(hadolint: Path) -> None:
    result = subprocess.run(
        [str(hadolint), *map(str, DOCKERFILES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_images_write_the_sandbox_tools_where_the_pod_environment_expects() -> None:
    """/opt/runtime/bin (first on the Pod's PATH) and /opt/runtime/hooks, written by the
    module the local driver uses (libs/runtime/tests/test_userland.py runs it the same way)."""
    for dockerfile in ROOT.glob("runtimes/*/Dockerfile"):
        runs = [args for inst, args in _instructions(dockerfile) if inst == "RUN"]
        assert any("python3 -m userland.tools /opt/runtime" in args for args in runs), dockerfile
