"""API keys and identity through the SDK and the CLI: a new key works at once, and is
refused at once after it is revoked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace.sdk import (
    ApiKeys,
    AsyncApiKeys,
    AuthenticationError,
    NotFoundError,
    Sandbox,
    ValidationError,
    awhoami,
    whoami,
)

pytestmark = pytest.mark.stack
CLI = str(Path(sys.executable).with_name("llmsafespace"))


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_a_created_key_works_until_it_is_revoked(client_env) -> None:
    keys = ApiKeys()
    me = whoami()
    created = keys.create("sdk-sync", expires_in_days=1)
    try:
        assert created.api_key.startswith(created.prefix)
        assert created.name == "sdk-sync"
        assert created.expires_at is not None
        assert created.revoked_at is None
        assert whoami(api_key=created.api_key).id == me.id
        listed = {key.id: key for key in ApiKeys(api_key=created.api_key).list()}
        assert listed[created.id].name == "sdk-sync"
        assert not hasattr(listed[created.id], "api_key")
    finally:
        revoked = keys.revoke(created.id)
    assert revoked.id == created.id
    assert revoked.revoked_at is not None
    with pytest.raises(AuthenticationError):
        whoami(api_key=created.api_key)
    with pytest.raises(AuthenticationError):
        Sandbox.list(api_key=created.api_key)
    assert next(key for key in keys.list() if key.id == created.id).revoked_at is not None


async def test_async_keys_and_token(client_env) -> None:
    keys = AsyncApiKeys()
    created = await keys.create("sdk-async")
    try:
        assert created.expires_at is None
        mine = AsyncApiKeys(api_key=created.api_key)
        assert (await mine.whoami()).id == (await awhoami()).id
        token = await mine.token()
        assert token.token.count(".") == 2
        assert (await awhoami(api_key=token.token)).id == (await keys.whoami()).id
    finally:
        await keys.revoke(created.id)
    with pytest.raises(AuthenticationError):
        await awhoami(api_key=created.api_key)


def test_key_errors(client_env) -> None:
    keys = ApiKeys()
    with pytest.raises(NotFoundError):
        keys.revoke("key-doesnotexist")
    with pytest.raises(ValidationError):
        keys.create("bad", expires_in_days=0)
    with pytest.raises(AuthenticationError):
        whoami(api_key="lsp_wrong")


def test_cli_keys_create_ls_revoke(client_env) -> None:
    created = cli(client_env, "keys", "create", "--name", "sdk-cli", "--expires-in-days", "7")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret
    assert "\n" not in secret
    assert "not shown again" in created.stderr
    key_id = next(
        key["id"]
        for key in json.loads(cli(client_env, "keys", "ls", "--json").stdout)
        if key["name"] == "sdk-cli" and key["revokedAt"] is None
    )
    assert key_id in cli(client_env, "keys", "ls").stdout
    as_new_key = {**client_env, "LLMSAFESPACE_API_KEY": secret}
    me = cli(as_new_key, "whoami", "--json")
    assert me.returncode == 0, me.stderr
    assert (
        json.loads(me.stdout)["id"] == json.loads(cli(client_env, "whoami", "--json").stdout)["id"]
    )

    revoked = cli(client_env, "keys", "revoke", key_id)
    assert (revoked.returncode, revoked.stdout) == (0, key_id + "\n"), revoked.stderr
    refused = cli(as_new_key, "keys", "ls")
    assert refused.returncode == 1
    assert "API_KEY" in refused.stderr
    assert "Traceback" not in refused.stderr
    listed = cli(client_env, "keys", "ls").stdout
    assert next(line for line in listed.splitlines() if key_id in line).endswith("revoked")

    as_json = cli(client_env, "keys", "create", "--name", "sdk-cli-json", "--json")
    record = json.loads(as_json.stdout)
    assert record["apiKey"].startswith(record["prefix"])
    assert cli(client_env, "keys", "revoke", record["id"]).returncode == 0


def test_cli_key_errors_are_one_line(client_env) -> None:
    missing = cli(client_env, "keys", "revoke", "key-doesnotexist")
    bad_days = cli(client_env, "keys", "create", "--expires-in-days", "0")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    assert bad_days.returncode == 2
    assert "expires-in-days" in bad_days.stderr
    for result in (missing, bad_days):
        assert "Traceback" not in result.stderr
