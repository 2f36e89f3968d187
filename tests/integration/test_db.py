"""The unit of work and the other ways to the database (`call`, `read`): everything of a unit runs in one transaction;
a stale connection is replaced when BEGIN finds it closed, and only then; prepared statements are bounded."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pg8000.native
import pytest
from giftcards import db, errors
from pg8000.native import DatabaseError


def backend_pid() -> int:
    return int(db.in_transaction(lambda uow: uow.value('SELECT pg_backend_pid() + :zero', zero=0)))


def terminate(owner: Any, pid: int) -> None:
    owner.run('SELECT pg_terminate_backend(:pid)', pid=pid)
    for _ in range(200):
        if not owner.run('SELECT 1 FROM pg_stat_activity WHERE pid = :pid', pid=pid):
            return
        time.sleep(0.01)
    raise AssertionError(f'backend {pid} did not end')


def key_stored(key: str) -> bool:
    return bool(
        db.in_transaction(
            lambda uow: uow.value("SELECT count(*) FROM idempotency_keys WHERE scope = 'test-db' AND key = :k", k=key)
        )
    )


def store_key(uow: db.UnitOfWork, key: str) -> None:
    uow.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ('test-db', :k, 'h', 'null')", k=key
    )


def test_the_first_statement_runs_inside_the_transaction(database_url: str) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        store_key(uow, key)  # the first statement: BEGIN is sent with it
        started = uow.value('SELECT now()')
        time.sleep(0.02)
        assert uow.value('SELECT now() + :none', none='0 seconds') == started  # still the same transaction
    assert not key_stored(key)  # rolled back on exit without commit


@pytest.mark.parametrize('first', ['with parameters', 'without parameters', 'committing'])
def test_a_unit_of_work_commits_whatever_its_first_statement(database_url: str, first: str) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        if first == 'with parameters':
            store_key(uow, key)
            uow.commit()
        elif first == 'without parameters':
            uow.value('SELECT 1')
            store_key(uow, key)
            uow.commit()
        else:
            uow.fetch_and_commit(
                "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ('test-db', :k, 'h', 'null')"
                ' RETURNING key',
                k=key,
            )
    assert key_stored(key)


def test_an_error_in_the_first_statement_rolls_back_and_the_connection_stays_usable(database_url: str) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow, pytest.raises(Exception, match='division by zero'):
        uow.value('SELECT 1 / :zero', zero=0)
    db.in_transaction(lambda uow: store_key(uow, key))
    assert key_stored(key)


def test_an_empty_unit_of_work_commits_without_a_round_trip(database_url: str) -> None:
    with db.UnitOfWork() as uow:
        uow.commit()
    assert uow.committed


@pytest.mark.parametrize('first', ['with parameters', 'without parameters'])
def test_a_connection_closed_while_idle_is_replaced_by_the_first_exchange(owner: Any, first: str) -> None:
    pid = backend_pid()
    terminate(owner, pid)
    key = str(uuid.uuid4())

    def work(uow: db.UnitOfWork) -> int:
        if first == 'without parameters':
            uow.value('SELECT 1')
        store_key(uow, key)
        return int(uow.value('SELECT pg_backend_pid() + :zero', zero=0))

    assert db.in_transaction(work) != pid
    assert key_stored(key)


def test_a_connection_lost_inside_a_transaction_is_not_silently_replaced(owner: Any) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        store_key(uow, key)
        terminate(owner, int(uow.value('SELECT pg_backend_pid() + :zero', zero=0)))
        with pytest.raises(errors.ServiceUnavailable) as lost:
            uow.value('SELECT 1 + :one', one=1)
    assert not isinstance(lost.value, errors.OutcomeUnknown)  # no COMMIT was on its way: nothing was kept
    assert not key_stored(key)
    assert backend_pid()  # the next unit of work gets a new connection


def test_a_connection_lost_while_committing_is_an_unknown_outcome(owner: Any) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        store_key(uow, key)
        terminate(owner, int(uow.value('SELECT pg_backend_pid() + :zero', zero=0)))
        with pytest.raises(errors.OutcomeUnknown) as unknown:
            uow.commit()

    assert unknown.value.status == 503
    assert unknown.value.code == 'outcome_unknown'
    assert 'try again' not in unknown.value.message
    assert backend_pid()  # the next unit of work gets a new connection


def test_fetch_many_answers_each_statement_in_order_in_one_transaction(database_url: str) -> None:
    key = str(uuid.uuid4())
    with db.UnitOfWork() as uow:
        numbers, stored, nothing, started = uow.fetch_many(
            ('SELECT n FROM generate_series(1, :n) AS n', {'n': 3}),
            (
                "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ('test-db', :k, 'h', 'null')"
                ' RETURNING key',
                {'k': key},
            ),
            ("UPDATE idempotency_keys SET response = '1' WHERE scope = 'test-db' AND key = :k", {'k': key}),
            ('SELECT now() AS t, :x::int AS x', {'x': 1}),
        )
        assert numbers == [{'n': 1}, {'n': 2}, {'n': 3}]
        assert stored == [{'key': key}]
        assert nothing == []
        assert uow.value('SELECT now() + :none', none='0 seconds') == started[0]['t']  # the same transaction
    assert not key_stored(key)


def test_fetch_many_raises_the_first_error_and_keeps_nothing(database_url: str) -> None:
    key = str(uuid.uuid4())
    insert = "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ('test-db', :k, 'h', 'null')"
    with db.UnitOfWork() as uow, pytest.raises(Exception, match='division by zero'):
        uow.fetch_many(('SELECT 1 / :zero AS x', {'zero': 0}), (insert, {'k': key}))
    assert not key_stored(key)
    assert db.in_transaction(lambda uow: uow.fetch_many(('SELECT :a::int AS a', {'a': 7}))) == [[{'a': 7}]]


def test_a_stale_connection_is_replaced_by_begin_and_the_transaction_runs_once(owner: Any) -> None:
    terminate(owner, backend_pid())
    key = str(uuid.uuid4())
    insert = "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ('test-db', :k, 'h', 'null')"

    # BEGIN goes alone first: finding the connection closed then, nothing of the transaction has run, and it is sent
    # again on a new connection.
    rows = db.in_transaction(lambda uow: uow.fetch_and_commit(insert + ' RETURNING key', k=key))

    assert rows == [{'key': key}]
    assert key_stored(key)


def test_read_answers_each_statement_outside_any_transaction(owner: Any) -> None:
    numbers, now = db.read(('SELECT n FROM generate_series(1, :n) AS n', {'n': 2}), ('SELECT now() AS t', {}))
    later = db.read(('SELECT now() AS t', {}))[0]

    assert numbers == [{'n': 1}, {'n': 2}]
    assert later[0]['t'] > now[0]['t']  # each read is its own transaction
    activity = owner.run(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'giftcard_app' AND state LIKE 'idle in transaction%'"
    )
    assert activity == [[0]]  # nothing left open


def test_read_replaces_a_stale_connection_once(owner: Any) -> None:
    pid = backend_pid()
    terminate(owner, pid)

    [[row]] = db.read(('SELECT pg_backend_pid() + :zero AS pid', {'zero': 0}))

    assert row['pid'] != pid


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('2026-11-26 17:32:17.123456+00', datetime(2026, 11, 26, 17, 32, 17, 123456, tzinfo=UTC)),
        ('2026-11-26 17:32:17+05:30', datetime(2026, 11, 26, 12, 2, 17, tzinfo=UTC)),
        ('2026-11-26 17:32:17.1-03', datetime(2026, 11, 26, 20, 32, 17, 100000, tzinfo=UTC)),
        ('infinity', 'infinity'),
        ('-infinity', '-infinity'),
    ],
)
def test_timestamps_read_back_as_pg8000_reads_them(database_url: str, text: str, expected: Any) -> None:
    value = db.in_transaction(lambda uow: uow.value('SELECT CAST(:t AS timestamptz)', t=text))
    plain = pg8000.native.Connection(**db.connection_params())  # pg8000's own reader, no adapter of ours
    try:
        [[as_pg8000_reads_it]] = plain.run('SELECT CAST(:t AS timestamptz)', t=text)
    finally:
        plain.close()

    assert value == expected == as_pg8000_reads_it


def test_a_function_compiled_before_a_column_changed_type_is_compiled_afresh(owner: Any) -> None:
    """A trigger function run on a connection before a migration changed a column's type keeps plans typed for
    the old column: the transaction is run again on a new session, which compiles the function afresh."""
    table = f'stale_plan_{uuid.uuid4().hex[:8]}'
    owner.run(f'CREATE TABLE {table} (id integer PRIMARY KEY, amount bigint NOT NULL)')
    owner.run(
        f'CREATE FUNCTION {table}_check() RETURNS trigger LANGUAGE plpgsql AS $$'
        " BEGIN IF NEW.amount < 0 THEN RAISE EXCEPTION 'negative'; END IF; RETURN NEW; END $$"
    )
    owner.run(f'CREATE TRIGGER {table}_check BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_check()')
    owner.run(f'GRANT SELECT, INSERT ON {table} TO giftcard_app')

    def insert(n: int) -> None:
        db.in_transaction(
            lambda uow: uow.execute(f'INSERT INTO {table} (id, amount) VALUES (:id, :amount)', id=n, amount=n)
        )

    try:
        insert(1)  # the trigger function is compiled in this session
        pid = backend_pid()
        owner.run(f'CREATE DOMAIN {table}_cents AS bigint')
        owner.run(f'ALTER TABLE {table} ALTER COLUMN amount TYPE {table}_cents')

        insert(2)

        assert backend_pid() != pid
        assert owner.run(f'SELECT id FROM {table} ORDER BY id') == [[1], [2]]
    finally:
        owner.run(f'DROP TABLE {table}')
        owner.run(f'DROP FUNCTION {table}_check()')
        owner.run(f'DROP DOMAIN IF EXISTS {table}_cents')


def test_answers_larger_than_the_read_buffer_arrive_whole(database_url: str) -> None:
    """Messages already buffered are handled in place; one that is not wholly buffered is read apart."""
    with db.UnitOfWork() as uow:
        small, big = uow.fetch_many(
            ('SELECT CAST(:n AS int) AS n', {'n': 1}),
            (
                'SELECT g AS n, repeat(chr(64 + g), 100000 * g) AS text FROM generate_series(1, CAST(:k AS int)) g',
                {'k': 3},
            ),
        )
        after = uow.fetch('SELECT CAST(:n AS int) + 1 AS n', n=41)
    assert small == [{'n': 1}]
    assert [(row['n'], len(row['text']), set(row['text'])) for row in big] == [
        (1, 100_000, {'A'}),
        (2, 200_000, {'B'}),
        (3, 300_000, {'C'}),
    ]
    assert after == [{'n': 42}]


@pytest.mark.parametrize(
    ('sql', 'value'),
    [
        ('SELECT CAST(:v AS uuid) AS x', 'urn:uuid:0e4d8d2e-8f5c-4c4e-9b8a-8a3c2b1d0e4f'),
        ('SELECT CAST(:v AS bigint) AS x', '99999999999999999999999'),
        ('SELECT CAST(:v AS text) AS x', 'a\x00b'),
        ('SELECT CAST(:v AS date) AS x', '2026-02-30'),
    ],
    ids=['uuid-spelling', 'integer-range', 'nul', 'no-such-date'],
)
def test_a_value_the_database_cannot_take_is_recognised_as_the_caller_s(
    database_url: str, sql: str, value: str
) -> None:
    with pytest.raises(DatabaseError) as refused:
        db.in_transaction(lambda uow: uow.fetch(sql, v=value))

    assert db.is_input_data_exception(refused.value)
    assert db.in_transaction(lambda uow: uow.value('SELECT :a::int', a=7)) == 7  # the connection is still usable


def test_text_that_cannot_be_encoded_is_a_validation_error_and_nothing_is_sent(database_url: str) -> None:
    for run in (
        lambda: db.in_transaction(lambda uow: uow.fetch('SELECT :v::text AS x', v='\ud800')),
        lambda: db.read(('SELECT :v::text AS x', {'v': '\ud800'})),
    ):
        with pytest.raises(errors.ValidationFailed, match='cannot be stored'):
            run()
    assert db.read(('SELECT :a::int AS a', {'a': 7})) == [[{'a': 7}]]


def test_a_data_exception_of_the_system_s_own_making_is_not_the_caller_s(database_url: str) -> None:
    with pytest.raises(DatabaseError, match='division by zero') as failed:
        db.in_transaction(lambda uow: uow.value('SELECT 1 / :zero', zero=0))

    assert not db.is_input_data_exception(failed.value)


def test_a_read_only_transaction_whose_commit_is_lost_still_answers_what_it_read(owner: Any) -> None:
    def work(uow: db.UnitOfWork) -> int:
        answer = int(uow.value('SELECT 41 + :one', one=1))
        terminate(owner, int(uow.value('SELECT pg_backend_pid() + :zero', zero=0)))
        return answer

    assert db.in_transaction(work, read_only=True) == 42
    assert backend_pid()  # the next unit of work gets a new connection


def test_a_read_only_transaction_cannot_write(database_url: str) -> None:
    key = str(uuid.uuid4())

    with pytest.raises(DatabaseError, match='read-only transaction'):
        db.in_transaction(lambda uow: store_key(uow, key), read_only=True)

    assert not key_stored(key)


def prepared_on(uow: db.UnitOfWork) -> int:
    return int(uow.value('SELECT count(*) FROM pg_prepared_statements WHERE :any::int IS NOT NULL', any=0))


def test_a_connection_keeps_a_bounded_number_of_prepared_statements_and_closes_the_rest(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, 'MAX_PREPARED', 3)
    db.reset_connections()
    with db.UnitOfWork() as uow:
        for n in range(10):
            assert uow.value(f'SELECT :n::int + {n}', n=1) == n + 1
        count = prepared_on(uow)  # which is itself one of them

    assert count == 3


def test_a_call_is_one_statement_committed_on_its_own(database_url: str) -> None:
    # A table that holds no tenant's rows: a statement on its own enters no scope (row-level security).
    key = str(uuid.uuid4())
    insert = "INSERT INTO card_data_keys (id, wrapped_key) VALUES (CAST(:k AS uuid), '\\x00')"

    assert db.call(insert + ' RETURNING id::text AS key', k=key) == [{'key': key}]
    assert db.read(('SELECT count(*) AS n FROM card_data_keys WHERE id = CAST(:k AS uuid)', {'k': key}))[0] == [
        {'n': 1}
    ]
    with pytest.raises(DatabaseError, match='duplicate key'):
        db.call(insert + ' RETURNING id::text AS key', k=key)  # the same key again: refused, and nothing else kept


def test_a_call_whose_connection_breaks_has_an_unknown_outcome(owner: Any) -> None:
    terminate(owner, backend_pid())

    with pytest.raises(errors.OutcomeUnknown):
        db.call('SELECT :n::int AS n', n=1)

    assert db.call('SELECT :n::int AS n', n=2) == [{'n': 2}]  # on a new connection


def test_copy_answers_the_rows_it_copied(database_url: str) -> None:
    with db.UnitOfWork() as uow:
        uow.execute('CREATE TEMPORARY TABLE copied (n int) ON COMMIT DROP')
        count = uow.copy('COPY copied (n) FROM STDIN WITH (FORMAT csv)', [b'1\n2\n', b'3\n'])
        total = uow.value('SELECT sum(n) + :zero FROM copied', zero=0)

    assert (count, total) == (3, 6)
