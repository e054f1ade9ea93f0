"""`files.list` returns the entries as a list, as it always did, and says whether the
listing was cut short (`truncated`), which it used to drop. No stack needed."""

import httpx
import pytest

from llmsafespace.sdk import FileInfo
from llmsafespace.sdk.config import ClientConfig
from llmsafespace.sdk.files import AsyncFiles, FileList
from llmsafespace.sdk.transport import Transport

ENTRY = {
    "path": "/workspace/a.txt",
    "name": "a.txt",
    "size": 1,
    "isDirectory": False,
    "modifiedAt": "2026-01-01T00:00:00Z",
    "createdAt": "2026-01-01T00:00:00Z",
    "mode": "0644",
}


def _files(truncated: bool) -> AsyncFiles:
    def handler(request: httpx.Request) -> httpx.Response:
        listing = {"path": request.url.params["path"], "files": [ENTRY], "truncated": truncated}
        return httpx.Response(200, json=listing)

    config = ClientConfig("http://api.test/api/v1", "k")
    client = httpx.AsyncClient(
        base_url=config.api_url + "/", transport=httpx.MockTransport(handler)
    )
    return AsyncFiles(Transport(config, client), "sb-0123456789ab")


@pytest.mark.parametrize("truncated", [True, False])
async def test_a_listing_is_a_list_of_its_entries_that_says_whether_it_was_cut_short(
    truncated: bool,
) -> None:
    entries = await _files(truncated).list("/workspace")
    assert isinstance(entries, FileList)
    assert entries == [FileInfo.model_validate(ENTRY)]
    assert [entry.name for entry in entries] == ["a.txt"]
    assert entries.truncated is truncated
