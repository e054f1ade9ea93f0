"""Ranges and conditional requests on file downloads, through the real stack: a range
none of the file is in, `bytes=-0`, an empty file, and `If-None-Match`."""

import httpx
import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def small(stack, sandbox_id: str) -> str:
    """A 3-byte file's URL path."""
    path = f"/sandboxes/{sandbox_id}/files/tmp/three.txt"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as api:
        assert (await api.put(path, content=b"abc")).status_code == 201
    return path


@pytest.mark.parametrize(
    "asked", ["bytes=9999-", "bytes=3-", "bytes=3-10", "bytes=-0", "bytes=" + "1" * 5000 + "-"]
)
async def test_a_range_none_of_the_file_is_in_is_a_416_envelope(
    api: httpx.AsyncClient, small: str, asked: str
) -> None:
    response = await api.get(small, headers={"range": asked})
    assert response.status_code == 416, response.text
    assert response.headers["content-range"] == "bytes */3"
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("end", ["99", "9" * 5000])  # int() refuses over 4,300 digits
async def test_a_range_that_starts_inside_the_file_is_cut_at_its_end(
    api: httpx.AsyncClient, small: str, end: str
) -> None:
    response = await api.get(small, headers={"range": f"bytes=1-{end}"})
    assert (response.status_code, response.content) == (206, b"bc")
    assert response.headers["content-range"] == "bytes 1-2/3"


@pytest.mark.parametrize("asked", ["bytes=0-", "bytes=-5", "bytes=-0", "bytes=0-0"])
async def test_an_empty_file_is_answered_whole_whatever_the_range(
    api: httpx.AsyncClient, sandbox_id: str, asked: str
) -> None:
    path = f"/sandboxes/{sandbox_id}/files/tmp/empty.txt"
    assert (await api.put(path, content=b"")).status_code == 201
    response = await api.get(path, headers={"range": asked})
    assert (response.status_code, response.content) == (200, b""), response.headers
    assert "content-range" not in response.headers


async def test_the_etag_returned_makes_the_next_get_a_304_without_a_body(
    api: httpx.AsyncClient, small: str
) -> None:
    first = await api.get(small)
    etag = first.headers["etag"]
    again = await api.get(small, headers={"if-none-match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == etag
    listed = await api.get(small, headers={"if-none-match": f'"other", W/{etag}'})
    assert listed.status_code == 304, "a list, and the weak form, match too"
    other = await api.get(small, headers={"if-none-match": '"something-else"'})
    assert (other.status_code, other.content) == (200, b"abc")
