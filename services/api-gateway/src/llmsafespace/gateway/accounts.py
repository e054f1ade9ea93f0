"""Users and API keys (the gateway's own tables). Keys are stored as SHA-256 hashes only."""

import hashlib
import secrets

import asyncpg

from llmsafespace.contracts import Caller, Role, new_user_id

KEY_PREFIX = "lsp_"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Accounts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def authenticate(self, key: str) -> Caller | None:
        """The caller owning a live (unrevoked, unexpired) key, else None."""
        if not key.startswith(KEY_PREFIX):
            return None
        row = await self._pool.fetchrow(
            "SELECT u.id, u.role FROM api_keys k JOIN users u ON u.id = k.user_id"
            " WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
            " AND (k.expires_at IS NULL OR k.expires_at > now())",
            key_hash(key),
        )
        return Caller(user_id=row["id"], role=Role(row["role"])) if row else None

    async def create_user(self, username: str, role: Role = Role.USER) -> tuple[str, str]:
        """A new user and its first API key (the only time the key is seen)."""
        user_id = new_user_id()
        key = new_api_key()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO users (id, username, role) VALUES ($1, $2, $3)",
                user_id,
                username,
                role.value,
            )
            await self._insert_key(conn, user_id, key, "first")
        return user_id, key

    async def _insert_key(
        self, conn: asyncpg.Connection, user_id: str, key: str, name: str
    ) -> None:
        await conn.execute(
            "INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_hash) DO NOTHING",
            "key-" + secrets.token_hex(8),
            user_id,
            name,
            key_hash(key),
            key[: len(KEY_PREFIX) + 6],
        )

    async def ensure_admin_key(self, key: str, username: str = "admin") -> None:
        """Make `key` a key of the admin user `username`, creating either if missing."""
        async with self._pool.acquire() as conn, conn.transaction():
            user_id = await conn.fetchval(
                "INSERT INTO users (id, username, role) VALUES ($1, $2, 'admin')"
                " ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id",
                new_user_id(),
                username,
            )
            await self._insert_key(conn, user_id, key, "bootstrap")
