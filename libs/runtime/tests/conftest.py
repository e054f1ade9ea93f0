"""A runtime dir every sandbox uid can traverse, and a driver on it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmsafespace.runtime.local import LocalConfig, LocalDriver, sweep


@pytest.fixture(scope="module")
def runtime_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    sweep(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def config(runtime_dir: Path) -> LocalConfig:
    return LocalConfig(runtime_dir=runtime_dir)


@pytest.fixture(scope="module")
def driver(config: LocalConfig) -> LocalDriver:
    return LocalDriver(config)
