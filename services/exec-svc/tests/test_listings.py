"""A listing crosses the bus as one reply: the agent's bound is the contracts' one, and
what the agent lists within it, as exec-svc relays it, fits in one NATS message."""

import json
import os
from pathlib import Path

import pytest
from nats.aio.client import DEFAULT_MAX_PAYLOAD_SIZE

from llmsafespace.agent import files, paths
from llmsafespace.contracts import FileListing
from llmsafespace.contracts.files import MAX_LISTING_BYTES, MAX_PATH_BYTES


def _reply(listing: dict[str, object]) -> bytes:
    """The listing as exec-svc answers it: validated, then encoded by pydantic."""
    return FileListing.model_validate(listing).model_dump_json(by_alias=True).encode()


def test_the_agent_bounds_a_listing_as_the_contracts_say() -> None:
    assert files.MAX_LISTING_BYTES == MAX_LISTING_BYTES


@pytest.mark.parametrize(("count", "length"), [(5000, 8), (2000, 200), (1500, 255)])
def test_a_directory_the_agent_lists_fits_in_one_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, length: int
) -> None:
    """Bounded by 5,000 entries, each of these was past 1 MiB, and no reply was sent."""
    monkeypatch.setattr(paths, "ROOTS", (str(tmp_path),))
    for n in range(count):
        (tmp_path / f"{n:0{length}d}").touch()
    listing = files.list_files({"path": str(tmp_path)})
    assert listing["truncated"]
    assert len(_reply(listing)) < DEFAULT_MAX_PAYLOAD_SIZE


def test_the_largest_listing_the_agent_may_send_fits_in_one_reply() -> None:
    """The smallest entries (the most of them, each one more that exec-svc's encoding
    lengthens: whole-second timestamps, no link) filling the bound, and the longest path
    for the directory."""
    regular_file = os.stat_result((0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0))
    entry = paths.info("/tmp/a", "a", regular_file)
    count = MAX_LISTING_BYTES // (len(json.dumps(entry, separators=(",", ":"))) + 1)
    directory = "/tmp/" + "d" * (MAX_PATH_BYTES - len("/tmp/"))
    listing = {"path": directory, "files": [entry] * count, "truncated": True}
    assert len(_reply(listing)) < DEFAULT_MAX_PAYLOAD_SIZE
