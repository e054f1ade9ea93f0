"""`llmsafespace cp` tells `SANDBOX:/path` from a local path, keeping the path whole, and
copies a file into a remote directory as cp does locally."""

import pytest

from llmsafespace.sdk import NotFoundError, ValidationError
from llmsafespace.sdk.cli.files import _remote, _remote_target


def test_a_remote_path_is_split_into_sandbox_and_path() -> None:
    assert _remote("sb-abc123:/workspace/a.txt") == ("sb-abc123", "/workspace/a.txt")
    assert _remote("./sb-abc123:/x") is None
    assert _remote("local.txt") is None


def test_a_trailing_newline_stays_in_the_remote_path() -> None:
    """`^…$` with `match` dropped it, so `cp` wrote to a different file."""
    assert _remote("sb-abc123:/workspace/a\n") == ("sb-abc123", "/workspace/a\n")


class Listed:
    """A sandbox whose `files.list` finds the directories in `directories`, nothing else
    (a file's path: not a directory; any other: not found)."""

    def __init__(self, directories: set[str], files: set[str]) -> None:
        self.files = self
        self._directories = directories
        self._files = files

    def list(self, path: str) -> list[object]:
        if path in self._directories:
            return []
        if path in self._files:
            raise ValidationError(f"{path}: a symlink or not a directory", code="invalid_path")
        raise NotFoundError(f"{path}: No such file or directory", code="not_found")


@pytest.mark.parametrize(
    ("destination", "target"),
    [
        ("/workspace/dir", "/workspace/dir/r.bin"),  # an existing directory: into it
        ("/workspace/dir/", "/workspace/dir/r.bin"),
        ("/workspace/new/", "/workspace/new/r.bin"),  # a trailing slash: into it, made
        ("/workspace/new", "/workspace/new"),  # nothing there: that name
        ("/workspace/a.txt", "/workspace/a.txt"),  # a file: replaced
    ],
)
def test_a_file_copied_to_a_remote_directory_goes_into_it_as_with_cp(
    destination: str, target: str
) -> None:
    """It was written as a file named `dir` (or refused: `Is a directory`)."""
    sandbox = Listed({"/workspace/dir"}, {"/workspace/a.txt"})
    assert _remote_target(sandbox, destination, "r.bin") == target  # type: ignore[arg-type]
