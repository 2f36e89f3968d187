"""What provisioning's hot path asks of `giftcards.db`: a statement in one round trip, and a last statement sent
together with COMMIT (`fetch_and_commit`), with the same results and errors as one at a time."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from giftcards import db, errors, ledger
from pg8000.native import DatabaseError


def audit_rows(entity_id: str) -> list[dict[str, Any]]:
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT actor, action FROM audit_events WHERE entity_id = CAST(:id AS uuid) ORDER BY id', id=entity_id
        )
    )


INSERT_AUDIT = (
    'INSERT INTO audit_events (actor, action, entity_type, entity_id)'
    " VALUES (:actor, :action, 'test', CAST(:id AS uuid)) RETURNING id, actor"
)


def test_statements_answer_rows_by_column_name(database_url: str) -> None:
    with db.UnitOfWork() as uow:
        rows = uow.fetch(
            'SELECT CAST(:a AS int) + 1 AS n, CAST(:b AS text) AS t, :c::text IS NULL AS missing',
            a=41,
            b="it's",
            c=None,
        )
        touched = uow.fetch(INSERT_AUDIT, actor='columns', action='t.row', id=str(uuid.uuid4()))
    assert rows == [{'n': 42, 't': "it's", 'missing': True}]
    assert len(touched) == 1 and touched[0]['actor'] == 'columns'


def test_fetch_and_commit_answers_the_rows_and_commits(database_url: str) -> None:
    entity = str(uuid.uuid4())

    def work(uow: db.UnitOfWork) -> list[dict[str, Any]]:
        uow.execute(INSERT_AUDIT, actor='first', action='t.one', id=entity)
        return uow.fetch_and_commit(INSERT_AUDIT, actor='last', action='t.two', id=entity)

    (row,) = db.in_transaction(work)

    assert row['actor'] == 'last'
    assert [r['actor'] for r in audit_rows(entity)] == ['first', 'last']


def test_a_failing_last_statement_commits_nothing(database_url: str) -> None:
    entity = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        uow.execute(INSERT_AUDIT, actor='first', action='t.one', id=entity)
        with pytest.raises(DatabaseError):
            uow.fetch_and_commit(INSERT_AUDIT, actor=None, action='t.two', id=entity)  # actor is NOT NULL
        assert not uow.committed

    assert audit_rows(entity) == []
    assert db.in_transaction(lambda uow: uow.value('SELECT 1')) == 1  # the connection is fine afterwards


def test_a_commit_refused_at_commit_time_raises_and_keeps_nothing(owner: Any) -> None:
    transfer = str(uuid.uuid4())
    entity = str(uuid.uuid4())
    # As the owner: only the ledger's role may write a transfer, and the check at commit holds for everyone.
    with db.UnitOfWork('owner', conn=owner) as uow:
        spend, platform = ledger.system_account(uow), ledger.platform_account(uow)
        # A transfer without its two entries: the deferred balance check refuses it at COMMIT.
        uow.execute(
            'INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator)'
            " VALUES (CAST(:t AS uuid), 'allocation', CAST(:a AS uuid), CAST(:b AS uuid), 1, 'test')",
            t=transfer,
            a=platform,
            b=spend,
        )
        with pytest.raises((DatabaseError, errors.DomainError)):
            uow.fetch_and_commit(INSERT_AUDIT, actor='last', action='t.two', id=entity)

    assert audit_rows(entity) == []
    assert (
        db.in_transaction(
            lambda uow: uow.value('SELECT count(*) FROM credit_transfers WHERE id = CAST(:t AS uuid)', t=transfer)
        )
        == 0
    )


def test_a_statement_prepared_before_a_migration_changed_its_answer_is_prepared_again(owner: Any) -> None:
    table = f'provision_db_{uuid.uuid4().hex[:8]}'
    owner.run(f'CREATE TABLE {table} (a int)')
    owner.run(f'INSERT INTO {table} VALUES (1)')
    owner.run(f'GRANT SELECT ON {table} TO giftcard_app')

    def read() -> list[dict[str, Any]]:
        return db.in_transaction(lambda uow: uow.fetch(f'SELECT * FROM {table} WHERE a = :a', a=1))

    try:
        assert read() == [{'a': 1}]
        owner.run(f'ALTER TABLE {table} ADD COLUMN b int DEFAULT 2')
        assert read() == [{'a': 1, 'b': 2}]
    finally:
        owner.run(f'DROP TABLE {table}')
