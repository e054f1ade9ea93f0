"""Error envelopes become SDK exceptions through the one table."""

import time

import httpx
import pytest

from llmsafespace.contracts import ErrorCode
from llmsafespace.sdk import (
    ERRORS,
    APIConnectionError,
    AsyncSandbox,
    AuthenticationError,
    LLMSafeSpaceError,
    NotFoundError,
    QuotaExceededError,
    RateLimitError,
    Sandbox,
    ValidationError,
)
from llmsafespace.sdk.errors import error_from_envelope
from llmsafespace.sdk.transport import Transport


def test_every_error_code_maps_to_an_sdk_exception() -> None:
    assert set(ERRORS) == {code.value for code in ErrorCode}
    assert all(issubclass(cls, LLMSafeSpaceError) for cls in ERRORS.values())


def test_a_rate_limit_reply_carries_retry_after() -> None:
    body = {"error": {"code": "rate_limited", "message": "slow down"}}
    error = error_from_envelope(body, 429, retry_after=7)
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.status, error.message) == (7, 429, "slow down")


def answering(response: httpx.Response) -> Transport:
    """A transport whose every request gets `response`."""
    from llmsafespace.sdk.config import ClientConfig

    return Transport(
        ClientConfig("http://api.test/api/v1", "k"),
        httpx.AsyncClient(
            base_url="http://api.test/api/v1/",
            transport=httpx.MockTransport(lambda _: response),
        ),
    )


RATE_LIMITED = {"error": {"code": "rate_limited", "message": "rate limit exceeded"}}


async def test_retry_after_is_the_seconds_the_server_says_to_wait() -> None:
    reset = int(time.time()) + 3600
    transport = answering(
        httpx.Response(
            429, json=RATE_LIMITED, headers={"Retry-After": "7", "X-RateLimit-Reset": str(reset)}
        )
    )
    with pytest.raises(RateLimitError) as caught:
        await transport.request("GET", "user")
    assert caught.value.retry_after == 7


async def test_without_retry_after_the_wait_is_the_time_left_until_the_reset() -> None:
    reset = int(time.time()) + 30
    transport = answering(
        httpx.Response(429, json=RATE_LIMITED, headers={"X-RateLimit-Reset": str(reset)})
    )
    with pytest.raises(RateLimitError) as caught:
        await transport.request("GET", "user")
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 30, "seconds to wait, not an epoch timestamp"


async def test_a_reset_already_past_means_no_wait() -> None:
    transport = answering(
        httpx.Response(429, json=RATE_LIMITED, headers={"X-RateLimit-Reset": "1000"})
    )
    with pytest.raises(RateLimitError) as caught:
        await transport.request("GET", "user")
    assert caught.value.retry_after == 0


async def test_a_used_up_quota_is_not_a_rate_limit() -> None:
    body = {"error": {"code": "quota_exceeded", "message": "quota of 3 sandboxes reached"}}
    transport = answering(httpx.Response(429, json=body))
    with pytest.raises(QuotaExceededError) as caught:
        await transport.request("POST", "sandboxes")
    assert not isinstance(caught.value, RateLimitError), "waiting does not lift a quota"
    assert (caught.value.code, caught.value.status) == ("quota_exceeded", 429)


async def test_a_reply_without_an_envelope_is_mapped_by_its_status() -> None:
    from llmsafespace.sdk.config import ClientConfig

    transport = Transport(
        ClientConfig("http://api.test/api/v1", "k"),
        httpx.AsyncClient(
            base_url="http://api.test/api/v1/",
            transport=httpx.MockTransport(lambda _: httpx.Response(404, text="nope")),
        ),
    )
    with pytest.raises(NotFoundError):
        await transport.request("GET", "anything")
    await transport.aclose()


@pytest.mark.stack
def test_a_bad_key_is_an_authentication_error(stack) -> None:
    with pytest.raises(AuthenticationError) as caught:
        Sandbox(api_url=stack.api_url, api_key="lsp_wrong")
    assert caught.value.status == 401


@pytest.mark.stack
async def test_unknown_ids_are_not_found_and_bad_input_is_a_validation_error(
    client_env, shared: AsyncSandbox
) -> None:
    with pytest.raises(NotFoundError):
        await AsyncSandbox.connect("sb-doesnotexist00")
    with pytest.raises(ValidationError) as caught:
        await shared.run_code("print(1)", timeout=-1)
    assert "timeout" in caught.value.fields
    with pytest.raises(ValidationError):
        await shared.run_command("   ")


def test_an_unreachable_api_is_a_connection_error() -> None:
    with pytest.raises(APIConnectionError):
        Sandbox.connect("sb-doesnotexist00", api_url="http://127.0.0.1:1/api/v1", api_key="k")


def test_a_missing_key_is_an_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMSAFESPACE_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="LLMSAFESPACE_API_KEY"):
        Sandbox()
