"""Users, API keys and tokens as the public API shows them."""

from datetime import datetime

from pydantic import Field, field_validator

from .base import Contract, Request
from .caller import Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,62}$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,255}$"


class CreateUserRequest(Request):
    """`POST /users` (admins)."""

    username: str = Field(pattern=USERNAME_PATTERN)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN)
    role: Role = Role.USER


class User(Contract):
    id: str
    username: str
    email: str | None = None
    role: Role
    created_at: datetime


class CreateApiKeyRequest(Request):
    """`POST /user/apikeys`."""

    name: str = Field(default="", max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, strict=True)

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ValueError("name cannot contain control characters")
        return value


class ApiKey(Contract):
    """An API key's record; the key itself is never shown again after creation."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class CreatedApiKey(ApiKey):
    api_key: str = Field(description="The key itself: shown once, stored only as a hash")


class CreatedUser(Contract):
    user: User
    api_key: str = Field(description="The user's first key: shown once")


class AccessToken(Contract):
    """`POST /auth/token`: a short-lived JWT for browsers and WebSocket `?token=`."""

    token: str
    token_type: str = "Bearer"
    expires_at: datetime
