"""`Sandbox` (sync) against the real stack: every method, with configuration from env."""

import pytest

from llmsafespace.sdk import (
    ExecutionResult,
    NotFoundError,
    Sandbox,
    SandboxError,
    ValidationError,
)

pytestmark = pytest.mark.stack


def test_a_sandbox_created_from_env_keeps_state_and_is_terminated_on_exit(client_env) -> None:
    with Sandbox(timeout=600, metadata={"task": "sync"}, env={"GREETING": "hi"}) as sandbox:
        assert sandbox.id.startswith("sb-")
        assert sandbox.info_cached.status.value == "running"
        assert sandbox.run_code("x = 41").success
        result = sandbox.run_code("print(x + 1)\nx * 2")
        assert isinstance(result, ExecutionResult)
        assert (result.stdout, result.result, result.exit_code) == ("42\n", "82", 0)
        assert result.status.value == "completed"
        assert result.duration >= 0
        assert result.usage is not None
        info = sandbox.info()
        assert info.metadata == {"task": "sync"}
        assert sandbox.refresh().id == sandbox.id
        sandbox_id = sandbox.id
    gone = Sandbox.connect(sandbox_id)
    try:
        assert gone.info_cached.status.value == "terminated"
        with pytest.raises(SandboxError):
            gone.run_code("1")
    finally:
        gone.close()


def test_run_command_passes_env_and_cwd_and_reports_the_real_exit_code(client_env) -> None:
    with Sandbox.create() as sandbox:
        result = sandbox.run_command(
            'echo "$WHO in $(pwd)"; echo oops >&2; exit 3', env={"WHO": "me"}, cwd="/tmp"
        )
        assert (result.stdout, result.stderr, result.exit_code) == ("me in /tmp\n", "oops\n", 3)
        assert result.status.value == "failed"
        assert not result.success


def test_code_errors_and_timeouts_are_results_not_exceptions(stack) -> None:
    with Sandbox(api_url=stack.api_url, api_key=stack.admin_key) as sandbox:
        failed = sandbox.run_code("1 / 0")
        assert failed.error is not None
        assert failed.error.name == "ZeroDivisionError"
        spin = sandbox.run_code("while True: pass", timeout=1)
        assert (spin.status.value, spin.exit_code) == ("timeout", 124)
        assert sandbox.run_code("'still here'").result == "'still here'"


def test_connect_attaches_to_an_existing_sandbox_and_close_leaves_it_running(
    client_env, cleanup
) -> None:
    first = Sandbox()
    cleanup(first.id)
    first.run_code("shared = 'yes'")
    first.close()
    second = Sandbox.connect(first.id)
    try:
        assert second.run_code("shared").result == "'yes'"
        assert second.terminate().status.value == "terminated"
    finally:
        second.close()


def test_connect_to_an_unknown_sandbox_is_not_found(client_env) -> None:
    with pytest.raises(NotFoundError):
        Sandbox.connect("sb-doesnotexist00")


def test_bad_create_input_is_a_validation_error_naming_the_field(client_env) -> None:
    with pytest.raises(ValidationError) as caught:
        Sandbox(timeout=0)
    assert "timeout" in caught.value.fields


def test_sync_sandbox_works_inside_a_running_event_loop(client_env) -> None:
    import asyncio

    async def inside() -> str:
        with Sandbox() as sandbox:
            return sandbox.run_code("print('loop ok')").stdout

    assert asyncio.run(inside()) == "loop ok\n"


def test_list_status_and_set_timeout(client_env, requires) -> None:
    requires("GET", "/sandboxes")
    with Sandbox(metadata={"listing": "sync"}) as sandbox:
        page = Sandbox.list(limit=100, metadata={"listing": "sync"})
        assert sandbox.id in [item.id for item in page.sandboxes]
        assert page.pagination.limit == 100
        assert Sandbox.list(limit=1).pagination.limit == 1
        requires("GET", "/sandboxes/{id}/status")
        assert sandbox.status().status.value == "running"
        requires("POST", "/sandboxes/{id}/timeout")
        before = sandbox.info().expires_at
        assert sandbox.set_timeout(3600).expires_at > before
