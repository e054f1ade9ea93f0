"""Where the stack keeps its state: a private directory and a shared one beside it.

The state directory (`LLMSAFESPACE_HOME`) is 0700: secrets (0600), logs, the NATS and
Valkey data, which the devstack's own user reads alone. What other users must reach
lives in the shared directory beside it, `STATE.shared` (0755): PostgreSQL's files
(its server runs as the `llmsafespace` system user when the devstack runs as root) and
the sandboxes' runtime directory (each sandbox runs as its own uid, which must traverse
every parent of it). Neither holds a credential: PostgreSQL's data dir and socket dir
are 0700 of its user, each sandbox's run directory is its own, and the password files
stay in the state directory.

(A POSIX ACL granting those users traverse on the state directory was the alternative;
it cannot name the sandboxes' uids, which are allocated per sandbox, and it shows as
group bits in the mode.)
"""

import shutil
from pathlib import Path

import structlog

SHARED_SUFFIX = ".shared"
# What moved from the state directory to the shared one (a state dir made before).
MOVED = ("postgres", "runtime")

log = structlog.get_logger("llmsafespace.devstack")


def shared_dir(state_dir: Path) -> Path:
    """The directory beside `state_dir` that other users may traverse."""
    return state_dir.with_name(state_dir.name + SHARED_SUFFIX)


def prepare(state_dir: Path) -> None:
    """Create both directories with their modes (fixing older ones), moving what an
    older layout kept in the state directory to the shared one."""
    shared = shared_dir(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    shared.mkdir(mode=0o755, exist_ok=True)
    shared.chmod(0o755)
    for name in MOVED:
        old, new = state_dir / name, shared / name
        if old.exists() and not new.exists():
            old.rename(new)
            log.info("state_moved", source=str(old), target=str(new))


def remove(state_dir: Path) -> None:
    """Delete a (stopped) stack's state: both directories."""
    shutil.rmtree(shared_dir(state_dir), ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)
