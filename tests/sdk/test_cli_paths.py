"""`llmsafespace cp` tells `SANDBOX:/path` from a local path, keeping the path whole."""

from llmsafespace.sdk.cli.files import _remote


def test_a_remote_path_is_split_into_sandbox_and_path() -> None:
    assert _remote("sb-abc123:/workspace/a.txt") == ("sb-abc123", "/workspace/a.txt")
    assert _remote("./sb-abc123:/x") is None
    assert _remote("local.txt") is None


def test_a_trailing_newline_stays_in_the_remote_path() -> None:
    """`^…$` with `match` dropped it, so `cp` wrote to a different file."""
    assert _remote("sb-abc123:/workspace/a\n") == ("sb-abc123", "/workspace/a\n")
