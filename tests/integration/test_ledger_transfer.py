"""`ledger.transfer_credit`: what it writes, how it refuses, and its COMMIT in the same round trip."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from giftcards import db, errors, ledger

from tests import factories
from tests.ledger_fixtures import balances, entries_of, ledger_stays_consistent, transfer_count

__all__ = ['ledger_stays_consistent']
pytestmark = pytest.mark.usefixtures('ledger_stays_consistent')


@pytest.fixture
def accounts(database_url: str) -> tuple[str, str]:
    """An agency account holding $100 and another agency's empty account."""
    funded, empty = factories.agency()['account_id'], factories.agency()['account_id']
    factories.fund(10_000, funded)
    return funded, empty


def audit_rows(marker: str) -> int:
    return int(
        db.in_transaction(
            lambda uow: uow.value("SELECT count(*) FROM audit_events WHERE details->>'marker' = :m", m=marker)
        )
    )


def write_audit(uow: db.UnitOfWork, marker: str) -> None:
    """Something else the transaction writes before its transfer."""
    uow.execute(
        "INSERT INTO audit_events (actor, action, entity_type, details) VALUES ('test', 'test', 'test',"
        " jsonb_build_object('marker', CAST(:m AS text)))",
        m=marker,
    )


def test_a_transfer_writes_both_entries_with_the_balances_after(accounts: tuple[str, str]) -> None:
    funded, empty = accounts

    transfer = db.in_transaction(
        lambda uow: ledger.transfer_credit(uow, funded, empty, 2_550, 'allocation', initiator='t', notes='n')
    )

    assert (transfer.debit.amount_cents, transfer.debit.balance_after_cents) == (-2_550, 7_450)
    assert (transfer.credit.amount_cents, transfer.credit.balance_after_cents) == (2_550, 2_550)
    assert [(e['id'], e['transfer_id'], e['amount_cents'], e['balance_after_cents']) for e in entries_of(empty)] == [
        (transfer.credit.id, transfer.id, 2_550, 2_550)
    ]
    assert balances(funded, empty) == [7_450, 2_550]


def test_with_commit_the_transfer_is_committed_in_its_own_round_trip(accounts: tuple[str, str]) -> None:
    funded, empty = accounts
    marker = uuid.uuid4().hex

    with db.UnitOfWork() as uow:
        write_audit(uow, marker)
        ledger.transfer_credit(uow, funded, empty, 1_000, 'allocation', initiator='t', commit=True)
        committed = uow.committed

    assert committed
    assert balances(funded, empty) == [9_000, 1_000]
    assert audit_rows(marker) == 1


@pytest.mark.parametrize('commit', [False, True])
def test_too_little_credit_keeps_nothing_of_the_transaction(accounts: tuple[str, str], commit: bool) -> None:
    funded, empty = accounts
    marker, count = uuid.uuid4().hex, transfer_count()

    with db.UnitOfWork() as uow, pytest.raises(errors.InsufficientCredit):
        write_audit(uow, marker)
        ledger.transfer_credit(uow, funded, empty, 10_001, 'allocation', initiator='t', commit=commit)

    assert balances(funded, empty) == [10_000, 0]
    assert transfer_count() == count
    assert audit_rows(marker) == 0


@pytest.mark.parametrize('commit', [False, True])
def test_an_unknown_account_is_not_found_and_keeps_nothing(accounts: tuple[str, str], commit: bool) -> None:
    funded, _ = accounts
    marker = uuid.uuid4().hex

    with db.UnitOfWork() as uow, pytest.raises(errors.NotFound):
        write_audit(uow, marker)
        ledger.transfer_credit(uow, funded, str(uuid.uuid4()), 1, 'allocation', initiator='t', commit=commit)

    assert balances(funded) == [10_000]
    assert audit_rows(marker) == 0


def test_the_platform_may_go_below_zero(database_url: str) -> None:
    agency = factories.agency()['account_id']

    def work(uow: db.UnitOfWork) -> Any:
        platform = ledger.platform_account(uow)
        before = uow.value('SELECT balance_cents FROM credit_accounts WHERE id = CAST(:id AS uuid)', id=platform)
        return before, ledger.transfer_credit(uow, platform, agency, 5_000, 'allocation', initiator='t')

    before, transfer = db.in_transaction(work)

    assert transfer.debit.balance_after_cents == before - 5_000
    assert balances(agency) == [5_000]


@pytest.mark.parametrize('cents', [0, -1])
def test_a_non_positive_amount_is_refused(accounts: tuple[str, str], cents: int) -> None:
    funded, empty = accounts

    with db.UnitOfWork() as uow, pytest.raises(errors.ValidationFailed):
        ledger.transfer_credit(uow, funded, empty, cents, 'allocation', initiator='t')


def test_a_reversal_moves_the_amount_back_once(accounts: tuple[str, str]) -> None:
    funded, empty = accounts
    factories.fund(10_000, empty)  # enough that a second reversal could pay: only the ledger's rule refuses it
    original = db.in_transaction(
        lambda uow: ledger.transfer_credit(uow, funded, empty, 4_000, 'redemption', initiator='t')
    )

    reversal = db.in_transaction(lambda uow: ledger.reverse_transfer(uow, original.id, kind='refund', initiator='t'))

    assert (reversal.debit.account_id, reversal.credit.account_id) == (empty, funded)
    assert balances(funded, empty) == [10_000, 10_000]
    with pytest.raises(errors.Conflict) as exc:
        db.in_transaction(lambda uow: ledger.reverse_transfer(uow, original.id, kind='refund', initiator='t'))
    assert exc.value.code == 'already_reversed'
