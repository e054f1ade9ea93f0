"""Both chunk stores pass the same tests: a directory, and S3 as a real moto server
(started here as a subprocess on a free loopback port) speaks it."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from llmsafespace.devstack.ports import free_port
from llmsafespace.sandbox_svc.chunks import (
    ChunkStore,
    ChunkStoreError,
    LocalChunkStore,
    S3ChunkStore,
    digest,
)

BUCKET = "snapshots"
START_SECONDS = 60.0


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, "moto server exited"
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ChunkStore:
    if request.param == "local":
        return LocalChunkStore(tmp_path / "chunks")
    endpoint = request.getfixturevalue("s3_endpoint")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    bucket = f"{BUCKET}-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    return S3ChunkStore(bucket, "chunks/", endpoint)


async def test_a_chunk_round_trips_and_is_stored_once(store: ChunkStore) -> None:
    data = os.urandom(300_000)
    name = digest(data)
    assert await store.put(name, data) is True
    assert await store.put(name, data) is False  # already there: not stored again
    assert await store.get(name) == data
    await store.delete(name)
    await store.delete(name)  # idempotent
    assert await store.put(name, data) is True


async def test_a_name_that_is_not_a_digest_is_refused(store: ChunkStore) -> None:
    with pytest.raises(ValueError, match="not a chunk name"):
        await store.put("../escape", b"x")


async def test_a_chunk_the_store_cannot_read_is_a_chunk_store_error(store: ChunkStore) -> None:
    with pytest.raises(ChunkStoreError):
        await store.get(digest(b"never stored"))


async def test_an_s3_service_out_of_reach_is_a_chunk_store_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    store = S3ChunkStore(BUCKET, "chunks/", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ChunkStoreError):
        await store.put(digest(b"x"), b"x")


async def test_a_digest_with_a_trailing_newline_is_refused(store: ChunkStore) -> None:
    """`^…$` with `match` took `<digest>\\n` (`$` matches before a final newline)."""
    with pytest.raises(ValueError, match="not a chunk name"):
        await store.put(digest(b"x") + "\n", b"x")


async def test_the_listing_names_every_stored_chunk_once_in_batches(store: ChunkStore) -> None:
    assert [names async for names in store.listing(2)] == []  # nothing stored yet
    stored = {digest(bytes([n])) for n in range(5)}
    for name in stored:
        await store.put(name, b"chunk")
    batches = [names async for names in store.listing(2)]
    assert all(1 <= len(names) <= 2 for names in batches), batches
    listed = [name for names in batches for name in names]
    assert sorted(listed) == sorted(stored)
