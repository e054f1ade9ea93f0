"""What a sync `Sandbox` holds and when it lets go: one background thread for them all,
connections released by terminate/close or when the object is dropped, and a typed error
for a call made after that."""

import gc
import os
import threading
import time
import warnings
from functools import partial

import pytest

from llmsafespace.sdk import AsyncSandbox, ClientClosedError, Sandbox

pytestmark = pytest.mark.stack


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(most: int, seconds: float = 10.0) -> int:
    """The fd count once it is at most `most` (a dropped client's sockets are closed on
    the background loop, a moment after the drop), or as it is when the time is up."""
    deadline = time.monotonic() + seconds
    while (count := open_fds()) > most and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    return count


def test_sandboxes_share_one_thread_and_terminate_releases_their_sockets(client_env) -> None:
    with Sandbox() as warm_up:  # the background loop, and the first connections, exist now
        warm_up.run_code("1")
    threads, fds = threading.active_count(), open_fds()
    for _ in range(8):  # as E2B code does: create, use, kill; never close
        sandbox = Sandbox()
        sandbox.run_code("1")
        sandbox.terminate()
        del sandbox
    assert threading.active_count() == threads
    assert settled_fds(fds + 1) <= fds + 1


def test_a_dropped_sandbox_releases_its_connections_once_nothing_uses_them(
    client_env,
) -> None:
    with Sandbox() as first:
        first.run_code("1")
        fds = open_fds()
        for _ in range(8):
            attached = Sandbox.connect(first.id)
            files = attached.files
            del attached  # its files hold the connections on: they still work
            assert files.list("/workspace") == []
            del files
        assert settled_fds(fds + 1) <= fds + 1


def test_calls_after_terminate_close_or_the_with_block_raise_client_closed(
    client_env, cleanup
) -> None:
    """Typed, saying why, and without "coroutine was never awaited" warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Sandbox() as ended:
            pass
        closed = Sandbox()
        cleanup(closed.id)
        closed.close()
        terminated = Sandbox.connect(closed.id)
        assert terminated.terminate().status.value == "terminated"
        terminated.close()  # a second release is harmless

        for sandbox, why in ((ended, "terminated"), (closed, "closed"), (terminated, "term")):
            for call in (
                partial(sandbox.run_code, "1"),
                sandbox.info,
                partial(sandbox.files.list, "/workspace"),
                partial(sandbox.stream_code, "1"),
                partial(sandbox.cancel, "exec-1"),
            ):
                with pytest.raises(ClientClosedError, match=why):
                    call()
        assert terminated.info_cached.status.value == "terminated"
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


async def test_an_async_sandbox_is_closed_by_terminate(client_env) -> None:
    sandbox = await AsyncSandbox.create()
    await sandbox.terminate()
    with pytest.raises(ClientClosedError, match="terminated"):
        await sandbox.run_code("1")
    with pytest.raises(ClientClosedError):
        sandbox.stream_code("1")
    await sandbox.close()
