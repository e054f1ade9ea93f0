"""The bootstrap admin API key: generated once, kept in STATE/admin.key (mode 0600)."""

import os
import secrets
from pathlib import Path

PREFIX = "lsp_"


def load_or_create_admin_key(path: Path) -> str:
    """Return the stored key, creating it on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = PREFIX + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key
