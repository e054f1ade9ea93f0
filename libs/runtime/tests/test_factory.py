"""The driver a sandbox-creating service gets from its settings and runtime catalog."""

import sys
from pathlib import Path

import pytest

from llmsafespace.contracts import Catalog, RuntimeInfo
from llmsafespace.runtime import (
    RuntimeSettings,
    RuntimeSpec,
    RuntimeUnavailable,
    UnknownRuntime,
    driver_for,
)

ONLY = RuntimeInfo(
    id="only:1", language="python", version="1", image="unused", interpreter=sys.executable
)


async def test_the_local_driver_serves_the_runtimes_of_the_catalog_and_no_other(
    runtime_dir: Path,
) -> None:
    driver = driver_for(RuntimeSettings(driver="local", dir=runtime_dir), Catalog(runtimes=[ONLY]))
    try:
        with pytest.raises(UnknownRuntime, match=r"available: only:1$"):
            await driver.create(RuntimeSpec(runtime_id="sb-aaaaaaaaaaaa", runtime="python:3.11"))
    finally:
        await driver.close()


def test_the_kubernetes_driver_is_the_one_the_settings_name() -> None:
    with pytest.raises(RuntimeUnavailable, match="kubernetes"):
        driver_for(RuntimeSettings(driver="kubernetes"), Catalog(runtimes=[ONLY]))
