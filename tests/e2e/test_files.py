"""Files through the real stack: streamed round trips, listings, paths that escape,
limits, archives and ranges."""

import hashlib
import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.stack


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> dict[str, object]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": code}
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize("size", [0, 1, 256 * 1024, 3 * 1024 * 1024 + 7])
async def test_binary_files_round_trip_byte_for_byte(
    api: httpx.AsyncClient, sandbox_id: str, size: int
) -> None:
    data = os.urandom(size)
    path = f"/sandboxes/{sandbox_id}/files/workspace/round/{size}.bin"
    written = await api.put(path, content=data)
    assert written.status_code == 201, written.text
    assert written.json()["size"] == size
    assert written.json()["sha256"] == sha256(data)
    read = await api.get(path)
    assert read.status_code == 200, read.text
    assert read.content == data
    assert read.headers["content-length"] == str(size)
    assert read.headers["etag"]
    inside = await run(
        api,
        sandbox_id,
        f"import hashlib; print(hashlib.sha256(open('/workspace/round/{size}.bin','rb').read())"
        ".hexdigest())",
    )
    assert inside["stdout"] == sha256(data) + "\n"


async def test_a_50_mb_file_streams_both_ways(api: httpx.AsyncClient, sandbox_id: str) -> None:
    block = os.urandom(1024 * 1024)
    total = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for index in range(50):
            piece = block[index:] + block[:index]
            total.update(piece)
            yield piece

    path = f"/sandboxes/{sandbox_id}/files/workspace/big.bin"
    written = await api.put(path, content=body(), timeout=120)
    assert written.status_code == 201, written.text
    assert written.json()["size"] == 50 * 1024 * 1024
    assert written.json()["sha256"] == total.hexdigest()
    back = hashlib.sha256()
    size = 0
    async with api.stream("GET", path, timeout=120) as response:
        assert response.status_code == 200
        async for piece in response.aiter_bytes():
            back.update(piece)
            size += len(piece)
    assert (size, back.hexdigest()) == (50 * 1024 * 1024, total.hexdigest())
    assert (await api.delete(path)).status_code == 200


async def test_listing_shows_what_was_written(api: httpx.AsyncClient, sandbox_id: str) -> None:
    base = f"/sandboxes/{sandbox_id}/files/workspace/listed"
    for name in ("a.txt", "sub/b.csv"):
        assert (await api.put(f"{base}/{name}", content=b"x" * 3)).status_code == 201
    flat = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/listed"})
    assert flat.status_code == 200, flat.text
    body = flat.json()
    assert body["path"] == "/workspace/listed"
    entries = {entry["name"]: entry for entry in body["files"]}
    assert set(entries) == {"a.txt", "sub"}
    assert entries["a.txt"]["size"] == 3
    assert not entries["a.txt"]["isDirectory"]
    assert entries["sub"]["isDirectory"]
    assert set(entries["a.txt"]) >= {"path", "modifiedAt", "createdAt", "mode"}
    deep = await api.get(
        f"/sandboxes/{sandbox_id}/files",
        params={"path": "/workspace/listed", "recursive": "true"},
    )
    paths = {entry["path"] for entry in deep.json()["files"]}
    assert "/workspace/listed/sub/b.csv" in paths
    kept = await api.delete(f"{base}/sub")
    assert kept.status_code == 409, kept.text
    gone = await api.delete(f"{base}", params={"recursive": "true"})
    assert gone.status_code == 200, gone.text
    missing = await api.get(f"{base}/a.txt")
    assert missing.status_code == 404


async def test_a_listing_too_large_for_one_reply_is_cut_short_and_says_so(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """5,000 files, or 2,000 with names of 200 characters: the listing's reply was larger
    than NATS carries, never sent, and the request failed 504 after 10 s."""
    await run(
        api,
        sandbox_id,
        "import os\n"
        "os.makedirs('/workspace/many')\n"
        "for n in range(1, 5001): open(f'/workspace/many/{n}', 'w').close()\n"
        "os.makedirs('/workspace/long')\n"
        "for n in range(2000): open(f'/workspace/long/{n:0200d}', 'w').close()",
    )
    names = sorted(str(n) for n in range(1, 5001))
    for path, recursive in [
        ("/workspace/many", False),
        ("/workspace/many/", False),  # a directory's path may end with a slash
        ("/workspace/long", False),
        ("/workspace", True),
    ]:
        params = {"path": path, "recursive": str(recursive).lower()}
        listed = await api.get(f"/sandboxes/{sandbox_id}/files", params=params)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["truncated"] is True
        kept = [entry["path"] for entry in body["files"]]
        assert 1000 < len(kept) < 5000
        assert kept == sorted(kept)
    many = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/many/"})
    assert many.json()["path"] == "/workspace/many"
    kept = [entry["name"] for entry in many.json()["files"]]
    assert kept == names[: len(kept)]  # the first by name


async def test_a_files_path_with_a_trailing_slash_is_refused_naming_it(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """The slash was dropped: `newdir/` wrote a file named newdir, `a.txt/` read a.txt."""
    base = f"/sandboxes/{sandbox_id}/files/workspace/slash"
    assert (await api.put(f"{base}/a.txt", content=b"a")).status_code == 201
    for method, path in [("PUT", "newdir/"), ("GET", "a.txt/"), ("DELETE", "a.txt/")]:
        body = b"x" if method == "PUT" else None
        refused = await api.request(method, f"{base}/{path}", content=body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_request"
        assert f"/workspace/slash/{path}" in error["message"]
    assert (await api.get(f"{base}/newdir")).status_code == 404  # nothing was written
    assert (await api.get(f"{base}/a.txt")).content == b"a"  # nor deleted
    # A directory may end in `/`: a listing's, and an archive's (E2B's users write them so).
    archive = await api.get(
        f"/sandboxes/{sandbox_id}/files/archive", params={"path": "/workspace/slash/"}
    )
    assert archive.status_code == 200, archive.text
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as packed:
        assert "a.txt" in {Path(name).name for name in packed.getnames()}


@pytest.mark.parametrize(
    "path",
    ["etc/passwd", "workspace/../etc/passwd", "workspace/%2e%2e/etc/passwd", "tmp/a%00b"],
)
async def test_paths_outside_the_sandbox_roots_are_refused(
    api: httpx.AsyncClient, sandbox_id: str, path: str
) -> None:
    response = await api.get(f"/sandboxes/{sandbox_id}/files/{path}")
    assert response.status_code in (400, 404), response.text
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_path"
    written = await api.put(f"/sandboxes/{sandbox_id}/files/{path}", content=b"no")
    assert written.status_code in (400, 404), written.text
    listed = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/etc"})
    assert listed.json()["error"]["code"] == "invalid_path"


async def test_symlinks_out_of_the_roots_cannot_be_read_or_written(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    await run(
        api,
        sandbox_id,
        "import os\n"
        "os.makedirs('/workspace/links', exist_ok=True)\n"
        "os.symlink('/etc/passwd', '/workspace/links/passwd')\n"
        "os.symlink('/etc', '/workspace/links/etc')\n"
        "os.symlink('/workspace/links/real.txt', '/workspace/links/inside')\n"
        "open('/workspace/links/real.txt', 'w').write('inside')",
    )
    base = f"/sandboxes/{sandbox_id}/files/workspace/links"
    for target in ("passwd", "etc/passwd", "etc/hostname"):
        read = await api.get(f"{base}/{target}")
        assert read.status_code == 400, read.text
        assert read.json()["error"]["code"] == "invalid_path"
        written = await api.put(f"{base}/{target}", content=b"pwned")
        assert written.status_code == 400, written.text
    inside = await api.get(f"{base}/inside")
    assert (inside.status_code, inside.content) == (200, b"inside")
    still = await run(api, sandbox_id, "print(os.readlink('/workspace/links/passwd'))")
    assert still["stdout"] == "/etc/passwd\n"


async def test_a_file_over_the_limit_is_refused_with_413(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    block = bytes(1024 * 1024)

    async def body() -> AsyncIterator[bytes]:  # chunked: no length to check up front
        for _ in range(101):
            yield block

    path = f"/sandboxes/{sandbox_id}/files/workspace/huge.bin"
    refused = await api.put(path, content=body(), timeout=120)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "payload_too_large"
    assert (await api.get(path)).status_code == 404
    listing = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace"})
    assert not [f for f in listing.json()["files"] if f["name"].endswith(".part")]


@pytest.mark.local_driver(
    "a full workspace is ENOSPC only on the local driver's tmpfs; Kubernetes evicts a Pod"
    " past its emptyDir sizeLimit instead (tests/e2e/test_pod_failures.py)"
)
async def test_a_full_disk_answers_507_and_leaves_no_partial_file(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/sandboxes", json={"resources": {"ephemeralStorage": "16Mi"}})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        path = f"/sandboxes/{sandbox_id}/files/workspace/fill.bin"
        full = await api.put(path, content=os.urandom(20 * 1024 * 1024))
        assert full.status_code == 507, full.text
        assert full.json()["error"]["code"] == "insufficient_storage"
        listing = await api.get(f"/sandboxes/{sandbox_id}/files")
        assert listing.json()["files"] == []
        fits = await api.put(path, content=b"small")
        assert fits.status_code == 201, fits.text
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")


async def test_directories_go_up_and_come_down_as_tar_gz(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    files = {"project/main.py": b"print('hi')\n", "project/data/blob.bin": os.urandom(70_000)}
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    up = await api.post(
        f"/sandboxes/{sandbox_id}/files/archive",
        params={"path": "/workspace/unpacked"},
        content=packed.getvalue(),
    )
    assert up.status_code == 201, up.text
    assert up.json()["files"] == 2
    one = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/unpacked/project/main.py")
    assert one.content == files["project/main.py"]
    down = await api.get(
        f"/sandboxes/{sandbox_id}/files/archive", params={"path": "/workspace/unpacked"}
    )
    assert down.status_code == 200, down.text
    with tarfile.open(fileobj=io.BytesIO(down.content), mode="r:gz") as archive:
        got = {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive
            if member.isfile()
        }
    assert got == files


async def test_archives_with_escaping_members_are_refused(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """A member out of the archive, or one that would be written through a link the
    archive made (links themselves may point anywhere: the sandbox can make those)."""
    await run(api, sandbox_id, "import os; os.makedirs('/workspace/aside', exist_ok=True)")
    escaping = ("../escape.txt", tarfile.REGTYPE, "")
    link = ("link", tarfile.SYMTYPE, "/workspace/aside")
    through = ("link/planted.txt", tarfile.REGTYPE, "")
    for members in ([escaping], [link, through]):
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as archive:
            for name, kind, target in members:
                entry = tarfile.TarInfo(name)
                entry.type, entry.linkname = kind, target
                archive.addfile(entry, io.BytesIO(b""))
        up = await api.post(
            f"/sandboxes/{sandbox_id}/files/archive",
            params={"path": "/workspace/evil"},
            content=packed.getvalue(),
        )
        assert up.status_code == 400, up.text
    aside = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/aside"})
    assert aside.json()["files"] == []


async def test_a_symlink_is_listed_and_deleted_as_itself(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    await run(
        api,
        sandbox_id,
        "import os\n"
        "os.makedirs('/workspace/linked/project/src')\n"
        "open('/workspace/linked/project/src/main.py', 'w').write('code')\n"
        "os.symlink('project', '/workspace/linked/shortcut')\n"
        "os.symlink('/etc/passwd', '/workspace/linked/pw')",
    )
    base = f"/sandboxes/{sandbox_id}/files/workspace/linked"
    listed = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/linked"})
    assert listed.status_code == 200, listed.text
    entries = {entry["name"]: entry for entry in listed.json()["files"]}
    assert (entries["shortcut"]["isSymlink"], entries["shortcut"]["symlinkTarget"]) == (
        True,
        "project",
    )
    assert entries["pw"]["symlinkTarget"] == "/etc/passwd"
    assert (entries["project"]["isSymlink"], entries["project"]["isDirectory"]) == (False, True)
    assert "symlinkTarget" not in entries["project"]
    for name in ("shortcut", "pw"):
        deleted = await api.delete(f"{base}/{name}", params={"recursive": "true"})
        assert deleted.status_code == 200, deleted.text
    left = await run(
        api,
        sandbox_id,
        "import os\n"
        "print(sorted(os.listdir('/workspace/linked')),"
        " open('/workspace/linked/project/src/main.py').read(), os.path.exists('/etc/passwd'))",
    )
    assert left["stdout"] == "['project'] code True\n"


async def test_range_requests_return_the_asked_bytes(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    data = bytes(range(256)) * 4000
    path = f"/sandboxes/{sandbox_id}/files/tmp/ranged.bin"
    assert (await api.put(path, content=data)).status_code == 201
    part = await api.get(path, headers={"range": "bytes=1000-1999"})
    assert part.status_code == 206, part.text
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = await api.get(path, headers={"range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    head = await api.head(path)
    assert head.headers["content-length"] == str(len(data))


def tar_gz(members: list[tuple[str, bytes]]) -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, data in members:
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return packed.getvalue()


async def tree(api: httpx.AsyncClient, sandbox_id: str, path: str) -> dict[str, object]:
    """Every entry below `path` (hidden ones too) with its size."""
    listing = await api.get(
        f"/sandboxes/{sandbox_id}/files", params={"path": path, "recursive": "true"}
    )
    assert listing.status_code == 200, listing.text
    return {entry["path"]: entry["size"] for entry in listing.json()["files"]}


async def test_a_truncated_or_escaping_archive_leaves_the_directory_unchanged(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    target = "/workspace/atomic"
    put = await api.put(f"/sandboxes/{sandbox_id}/files{target}/keep.txt", content=b"kept")
    assert put.status_code == 201, put.text
    before = await tree(api, sandbox_id, target)
    good = [("new.txt", b"new"), ("keep.txt", b"overwritten"), ("deep/x.bin", os.urandom(200_000))]
    whole = tar_gz(good)
    escaping = tar_gz([*good, ("../outside.txt", b"x")])
    for body in (whole[: len(whole) - 4096], escaping, b"not an archive"):
        up = await api.post(
            f"/sandboxes/{sandbox_id}/files/archive", params={"path": target}, content=body
        )
        assert up.status_code == 400, up.text
        assert await tree(api, sandbox_id, target) == before
    outside = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/outside.txt")
    assert outside.status_code == 404
    fresh = await api.post(
        f"/sandboxes/{sandbox_id}/files/archive",
        params={"path": "/workspace/never"},
        content=escaping,
    )
    assert fresh.status_code == 400, fresh.text
    missing = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace/never"})
    assert missing.status_code == 404, missing.text
    up = await api.post(
        f"/sandboxes/{sandbox_id}/files/archive", params={"path": target}, content=whole
    )
    assert up.status_code == 201, up.text
    after = await tree(api, sandbox_id, target)
    assert after == {
        f"{target}/deep": after[f"{target}/deep"],
        f"{target}/deep/x.bin": 200_000,
        f"{target}/keep.txt": len(b"overwritten"),
        f"{target}/new.txt": 3,
    }


async def test_writes_and_deletes_are_audited(api: httpx.AsyncClient, sandbox_id: str) -> None:
    import asyncio

    path = f"/sandboxes/{sandbox_id}/files/workspace/audited.txt"
    assert (await api.put(path, content=b"12345")).status_code == 201
    assert (await api.delete(path)).status_code == 200
    archive = tar_gz([("a.txt", b"a"), ("b/c.txt", b"c")])
    up = await api.post(
        f"/sandboxes/{sandbox_id}/files/archive",
        params={"path": "/workspace/audited-dir"},
        content=archive,
    )
    assert up.status_code == 201, up.text
    for _ in range(100):
        events = (await api.get("/audit", params={"sandboxId": sandbox_id, "limit": 500})).json()
        names = {event["event"] for event in events["events"]}
        paths = {(e["event"], e["payload"].get("path")) for e in events["events"]}
        if {"file_written", "file_deleted"} <= names and {
            ("file_deleted", "/workspace/audited.txt"),
            ("file_written", "/workspace/audited-dir"),
        } <= paths:  # several audit-svc replicas may record them in any order
            break
        await asyncio.sleep(0.2)
    me = (await api.get("/user")).json()["id"]
    written = {
        e["payload"].get("path"): e for e in events["events"] if e["event"] == "file_written"
    }
    deleted = {
        e["payload"].get("path"): e for e in events["events"] if e["event"] == "file_deleted"
    }
    file = written["/workspace/audited.txt"]
    assert (file["userId"], file["payload"]["size"]) == (me, 5), file
    assert deleted["/workspace/audited.txt"]["userId"] == me
    unpacked = written["/workspace/audited-dir"]
    assert unpacked["payload"]["size"] == len(archive), unpacked
    assert unpacked["payload"]["files"] == 2, unpacked


async def test_a_fifo_is_refused_at_once_as_not_a_regular_file_and_a_put_replaces_it(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """Opening a FIFO for reading waits for a writer: the download hung inside the agent,
    holding exec-svc's worker, until the agent call timed out (~60 s)."""
    made = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={
            "type": "command",
            "content": "mkdir -p /workspace/pipes && mkfifo /workspace/pipes/fifo",
        },
    )
    assert made.json()["exitCode"] == 0, made.text
    path = f"/sandboxes/{sandbox_id}/files/workspace/pipes/fifo"
    refused = await api.get(path, timeout=20)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == {
        "code": "invalid_request",
        "message": "/workspace/pipes/fifo is not a regular file",
    }
    directory = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/pipes", timeout=20)
    assert directory.status_code == 400, directory.text
    assert directory.json()["error"]["code"] == "invalid_request"
    written = await api.put(path, content=b"now a file", timeout=20)
    assert written.status_code == 201, written.text
    assert (await api.get(path)).content == b"now a file"
