"""`python -m llmsafespace.gateway.admin`: create users and revoke keys without the API
(bootstrapping a fresh installation). Reads the gateway's settings from the environment
(`DATABASE_URL`, `REDIS_URL`, …)."""

import argparse
import asyncio
import json
import sys
from importlib.resources import files

from llmsafespace.contracts import Caller, CreatedUser, Role, ServiceError, new_user_id
from llmsafespace.servicekit import connect, migrate

from .accounts import Accounts, cache_client
from .settings import Settings

SERVICE = "api-gateway"


async def _run(args: argparse.Namespace, settings: Settings) -> str:
    pool = await connect(settings.database_url.get_secret_value(), max_size=1)
    cache = cache_client(settings.redis_url.get_secret_value())
    try:
        await migrate(pool, SERVICE, files("llmsafespace.gateway") / "migrations")
        accounts = Accounts(pool, cache, b"unused: this command issues no tokens", 60)
        if args.command == "create-user":
            user, key = await accounts.create_user(args.username, Role(args.role), args.email)
            return json.dumps(CreatedUser(user=user, api_key=key).wire(), indent=2)
        admin = Caller(user_id=new_user_id(), role=Role.ADMIN)
        return json.dumps((await accounts.revoke_key(admin, args.key_id)).wire(), indent=2)
    finally:
        await cache.aclose()
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmsafespace.gateway.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user and print its first key")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument("--role", choices=[role.value for role in Role], default="user")
    revoke = commands.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(_run(args, Settings())))
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
