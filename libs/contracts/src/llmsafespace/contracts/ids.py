"""Identifier types. Patterns keep ids safe inside NATS subjects (no `.`, `*`, `>`)."""

import secrets
from typing import Annotated, NewType

from pydantic import StringConstraints

SANDBOX_ID_PATTERN = r"^sb-[a-z0-9]{12,32}$"
# Any id safe in a subject (a client's UUIDs or counters too); unique within its sandbox.
# The server's own are `exec-…`.
EXECUTION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USER_ID_PATTERN = r"^usr-[a-z0-9]{12,32}$"
SNAPSHOT_ID_PATTERN = r"^snap-[a-z0-9]{12,32}$"

SandboxId = Annotated[str, StringConstraints(pattern=SANDBOX_ID_PATTERN)]
ExecutionId = Annotated[str, StringConstraints(pattern=EXECUTION_ID_PATTERN)]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]
SnapshotId = Annotated[str, StringConstraints(pattern=SNAPSHOT_ID_PATTERN)]
RUNTIME_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
RuntimeId = NewType("RuntimeId", str)
"""What a runtime driver names a runtime by. A sandbox runs on its own (the runtime id is
the sandbox's) or on a claimed warm one (the id warmpool-svc gave it); nothing is ever
decided by an id's shape."""

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def random_token(length: int = 16) -> str:
    """`length` characters of `_ALPHABET`, each equally likely: one number drawn from the
    OS and written in base 36. (`secrets.choice` per character asked the OS about 30
    times for 16 characters, one system call each: ~23 µs on every execution's id.)"""
    number = secrets.randbelow(len(_ALPHABET) ** length)
    characters = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHABET))
        characters.append(_ALPHABET[digit])
    return "".join(characters)


def new_sandbox_id() -> str:
    return f"sb-{random_token()}"


def new_execution_id() -> str:
    return f"exec-{random_token()}"


def new_user_id() -> str:
    return f"usr-{random_token()}"


def new_snapshot_id() -> str:
    return f"snap-{random_token()}"
