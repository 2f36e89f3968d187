"""The database itself keeps the ledger honest, whatever the Python code does: entries and transfers are
append-only (no grant to the application role, a trigger for everyone else), only the ledger's own role writes them
(the application role goes through ledger_transfer), a transfer commits only with exactly its two balanced
entries, and a non-platform balance never goes below zero."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from giftcards import db, errors, ledger
from pg8000.native import DatabaseError

from tests import factories
from tests.ledger_fixtures import balances, ledger_stays_consistent, transfer_count

__all__ = ['ledger_stays_consistent']
pytestmark = pytest.mark.usefixtures('ledger_stays_consistent')


def sqlstate_of(exc: pytest.ExceptionInfo[BaseException]) -> str | None:
    cause = exc.value if isinstance(exc.value, DatabaseError) else exc.value.__cause__
    assert isinstance(cause, DatabaseError), exc.value
    return db.sqlstate(cause)


@pytest.fixture
def funded_transfer(owner: Any) -> dict[str, Any]:
    """One committed allocation platform -> agency of $50: its transfer id and the agency's account."""
    agency = factories.agency()
    factories.fund(5_000, agency['account_id'])
    transfer_id = db.in_transaction(
        lambda uow: uow.value(
            'SELECT transfer_id::text FROM credit_entries WHERE account_id = CAST(:a AS uuid)', a=agency['account_id']
        )
    )
    return {'transfer_id': transfer_id, 'account_id': agency['account_id']}


# --- append-only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'statement',
    [
        'UPDATE credit_entries SET amount_cents = amount_cents * 2 WHERE transfer_id = CAST(:t AS uuid)',
        'DELETE FROM credit_entries WHERE transfer_id = CAST(:t AS uuid)',
        'UPDATE credit_transfers SET amount_cents = 1 WHERE id = CAST(:t AS uuid)',
        'DELETE FROM credit_transfers WHERE id = CAST(:t AS uuid)',
    ],
)
def test_the_application_role_may_not_change_or_delete_ledger_rows(
    funded_transfer: dict[str, Any], statement: str
) -> None:
    with db.UnitOfWork() as uow, pytest.raises(DatabaseError) as exc:
        uow.execute(statement, t=funded_transfer['transfer_id'])

    assert sqlstate_of(exc) == '42501'  # insufficient_privilege
    assert balances(funded_transfer['account_id']) == [5_000]


@pytest.mark.parametrize('table', ['credit_entries', 'credit_transfers'])
def test_the_application_role_may_not_truncate_the_ledger(database_url: str, table: str) -> None:
    with db.UnitOfWork() as uow, pytest.raises(DatabaseError) as exc:
        uow.execute(f'TRUNCATE {table} CASCADE')

    assert sqlstate_of(exc) == '42501'


@pytest.mark.parametrize(
    'statement',
    [
        'UPDATE credit_entries SET amount_cents = amount_cents * 2 WHERE transfer_id = CAST(:t AS uuid)',
        'DELETE FROM credit_entries WHERE transfer_id = CAST(:t AS uuid)',
        'UPDATE credit_transfers SET notes = :t WHERE id = CAST(:t AS uuid)',
        'DELETE FROM credit_transfers WHERE id = CAST(:t AS uuid)',
    ],
)
def test_even_the_owner_may_not_change_or_delete_ledger_rows(
    owner: Any, funded_transfer: dict[str, Any], statement: str
) -> None:
    with db.UnitOfWork(conn=owner) as uow, pytest.raises(errors.ValidationFailed) as exc:
        uow.execute(statement, t=funded_transfer['transfer_id'])

    assert exc.value.code == 'append_only'
    assert sqlstate_of(exc) == 'P0001'
    assert balances(funded_transfer['account_id']) == [5_000]


@pytest.mark.parametrize('table', ['credit_entries', 'credit_transfers'])
def test_even_the_owner_may_not_truncate_the_ledger(owner: Any, funded_transfer: dict[str, Any], table: str) -> None:
    count = transfer_count()

    with db.UnitOfWork(conn=owner) as uow, pytest.raises(errors.ValidationFailed) as exc:
        uow.execute(f'TRUNCATE {table} CASCADE')

    assert exc.value.code == 'append_only'
    assert transfer_count() == count


# --- balanced transfers --------------------------------------------------------------------------------


def write_transfer(uow: db.UnitOfWork, source: str, target: str, cents: int) -> str:
    transfer_id = str(uuid.uuid4())
    uow.execute(
        'INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator)'
        " VALUES (CAST(:id AS uuid), 'allocation', CAST(:f AS uuid), CAST(:t AS uuid), :a, 'test')",
        id=transfer_id,
        f=source,
        t=target,
        a=cents,
    )
    return transfer_id


def write_entry(uow: db.UnitOfWork, transfer_id: str, account_id: str, cents: int) -> None:
    uow.execute(
        'INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)'
        ' VALUES (CAST(:t AS uuid), CAST(:a AS uuid), :c, 0)',
        t=transfer_id,
        a=account_id,
        c=cents,
    )


def commit_refused(role: db.Role, conn: Any, work: Any) -> pytest.ExceptionInfo[BaseException]:
    count = transfer_count()
    with db.UnitOfWork(role, conn=conn) as uow:
        work(uow)
        with pytest.raises(DatabaseError) as exc:
            uow.commit()
    assert transfer_count() == count
    return exc


@pytest.fixture(params=['ledger', 'owner'])
def role_conn(request: pytest.FixtureRequest, owner: Any) -> Iterator[tuple[db.Role, Any]]:
    """A connection that may write transfers and entries: as giftcard_ledger (the role ledger_transfer runs as), or
    as the owner. Even they cannot commit an unbalanced transfer."""
    if request.param == 'owner':
        yield 'owner', owner
        return
    conn = db.connect('owner')
    conn.run('SET ROLE giftcard_ledger')
    try:
        yield 'owner', conn
    finally:
        conn.close()


@pytest.mark.parametrize(
    'statement',
    [
        'INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator)'
        " VALUES (gen_random_uuid(), 'allocation', CAST(:a AS uuid), CAST(:a AS uuid), 1, 'test')",
        'INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)'
        ' SELECT transfer_id, account_id, 1, 1 FROM credit_entries WHERE account_id = CAST(:a AS uuid)',
    ],
)
def test_the_application_role_writes_the_ledger_only_through_ledger_transfer(
    funded_transfer: dict[str, Any], statement: str
) -> None:
    count = transfer_count()
    with db.UnitOfWork() as uow, pytest.raises(DatabaseError) as exc:
        uow.execute(statement, a=funded_transfer['account_id'])

    assert sqlstate_of(exc) == '42501'
    assert transfer_count() == count


def constraint_of(exc: pytest.ExceptionInfo[BaseException]) -> tuple[str | None, str | None]:
    info = exc.value.args[0]
    return info.get('C'), info.get('n')


def test_a_transfer_with_one_entry_cannot_be_committed(role_conn: tuple[db.Role, Any]) -> None:
    agency, client = factories.agency()['account_id'], factories.agency()['account_id']

    def work(uow: db.UnitOfWork) -> None:
        transfer_id = write_transfer(uow, agency, client, 100)
        write_entry(uow, transfer_id, client, 100)

    exc = commit_refused(*role_conn, work)
    assert constraint_of(exc) == ('23514', 'credit_transfers_balanced')


def test_a_transfer_without_entries_cannot_be_committed(role_conn: tuple[db.Role, Any]) -> None:
    source, target = factories.agency()['account_id'], factories.agency()['account_id']

    exc = commit_refused(*role_conn, lambda uow: write_transfer(uow, source, target, 100))
    assert constraint_of(exc) == ('23514', 'credit_transfers_balanced')


def test_entries_that_do_not_sum_to_zero_cannot_be_committed(role_conn: tuple[db.Role, Any]) -> None:
    source, target = factories.agency()['account_id'], factories.agency()['account_id']

    def work(uow: db.UnitOfWork) -> None:
        transfer_id = write_transfer(uow, source, target, 100)
        write_entry(uow, transfer_id, source, -100)
        write_entry(uow, transfer_id, target, 50)

    exc = commit_refused(*role_conn, work)
    assert constraint_of(exc) == ('23514', 'credit_transfers_balanced')


def test_balanced_entries_on_other_accounts_than_the_transfers_cannot_be_committed(
    role_conn: tuple[db.Role, Any],
) -> None:
    source, target, elsewhere = (factories.agency()['account_id'] for _ in range(3))

    def work(uow: db.UnitOfWork) -> None:
        transfer_id = write_transfer(uow, source, target, 100)
        write_entry(uow, transfer_id, source, -100)
        write_entry(uow, transfer_id, elsewhere, 100)

    exc = commit_refused(*role_conn, work)
    assert constraint_of(exc) == ('23514', 'credit_transfers_balanced')


def insert_refused(role: db.Role, conn: Any, work: Any) -> pytest.ExceptionInfo[BaseException]:
    count = transfer_count()
    with db.UnitOfWork(role, conn=conn) as uow, pytest.raises(DatabaseError) as exc:
        work(uow)
    assert transfer_count() == count
    return exc


def test_a_third_entry_cannot_be_added_to_a_committed_transfer(
    role_conn: tuple[db.Role, Any], funded_transfer: dict[str, Any]
) -> None:
    transfer_id, account_id = funded_transfer['transfer_id'], funded_transfer['account_id']
    before = balances(account_id)
    for cents in (100, -100):
        exc = insert_refused(*role_conn, lambda uow, cents=cents: write_entry(uow, transfer_id, account_id, cents))
        assert constraint_of(exc) == ('23505', 'credit_entries_one_per_side')
    assert balances(account_id) == before


def test_a_transfer_cannot_hold_two_entries_on_the_same_side(role_conn: tuple[db.Role, Any]) -> None:
    source, target = factories.agency()['account_id'], factories.agency()['account_id']

    def work(uow: db.UnitOfWork) -> None:
        transfer_id = write_transfer(uow, source, target, 100)
        write_entry(uow, transfer_id, source, -100)
        write_entry(uow, transfer_id, target, 100)
        write_entry(uow, transfer_id, target, 100)

    exc = insert_refused(*role_conn, work)
    assert constraint_of(exc) == ('23505', 'credit_entries_one_per_side')


def test_the_database_refuses_a_negative_balance_outside_the_platform(funded_transfer: dict[str, Any]) -> None:
    conn = db.connect('owner')
    conn.run('SET ROLE giftcard_ledger')  # the one role that updates balances
    try:
        with db.UnitOfWork(conn=conn) as uow, pytest.raises(errors.InsufficientCredit):
            uow.execute(
                'UPDATE credit_accounts SET balance_cents = -1 WHERE id = CAST(:a AS uuid)',
                a=funded_transfer['account_id'],
            )
    finally:
        conn.close()

    assert balances(funded_transfer['account_id']) == [5_000]


def test_the_balance_check_finds_entries_by_index_even_when_planned_on_tiny_tables(owner: Any) -> None:
    agency = factories.agency()
    factories.fund(1_000_000, agency['account_id'])
    clients = [factories.client(agency['id'])['account_id'] for _ in range(3)]
    # The tables as small as the planner will ever see them: analysed now, with the plans made in a new session.
    owner.run('ANALYZE credit_entries')
    db.reset_connections()

    def scans() -> int:
        owner.run('SELECT pg_stat_force_next_flush()')
        [[count]] = owner.run("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'credit_entries'")
        return int(count)

    def transfer(client: str) -> None:
        db.in_transaction(
            lambda uow: ledger.transfer_credit(uow, agency['account_id'], client, 100, 'allocation', initiator='test')
        )

    transfer(clients[0])  # the session's first transfer plans the check
    before = scans()
    for client in clients * 10:
        transfer(client)
    db.reset_connections()  # the session's statistics are flushed when it ends

    assert scans() == before
