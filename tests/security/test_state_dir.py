"""Issue 16 item 1 (the state dir): the stack's state directory holds every credential
of the platform (the admin key, the token-signing secret, the servers' passwords) but
was 0755, because PostgreSQL's user and the sandboxes' uids traverse into it. It is now
0700 with its secrets 0600; what those users reach lives in the shared directory beside
it, which holds no secret."""

import stat
import subprocess
from pathlib import Path

from llmsafespace.devstack import Stack

SERVER_PASSWORDS = {"postgres": "postgres.password", "redis": "redis.password"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _secret_files(stack: Stack) -> list[Path]:
    state = stack.state_dir
    embedded = {server.name for server in stack.servers.all() if server.process is not None}
    files = [state / name for name in ("admin.key", "token.secret") if (state / name).exists()]
    files += [state / SERVER_PASSWORDS[name] for name in SERVER_PASSWORDS if name in embedded]
    if "nats" in embedded:
        files += sorted((state / "nats-users").iterdir())
        files.append(state / "nats" / "nats.conf")
    return files


def test_the_state_dir_is_its_owners_alone_and_its_secrets_0600(stack: Stack) -> None:
    assert _mode(stack.state_dir) == 0o700
    assert _mode(stack.log_dir) == 0o700
    secrets = _secret_files(stack)
    assert stack.state_dir / "admin.key" in secrets
    for secret in secrets:
        assert _mode(secret) == 0o600, secret
    for log in stack.log_dir.iterdir():
        assert _mode(log) == 0o600, log


def test_another_user_cannot_enter_the_state_dir(stack: Stack) -> None:
    """What a sandbox uid or any host user meets: no listing, no reading."""
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for command in (["ls", str(stack.state_dir)], ["cat", str(stack.state_dir / "admin.key")]):
        result = subprocess.run([*nobody, *command], capture_output=True, text=True, check=False)
        assert result.returncode != 0, result.stdout
        assert "Permission denied" in result.stderr, result.stderr


def test_the_shared_dir_beside_it_holds_only_what_other_users_reach(stack: Stack) -> None:
    shared = stack.shared_dir
    assert shared.parent == stack.state_dir.parent
    assert _mode(shared) == 0o755
    assert stack.runtime_dir.parent == shared
    assert {entry.name for entry in shared.iterdir()} <= {"postgres", "runtime"}
    if (shared / "postgres" / "data").exists():  # embedded: its user's alone
        assert _mode(shared / "postgres" / "data") == 0o700
