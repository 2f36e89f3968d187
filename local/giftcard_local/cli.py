"""`giftcard`: the local tooling command. See CONTRACT.md "Running it locally" and the README."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from giftcard_local import embedded, logs

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def wrap(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return wrap


@command('migrate')
def cmd_migrate(args: argparse.Namespace) -> int:
    from giftcards import db
    from giftcards.migrations_runner import MigrationError, migrate

    embedded.database_url()
    try:
        with db.owner_connection() as conn:
            applied = migrate(conn)
    except MigrationError as exc:
        print(f'giftcard migrate: {exc}', file=sys.stderr)
        return 1
    print(f'applied {len(applied)} migration(s){": " + ", ".join(applied) if applied else ""}')
    return 0


@command('grant')
def cmd_grant(args: argparse.Namespace) -> int:
    from giftcards import db
    from giftcards.memberships import MembershipError, grant

    embedded.database_url()
    try:
        with db.owner_connection() as conn:
            grant(conn, args.subject, args.role, agency_id=args.agency, client_id=args.client)
    except MembershipError as exc:
        print(f'giftcard grant: {exc}', file=sys.stderr)
        return 2
    scope = f' on agency {args.agency}' if args.agency else f' on client {args.client}' if args.client else ''
    print(f'granted {args.role} to {args.subject}{scope}')
    return 0


@command('db')
def cmd_db(args: argparse.Namespace) -> int:
    if args.action == 'stop':
        print('stopped' if embedded.stop() else 'not running')
        return 0
    # `url` and `start`: the server this prints must outlive the command, so one started here is kept running.
    starting = 'DATABASE_URL' not in os.environ and not embedded.is_running()
    url = embedded.database_url(keep=True)
    if starting:
        print(
            f'started the embedded PostgreSQL in {embedded.home()}; it runs until `giftcard db stop`', file=sys.stderr
        )
    print(url)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='giftcard', description='Gift card credit system: local tooling.')
    sub = p.add_subparsers(dest='command', required=True)
    sub.add_parser('migrate', help='apply pending migrations')
    g = sub.add_parser('grant', help='add a membership')
    g.add_argument('subject')
    g.add_argument('role', choices=['platform_admin', 'agency_admin', 'client_admin', 'client_integration'])
    scope = g.add_mutually_exclusive_group()
    scope.add_argument('--agency', metavar='ID')
    scope.add_argument('--client', metavar='ID')
    d = sub.add_parser('db', help='the embedded database: start it (kept running) and print its URL, or stop it')
    d.add_argument('action', choices=['url', 'start', 'stop'])
    for extend in EXTENSIONS:
        extend(sub)
    return p


class Commands(Protocol):
    """Where a module adds its subcommands: what argparse's `add_subparsers()` answers."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


# Other modules add their subcommands here (serve, token, demo, check, vendor-fault, integration, console-publish,
# outbox).
EXTENSIONS: list[Callable[[Commands], None]] = []


def main(argv: list[str] | None = None) -> int:
    embedded.home()  # GIFTCARD_HOME resolved once, whatever the working directory, for this process and its children
    logs.configure()  # before the extensions import the giftcards package
    _load_extensions()
    args = parser().parse_args(argv)
    return COMMANDS[args.command](args)


def _load_extensions() -> None:
    import importlib

    for module in (
        'giftcard_local.serve_cli',
        'giftcard_local.ledger_cli',
        'giftcard_local.demo',
        'giftcard_local.vendor_cli',
        'giftcard_local.integrations',
        'giftcard_local.console_publish',
        'giftcard_local.outbox_cli',
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
