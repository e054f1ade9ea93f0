"""The unprivileged system user that runs PostgreSQL when the devstack runs as root."""

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmsafespace.devstack.errors import StackError

USER_NAME = "llmsafespace"
USERADD_EXISTS = 9


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int
    gid: int


def ensure_system_user(name: str = USER_NAME) -> SystemUser:
    """Create the system user once (idempotent) and return it."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, USERADD_EXISTS):
            raise StackError(f"useradd {name} failed: {result.stderr.strip()}") from None
        entry = pwd.getpwnam(name)
    return SystemUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def check_traversable(path: Path, user: SystemUser) -> None:
    """Fail clearly unless user can reach path: every directory down to it must be searchable."""
    resolved = path.resolve()
    for directory in [*reversed(resolved.parents), resolved]:
        info = directory.stat()
        if info.st_uid == user.uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == user.gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            raise StackError(
                f"user {user.name} cannot traverse {directory} "
                f"(mode {stat.filemode(info.st_mode)}), needed to reach {resolved}; "
                f"use a state directory outside it or run: chmod o+x {directory}"
            )


def current_user() -> SystemUser:
    """The user the devstack runs as (when not root, servers simply run as it)."""
    return SystemUser(name=pwd.getpwuid(os.geteuid()).pw_name, uid=os.geteuid(), gid=os.getegid())
