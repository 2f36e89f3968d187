"""`giftcard check`: recompute the ledger invariants and exit non-zero on any violation."""

from __future__ import annotations

import argparse
import sys

from giftcard_local import cli, embedded


def _add_commands(sub: cli.Commands) -> None:
    sub.add_parser(
        'check',
        help='verify the ledger: balances equal their entries, two balanced entries per transfer, sum zero',
    )


cli.EXTENSIONS.append(_add_commands)


@cli.command('check')
def cmd_check(args: argparse.Namespace) -> int:
    from giftcards import db, errors, ledger_checks

    embedded.database_url()
    try:
        with db.UnitOfWork('owner') as uow:
            # One snapshot for every query, so that traffic during the check cannot look like a violation.
            uow.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY')
            report = ledger_checks.check(uow)
    except errors.ServiceUnavailable as exc:
        print(f'giftcard check: {exc.message}', file=sys.stderr)
        return 2
    print(report.summary())
    _list('balance differs from the sum of its entries: account', report.balance_mismatches)
    _list('not exactly two entries summing to zero: transfer', report.unbalanced_transfers)
    return 0 if report.ok else 1


def _list(what: str, ids: list[str], shown: int = 20) -> None:
    for entity_id in ids[:shown]:
        print(f'  {what} {entity_id}', file=sys.stderr)
    if len(ids) > shown:
        print(f'  ... and {len(ids) - shown} more', file=sys.stderr)
