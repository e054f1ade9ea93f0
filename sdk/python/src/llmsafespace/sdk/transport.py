"""The HTTP transport: one `httpx.AsyncClient`, JSON in and out, errors as SDK exceptions."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from .config import ClientConfig
from .errors import APIConnectionError, ClientClosedError, TimeoutError, error_from_envelope


class Transport:
    """Sends requests to the API with the bearer key and turns every failure — an error
    envelope, a refused connection, a timeout — into an `LLMSafeSpaceError`."""

    def __init__(self, config: ClientConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client or httpx.AsyncClient(
            base_url=config.api_url + "/",
            headers={
                "Authorization": f"Bearer {config.api_key}",
                "User-Agent": "llmsafespace-python",
            },
            timeout=config.request_timeout,
        )
        self._closed_because: str | None = None

    def ensure_open(self) -> None:
        """Raise `ClientClosedError` once `aclose` ran (httpx would raise a bare
        RuntimeError), saying why."""
        if self._closed_because is not None:
            raise ClientClosedError(self._closed_because)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON reply of a 2xx; raises the mapped exception otherwise."""
        self.ensure_open()
        try:
            response = await self._client.request(
                method,
                path.lstrip("/"),
                json=json,
                params=params,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{method} {path}: no answer in time", code="timeout") from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"cannot reach the API at {self.config.api_url}: {exc or type(exc).__name__}",
                code="service_unavailable",
            ) from exc
        if response.is_success:
            return response.json() if response.content else None
        try:
            body = response.json()
        except ValueError:
            body = None
        raise error_from_envelope(body, response.status_code, _retry_after(response))

    async def send(
        self,
        method: str,
        path: str,
        *,
        content: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """A raw body (bytes or an async iterator of bytes, streamed); the JSON reply."""
        async with self.stream(
            method, path, content=content, params=params, headers=headers, timeout=timeout
        ) as response:
            await response.aread()
            return response.json() if response.content else None

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        content: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """The response of a 2xx, its body not yet read; raises the mapped exception."""
        self.ensure_open()
        try:
            async with self._client.stream(
                method,
                path.lstrip("/"),
                content=content,
                params=params,
                headers=headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            ) as response:
                if not response.is_success:
                    await response.aread()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise error_from_envelope(body, response.status_code, _retry_after(response))
                yield response
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{method} {path}: no answer in time", code="timeout") from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"cannot reach the API at {self.config.api_url}: {exc or type(exc).__name__}",
                code="service_unavailable",
            ) from exc

    async def aclose(self, why: str = "the client was closed") -> None:
        """Release the connections; later requests raise `ClientClosedError(why)` (the
        first reason given, when closed twice)."""
        self._closed_because = self._closed_because or why
        await self._client.aclose()


async def call(
    config: ClientConfig, method: str, path: str, json: Any = None, params: Any = None
) -> Any:
    """One short exchange on a transport of its own (templates, warm pools, snapshots,
    keys: objects that hold no connection between calls)."""
    transport = Transport(config)
    try:
        return await transport.request(method, path, json=json, params=params)
    finally:
        await transport.aclose()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: `Retry-After` (seconds), else until `X-RateLimit-Reset` (epoch
    seconds when the window ends), never negative; None when neither says."""
    try:
        if (seconds := response.headers.get("retry-after")) is not None:
            return max(float(seconds), 0.0)
        if (reset := response.headers.get("x-ratelimit-reset")) is not None:
            return max(float(reset) - time.time(), 0.0)
    except ValueError:
        pass
    return None
