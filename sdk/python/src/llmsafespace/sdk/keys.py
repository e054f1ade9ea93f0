"""API keys and the caller's identity: `ApiKeys` / `AsyncApiKeys` list, create and revoke
the caller's keys; `whoami()` says whose key is in use. `AsyncApiKeys` is the
implementation; `ApiKeys` runs it for synchronous callers."""

from typing import Any
from urllib.parse import quote

from llmsafespace.contracts import AccessToken, ApiKey, CreatedApiKey, User

from .config import ClientConfig
from .portal import run_sync
from .transport import call


class AsyncApiKeys:
    """The API keys of the caller (admins may revoke anyone's). Configured like a sandbox:
    `api_url` / `api_key` arguments, else `LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY`."""

    def __init__(self, *, api_url: str | None = None, api_key: str | None = None) -> None:
        self._config = ClientConfig.resolve(api_url, api_key)

    async def list(self) -> list[ApiKey]:
        """The caller's keys, revoked and expired ones included (never the secrets)."""
        reply = await call(self._config, "GET", "user/apikeys")
        return [ApiKey.model_validate(item) for item in reply["apiKeys"]]

    async def create(self, name: str = "", *, expires_in_days: int | None = None) -> CreatedApiKey:
        """A new key for the caller; its secret (`.api_key`) is shown only in this reply."""
        body: dict[str, Any] = {"name": name}
        if expires_in_days is not None:
            body["expiresInDays"] = expires_in_days
        return CreatedApiKey.model_validate(
            await call(self._config, "POST", "user/apikeys", json=body)
        )

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id (takes effect at once); the key's record, `revoked_at` set.
        Raises `NotFoundError` for a key that does not exist or is not the caller's."""
        path = "user/apikeys/" + quote(key_id, safe="")
        return ApiKey.model_validate(await call(self._config, "DELETE", path))

    async def whoami(self) -> User:
        """The user the key belongs to."""
        return User.model_validate(await call(self._config, "GET", "user"))

    async def token(self) -> AccessToken:
        """Exchange the key for a short-lived access token (a JWT)."""
        return AccessToken.model_validate(await call(self._config, "POST", "auth/token"))


class ApiKeys:
    """The caller's API keys for synchronous code (see `AsyncApiKeys`)."""

    def __init__(self, *, api_url: str | None = None, api_key: str | None = None) -> None:
        self._keys = AsyncApiKeys(api_url=api_url, api_key=api_key)

    def list(self) -> list[ApiKey]:
        """The caller's keys (never the secrets)."""
        return run_sync(self._keys.list())

    def create(self, name: str = "", *, expires_in_days: int | None = None) -> CreatedApiKey:
        """A new key; its secret (`.api_key`) is shown only in this reply."""
        return run_sync(self._keys.create(name, expires_in_days=expires_in_days))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id (takes effect at once)."""
        return run_sync(self._keys.revoke(key_id))

    def whoami(self) -> User:
        """The user the key belongs to."""
        return run_sync(self._keys.whoami())

    def token(self) -> AccessToken:
        """Exchange the key for a short-lived access token."""
        return run_sync(self._keys.token())


async def awhoami(*, api_url: str | None = None, api_key: str | None = None) -> User:
    """The user whose key is in use (`GET /user`)."""
    return await AsyncApiKeys(api_url=api_url, api_key=api_key).whoami()


def whoami(*, api_url: str | None = None, api_key: str | None = None) -> User:
    """The user whose key is in use (`GET /user`)."""
    return ApiKeys(api_url=api_url, api_key=api_key).whoami()
