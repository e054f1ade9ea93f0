"""Secrets made once and kept in the state dir (mode 0600): the bootstrap admin API key,
the gateways' token-signing secret and the backing servers' passwords."""

import os
import secrets
from pathlib import Path

KEY_PREFIX = "lsp_"


def load_or_create(path: Path, make: str) -> str:
    """Return the stored secret, storing `make` first if there is none yet."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(make + "\n")
    return make


def load_or_create_admin_key(path: Path) -> str:
    return load_or_create(path, KEY_PREFIX + secrets.token_urlsafe(32))


def load_or_create_token_secret(path: Path) -> str:
    return load_or_create(path, secrets.token_urlsafe(48))


def load_or_create_password(path: Path) -> str:
    """A server password (URL-safe characters, so it can stand in a connection URL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return load_or_create(path, secrets.token_urlsafe(32))


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (a server config holding a password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)
