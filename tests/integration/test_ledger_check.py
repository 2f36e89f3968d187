"""`giftcard check` on its own scratch database: clean ledger -> exit 0; each kind of violation -> exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native
import pytest
from giftcards import db, ledger

from tests.scopes import migrate_for_tests

GIFTCARD = Path(sys.executable).with_name('giftcard')


@pytest.fixture
def scratch(database_url: str) -> Iterator[tuple[str, Any]]:
    """A migrated database of its own (violations are planted here, never in the shared one): its owner URL
    and an owner connection."""
    name = f'gc_check_{uuid.uuid4().hex[:10]}'
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    params = db.connection_params('owner')
    params['database'] = name
    conn = pg8000.native.Connection(**params)
    try:
        migrate_for_tests(conn)
        yield urlunsplit(urlsplit(database_url)._replace(path='/' + name)), conn
    finally:
        conn.close()
        with db.owner_connection() as admin:
            admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def giftcard_check(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, 'DATABASE_URL': url}
    return subprocess.run([str(GIFTCARD), 'check'], env=env, capture_output=True, text=True, timeout=120, check=False)


def spend_some(conn: Any, cents: int = 2_500) -> str:
    """A committed platform -> spend transfer; answers the spend account's id."""
    with db.UnitOfWork(conn=conn) as uow:
        spend = ledger.system_account(uow)
        ledger.transfer_credit(uow, ledger.platform_account(uow), spend, cents, 'redemption', initiator='test')
        uow.commit()
    return spend


def test_a_consistent_ledger_passes(scratch: tuple[str, Any]) -> None:
    url, conn = scratch
    spend_some(conn)

    result = giftcard_check(url)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ledger ok: ')
    assert '1 transfers, 0 balance mismatches, 0 unbalanced transfers, sum of balances 0 cents' in result.stdout


def test_a_balance_that_differs_from_its_entries_fails(scratch: tuple[str, Any]) -> None:
    url, conn = scratch
    spend = spend_some(conn)
    # Only a superuser switching triggers off can do this (balances change through ledger_transfer only).
    conn.run('BEGIN')
    conn.run('SET LOCAL session_replication_role = replica')
    conn.run('UPDATE credit_accounts SET balance_cents = balance_cents + 1 WHERE id = CAST(:id AS uuid)', id=spend)
    conn.run('COMMIT')

    result = giftcard_check(url)

    assert result.returncode == 1
    assert result.stdout.startswith('LEDGER VIOLATION: ')
    assert '1 transfers, 1 balance mismatches, 0 unbalanced transfers' in result.stdout
    assert 'sum of balances 1 cents' in result.stdout
    assert f'account {spend}' in result.stderr


def test_a_transfer_with_a_missing_entry_fails(scratch: tuple[str, Any]) -> None:
    url, conn = scratch
    spend = spend_some(conn)
    transfer_id = conn.run(
        'SELECT transfer_id::text FROM credit_entries WHERE account_id = CAST(:id AS uuid)', id=spend
    )[0][0]
    # Only a superuser switching triggers off can do this; the check must still notice.
    conn.run('BEGIN')
    conn.run('SET LOCAL session_replication_role = replica')
    conn.run('DELETE FROM credit_entries WHERE account_id = CAST(:id AS uuid)', id=spend)
    conn.run('UPDATE credit_accounts SET balance_cents = 0 WHERE id = CAST(:id AS uuid)', id=spend)
    conn.run('COMMIT')

    result = giftcard_check(url)

    assert result.returncode == 1
    assert '0 balance mismatches, 1 unbalanced transfers' in result.stdout
    assert f'transfer {transfer_id}' in result.stderr


def test_an_unreachable_database_is_reported_with_exit_2(tmp_path: Path) -> None:
    result = giftcard_check(f'postgresql://postgres@/nowhere?host={tmp_path}&port=1')

    assert result.returncode == 2
    assert 'giftcard check:' in result.stderr
