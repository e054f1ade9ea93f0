"""Where the API is and which key to use: from arguments, else the environment."""

import os
from dataclasses import dataclass

from .errors import AuthenticationError, LLMSafeSpaceError

API_URL_ENV = "LLMSAFESPACE_API_URL"
API_KEY_ENV = "LLMSAFESPACE_API_KEY"
DEFAULT_API_URL = "http://127.0.0.1:8080/api/v1"


@dataclass(frozen=True)
class ClientConfig:
    """`api_url` ends with the API's base path (`…/api/v1`); `request_timeout` bounds
    each HTTP request beyond the time an execution itself may take; `workspace_timeout`
    bounds the calls that move a whole workspace (pause, resume, snapshot, create from a
    snapshot), which the gateway lets run as long (`GATEWAY_WORKSPACE_TIMEOUT`)."""

    api_url: str
    api_key: str
    request_timeout: float = 60.0
    workspace_timeout: float = 1800.0

    @classmethod
    def resolve(
        cls,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
    ) -> "ClientConfig":
        """Arguments win; `LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY` fill the gaps.
        Read when called, never at import."""
        url = api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            raise AuthenticationError(
                f"no API key: pass api_key= or set {API_KEY_ENV} (make up writes it to "
                ".llmsafespace/env)",
                code="unauthorized",
            )
        if not url.startswith(("http://", "https://")):
            raise LLMSafeSpaceError(f"{API_URL_ENV} must be an http(s) URL, got {url!r}")
        return cls(url.rstrip("/"), key, request_timeout or cls.request_timeout)

    @property
    def websocket_url(self) -> str:
        """The API base with `ws`/`wss` for its scheme."""
        return "ws" + self.api_url.removeprefix("http")
