import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmsafespace.devstack import state_dirs


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A fresh state directory (the unprivileged PostgreSQL user reaches the shared
    directory beside it)."""
    path = Path(tempfile.mkdtemp(prefix="devstack-test-", dir="/tmp"))
    yield path
    state_dirs.remove(path)
