"""Locate the repository and the offline validators (skipping with the reason if absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from . import tools

ROOT = Path(__file__).resolve().parents[2]


def _tool(install: Callable[[], Path]) -> Path:
    try:
        return install()
    except tools.Unavailable as exc:
        pytest.skip(f"host feature: {install.__name__} unavailable: {exc}")


@pytest.fixture(scope="session")
def helm() -> Path:
    return _tool(tools.helm)


@pytest.fixture(scope="session")
def kubernetes_validate() -> Path:
    return _tool(tools.kubernetes_validate)


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return _tool(tools.hadolint)


@pytest.fixture(scope="session")
def compose() -> Path:
    return _tool(tools.compose)
