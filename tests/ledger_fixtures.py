"""Helpers for the ledger's tests: moving credit as a caller, reading balances, checking the invariants.

Entities and memberships come from `tests.factories`. Test modules import `ledger_stays_consistent` and
mark themselves with `pytestmark = pytest.mark.usefixtures('ledger_stays_consistent')`, so the ledger
invariants are recomputed after every scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from giftcards import allocation, db, ledger
from giftcards.allocation import Direction, MoveOutcome, MoveRequest

from tests import factories


@pytest.fixture
def ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    report = factories.ledger_check()
    assert report.ok, report.summary()


def move(
    subject: str,
    direction: Direction,
    from_account_id: str,
    to_account_id: str,
    cents: int,
    *,
    notes: str | None = None,
    key: str | None = None,
) -> MoveOutcome:
    """What the allocate and reclaim routes run, called directly (safe from many threads at once)."""
    request = MoveRequest(direction, from_account_id, to_account_id, cents, notes)
    return allocation.move_credit(subject, request, key)


def balances(*account_ids: str) -> list[int]:
    """The stored balances of the accounts, in the order given."""
    rows = db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT id::text, balance_cents FROM credit_accounts WHERE id = ANY(CAST(:ids AS uuid[]))',
            ids=list(account_ids),
        )
    )
    by_id = {r['id']: r['balance_cents'] for r in rows}
    return [by_id[a] for a in account_ids]


def transfer_count() -> int:
    return int(db.in_transaction(lambda uow: uow.value('SELECT count(*) FROM credit_transfers')))


def entries_of(account_id: str) -> list[dict[str, Any]]:
    """The account's entries, oldest first."""
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT e.id, e.transfer_id::text, e.amount_cents, e.balance_after_cents, t.kind'
            ' FROM credit_entries e JOIN credit_transfers t ON t.id = e.transfer_id'
            ' WHERE e.account_id = CAST(:a AS uuid) ORDER BY e.id',
            a=account_id,
        )
    )


def platform_account() -> str:
    return db.in_transaction(ledger.platform_account)
