"""The `apex` command: serve, db upgrade, and the commands later layers add."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from apex.config import InsecureConfiguration, Settings, describe_validation_error, load_settings
from apex.config.extras import MissingExtra, check_extras

if TYPE_CHECKING:
    from apex.store.database import Database


def _settings_or_exit() -> Settings:
    try:
        settings = load_settings()
        check_extras(settings)
    except ValidationError as exc:
        print(f"apex: invalid configuration: {describe_validation_error(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except (InsecureConfiguration, MissingExtra) as exc:
        print(f"apex: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    for flag, variable in (
        ("host", "APEX_HOST"),
        ("port", "APEX_PORT"),
        ("data_dir", "APEX_DATA_DIR"),
    ):
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)
    settings = _settings_or_exit()
    # Everything imported so far lives as long as the process: keep it out of every garbage
    # collection, so full collections stay short and do not stall live event delivery.
    gc.freeze()
    uvicorn.run(
        "apex.api.app:create_app", factory=True, reload=args.reload, **server_options(settings)
    )
    return 0


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves Apex, shared by `apex serve`, the tests' live servers and benchmarks.

    Per-message deflate is off: run events are small JSON sent identically to many connections,
    and compressing per connection costs a deflate state (tens of KiB) per idle connection and
    a compression per frame per connection. Heartbeats are application frames, not pings.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "ws_max_size": settings.ws_max_frame_bytes,
        "ws_ping_interval": None,
        "ws_per_message_deflate": False,
        "proxy_headers": settings.forwarded_allow_ips is not None,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
    }


def _db_upgrade(_args: argparse.Namespace) -> int:
    settings = _settings_or_exit()

    async def upgrade() -> None:
        async with _database(settings):
            return

    asyncio.run(upgrade())
    print(f"apex: database at head ({settings.resolved_database_url.split('://')[0]})")
    return 0


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The app database, migrated to head, for a command that runs beside the servers."""
    from apex.store.database import Database

    db = Database(settings.resolved_database_url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.dispose()


def _demo_data(args: argparse.Namespace) -> int:
    """Write the demo workload to a file, or load it into a user's ledger."""
    from apex.analytics.demo import write_demo_file

    if args.rows < 1:
        print("apex: --rows must be at least 1", file=sys.stderr)
        return 2
    if args.output is not None:
        written = write_demo_file(args.output, rows=args.rows, seed=args.seed, fmt=args.format)
        print(f"apex: wrote {written} demo rows to {args.output}")
        return 0
    settings = _settings_or_exit()

    async def load() -> int:
        from apex.analytics.factory import build_importer, open_ledger
        from apex.store.repositories.users import UserRepository

        async with _database(settings) as db:
            user = await UserRepository(db).get_by_email(args.email)
        if user is None:
            print(f"apex: no user with email {args.email!r}", file=sys.stderr)
            return 1
        try:
            ledger = open_ledger(settings)
        except Exception as exc:
            print(
                f"apex: cannot open the usage ledger ({exc}); stop the server or use "
                "POST /api/usage/demo",
                file=sys.stderr,
            )
            return 1
        try:
            importer = build_importer(settings, ledger)
            status = await importer.load_demo(user.id, rows=args.rows, seed=args.seed)
        finally:
            ledger.close()
        print(
            f"apex: loaded {status.rows_accepted} demo rows for {args.email} "
            f"(upload {status.upload_id})"
        )
        return 0

    return asyncio.run(load())


def _users(args: argparse.Namespace) -> int:
    """Disable or enable an account; every running process applies it at once (the sign-ins
    ended are recorded in the app database and announced through Redis when configured)."""
    settings = _settings_or_exit()

    async def change() -> int:
        from apex.auth.stack import open_auth_stack
        from apex.errors import NotFound

        async with _database(settings) as db:
            stack = await open_auth_stack(settings, db)
            try:
                if args.users_command == "disable":
                    ended = await stack.accounts.disable(args.email)
                    print(f"apex: disabled {args.email} ({ended} sign-ins ended)")
                else:
                    await stack.accounts.enable(args.email)
                    print(f"apex: enabled {args.email}")
            except NotFound as exc:
                print(f"apex: {exc.message}", file=sys.stderr)
                return 1
            finally:
                await stack.close()
        return 0

    return asyncio.run(change())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apex", description="Apex AI-spend optimization co-pilot")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and web UI")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(handler=_db_upgrade)

    demo = commands.add_parser("demo-data", help="generate the demo usage workload")
    demo.add_argument("--rows", type=int, default=50_000)
    demo.add_argument("--seed", type=int, default=42)
    target = demo.add_mutually_exclusive_group(required=True)
    target.add_argument("--email", help="load the rows into this user's ledger")
    target.add_argument("--output", type=Path, help="write a usage file instead")
    demo.add_argument(
        "--format", choices=("csv", "jsonl"), default="csv", help="file format for --output"
    )
    demo.set_defaults(handler=_demo_data)

    users = commands.add_parser("users", help="account administration")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    for action, text in (
        ("disable", "refuse the account's sign-ins and end the ones it has"),
        ("enable", "let a disabled account sign in again"),
    ):
        command = users_commands.add_parser(action, help=text)
        command.add_argument("email")
        command.set_defaults(handler=_users)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
