"""Users and API keys (the gateway's own tables) and who a credential belongs to.

Keys are stored as SHA-256 hashes only. Looking a key up goes through a Redis cache
shared by every gateway replica; revoking deletes the cache entry, so a revoked key
stops working everywhere at once. Without Redis, lookups go to PostgreSQL.

Each replica also remembers who a credential belonged to, so a request can confirm that
its cache entry still exists in the same Redis round trip that counts its rate limit
(see `auth.admit`) instead of fetching the entry first; with nothing to count, a
confirmation made a moment ago stands without a round trip (see `confirmations`).

The cache entry lasts CACHE_SECONDS. When it goes, every request then in flight with that
credential (a hundred sockets of one agent) finds it gone at once: one lookup per
credential runs at a time on a replica, and the others wait for its answer rather than
queue a hundred identical queries at PostgreSQL.
"""

import asyncio
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

from llmsafespace.contracts import (
    AccessToken,
    ApiKey,
    Caller,
    CreatedApiKey,
    ErrorCode,
    Role,
    ServiceError,
    User,
    new_user_id,
)

from . import tokens

KEY_PREFIX = "lsp_"
CACHE_SECONDS = 60
REDIS_CONNECTIONS = 64  # per replica; a command holds one for a fraction of a millisecond
REMEMBERED_MAX = 10_000  # credentials a replica remembers (oldest forgotten first)
CACHE_PREFIX = "llmsafespace:auth:"
_KEY_COLUMNS = "k.id, k.name, k.key_prefix, k.created_at, k.expires_at, k.revoked_at"
_BY = {"id": "k.id", "hash": "k.key_hash"}  # how a cache entry names its key
_LIVE = "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
log = structlog.get_logger()
CACHE_ERRORS = Counter("auth_cache_errors_total", "Redis failures while checking credentials")


def cache_client(url: str) -> aioredis.Redis:
    """Redis through at most REDIS_CONNECTIONS connections: a command finding them all
    busy waits (up to 2 s) for one. Unbounded, the pool grew to the peak number of
    commands in flight (a connection per open socket under load) and kept them all."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=REDIS_CONNECTIONS, timeout=2, socket_timeout=2
    )
    return aioredis.Redis.from_pool(pool)  # closes the pool with the client


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """An authenticated caller and the key it used (or that minted its token)."""

    caller: Caller
    key_id: str


def _api_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["key_prefix"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        role=Role(row["role"]),
        created_at=row["created_at"],
    )


class Accounts:
    def __init__(
        self, pool: asyncpg.Pool, cache: aioredis.Redis, secret: bytes, token_seconds: int
    ) -> None:
        self._pool = pool
        self._cache = cache
        self._secret = secret
        self._token_seconds = token_seconds
        self._seen: dict[str, Identity] = {}
        self._looking: dict[str, asyncio.Future[Identity | None]] = {}

    def cache_entry(self, credential: str) -> str | None:
        """The Redis key caching who `credential` belongs to; None if it cannot be valid
        (an access token is checked for its signature and expiry here)."""
        if tokens.looks_like_token(credential):
            claims = tokens.verify(credential, self._secret)
            return None if claims is None else f"{CACHE_PREFIX}id:{claims['kid']}"
        if not credential.startswith(KEY_PREFIX):
            return None
        return f"{CACHE_PREFIX}hash:{key_hash(credential)}"

    def token_expiry(self, credential: str) -> int | None:
        """When an access token stops being valid (epoch seconds); None for an API key
        (revocation or expiry shows as its cache entry disappearing)."""
        if not tokens.looks_like_token(credential):
            return None
        claims = tokens.verify(credential, self._secret)
        return None if claims is None else int(claims["exp"])

    def remembered(self, entry: str) -> Identity | None:
        """Who this replica last saw behind a cache entry: to be confirmed, not trusted."""
        return self._seen.get(entry)

    async def authenticate(self, credential: str) -> Identity | None:
        """Who an API key or access token belongs to, if it is live."""
        entry = self.cache_entry(credential)
        if entry is None:
            return None
        identity = await self._lookup(entry)
        if identity is None:
            self._seen.pop(entry, None)
        else:
            if len(self._seen) >= REMEMBERED_MAX:
                self._seen.pop(next(iter(self._seen)))
            self._seen[entry] = identity
        return identity

    async def _lookup(self, entry: str) -> Identity | None:
        """The one lookup of `entry` in flight on this replica, started if none is (see
        the module's docstring); a caller that gives up does not stop it for the others."""
        looking = self._looking.get(entry)
        if looking is None:
            looking = self._looking[entry] = asyncio.ensure_future(self._fetch(entry))
            looking.add_done_callback(lambda done: self._looked(entry, done))
        return await asyncio.shield(looking)

    def _looked(self, entry: str, done: "asyncio.Future[Identity | None]") -> None:
        del self._looking[entry]
        if not done.cancelled():
            done.exception()  # seen here, should every caller have given up

    async def _fetch(self, entry: str) -> Identity | None:
        try:
            cached = await self._cache.get(entry)
        except aioredis.RedisError as exc:
            CACHE_ERRORS.inc()
            log.error("auth_cache_unavailable", error=str(exc))
            cached = None
        if cached:
            data = json.loads(cached)
            return Identity(Caller(user_id=data["userId"], role=data["role"]), data["keyId"])
        kind, _, value = entry.removeprefix(CACHE_PREFIX).partition(":")
        row = await self._pool.fetchrow(
            "SELECT u.id AS user_id, u.role, k.id AS key_id, k.expires_at"
            f" FROM api_keys k JOIN users u ON u.id = k.user_id WHERE {_BY[kind]} = $1 AND {_LIVE}",
            value,
        )
        if row is None:
            return None
        identity = Identity(Caller(user_id=row["user_id"], role=Role(row["role"])), row["key_id"])
        ttl = CACHE_SECONDS
        if row["expires_at"] is not None:
            ttl = min(ttl, int((row["expires_at"] - datetime.now(UTC)).total_seconds()))
        if ttl > 0:
            cached_value = {"userId": row["user_id"], "role": row["role"], "keyId": row["key_id"]}
            try:
                await self._cache.set(entry, json.dumps(cached_value), ex=ttl)
            except aioredis.RedisError:
                CACHE_ERRORS.inc()
        return identity

    async def create_user(
        self, username: str, role: Role = Role.USER, email: str | None = None
    ) -> tuple[User, str]:
        """A new user and its first API key (the only time the key is seen)."""
        key = new_api_key()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO users (id, username, email, role) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (username) DO NOTHING RETURNING *",
                new_user_id(),
                username,
                email,
                role.value,
            )
            if row is None:
                raise ServiceError(ErrorCode.CONFLICT, f"user {username} already exists")
            await self._insert_key(conn, row["id"], key, "first", None)
        return _user(row), key

    async def user(self, user_id: str) -> User:
        row = await self._pool.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "user not found")
        return _user(row)

    async def keys(self, user_id: str) -> list[ApiKey]:
        rows = await self._pool.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys k WHERE k.user_id = $1 ORDER BY k.created_at",
            user_id,
        )
        return [_api_key(row) for row in rows]

    async def create_key(
        self, user_id: str, name: str, expires_in_days: int | None, most: int
    ) -> CreatedApiKey:
        """A new key, unless the user already holds `most` live ones (409 conflict)."""
        key = new_api_key()
        expires_at = (
            datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        )
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
            live = await conn.fetchval(
                f"SELECT count(*) FROM api_keys k WHERE k.user_id = $1 AND {_LIVE}", user_id
            )
            if live >= most:
                raise ServiceError(
                    ErrorCode.CONFLICT,
                    f"at most {most} live API keys per user: revoke one first",
                    {"limit": most},
                )
            row = await self._insert_key(conn, user_id, key, name, expires_at)
        return CreatedApiKey(**_api_key(row).model_dump(), api_key=key)

    async def revoke_key(self, caller: Caller, key_id: str) -> ApiKey:
        """Revoke one of the caller's keys (admins: anyone's); caches are cleared at once."""
        row = await self._pool.fetchrow(
            "UPDATE api_keys k SET revoked_at = coalesce(k.revoked_at, now())"
            " WHERE k.id = $1 AND (k.user_id = $2 OR $3)"
            f" RETURNING {_KEY_COLUMNS}, k.key_hash",
            key_id,
            caller.user_id,
            caller.role is Role.ADMIN,
        )
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"API key {key_id} not found")
        try:
            await self._cache.delete(
                CACHE_PREFIX + f"hash:{row['key_hash']}", CACHE_PREFIX + f"id:{key_id}"
            )
        except aioredis.RedisError as exc:
            CACHE_ERRORS.inc()
            log.error("auth_cache_invalidation_failed", key_id=key_id, error=str(exc))
        return _api_key(row)

    def issue_token(self, identity: Identity) -> AccessToken:
        now = int(time.time())
        expires = now + self._token_seconds
        claims = {
            "sub": identity.caller.user_id,
            "role": identity.caller.role.value,
            "kid": identity.key_id,
            "iat": now,
            "exp": expires,
        }
        return AccessToken(
            token=tokens.sign(claims, self._secret),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    async def _insert_key(
        self,
        conn: asyncpg.Connection,
        user_id: str,
        key: str,
        name: str,
        expires_at: datetime | None,
    ) -> asyncpg.Record:
        row: asyncpg.Record = await conn.fetchrow(
            "INSERT INTO api_keys AS k (id, user_id, name, key_hash, key_prefix, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            f" ON CONFLICT (key_hash) DO UPDATE SET name = k.name RETURNING {_KEY_COLUMNS}",
            "key-" + secrets.token_hex(8),
            user_id,
            name,
            key_hash(key),
            key[: len(KEY_PREFIX) + 6],
            expires_at,
        )
        return row

    async def ensure_admin_key(self, key: str, username: str = "admin") -> None:
        """Make `key` a key of the admin user `username`, creating either if missing."""
        async with self._pool.acquire() as conn, conn.transaction():
            user_id = await conn.fetchval(
                "INSERT INTO users (id, username, role) VALUES ($1, $2, 'admin')"
                " ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id",
                new_user_id(),
                username,
            )
            await self._insert_key(conn, user_id, key, "bootstrap", None)
