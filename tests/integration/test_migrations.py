"""The migration runner: order, checksum refusal, idempotent rerun, serialized concurrent runners."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from giftcards import db
from giftcards.migrations_runner import MigrationError, discover, migrate


@pytest.fixture
def scratch_db(database_url: str):
    """A separate empty database, dropped afterwards."""
    name = f'gc_mig_{uuid.uuid4().hex[:10]}'
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    params = db.connection_params('owner')
    params['database'] = name
    import pg8000.native

    def connect():
        return pg8000.native.Connection(**params)

    yield connect
    with db.owner_connection() as conn:
        conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


def test_applies_in_order_and_records_checksums(scratch_db, tmp_path):
    write(tmp_path, '0002_second.sql', 'INSERT INTO t VALUES (2);')
    write(tmp_path, '0001_first.sql', 'CREATE TABLE t (x int); INSERT INTO t VALUES (1);')
    conn = scratch_db()
    assert migrate(conn, tmp_path) == ['0001_first.sql', '0002_second.sql']
    assert conn.run('SELECT x FROM t ORDER BY x') == [[1], [2]]
    recorded = conn.run('SELECT version, name, checksum FROM schema_migrations ORDER BY version')
    assert [(v, n) for v, n, _ in recorded] == [(1, '0001_first.sql'), (2, '0002_second.sql')]
    assert recorded[0][2] == discover(tmp_path)[0].checksum


def test_rerun_applies_nothing(scratch_db, tmp_path):
    write(tmp_path, '0001_first.sql', 'CREATE TABLE t (x int);')
    conn = scratch_db()
    migrate(conn, tmp_path)
    assert migrate(conn, tmp_path) == []


def test_edited_applied_migration_is_refused(scratch_db, tmp_path):
    write(tmp_path, '0001_first.sql', 'CREATE TABLE t (x int);')
    conn = scratch_db()
    migrate(conn, tmp_path)
    write(tmp_path, '0001_first.sql', 'CREATE TABLE t (x bigint);')
    write(tmp_path, '0002_next.sql', 'CREATE TABLE u (y int);')
    with pytest.raises(MigrationError, match=r'0001_first\.sql was edited after it was applied'):
        migrate(conn, tmp_path)
    assert conn.run("SELECT count(*) FROM pg_tables WHERE tablename = 'u'") == [[0]]


def test_failed_migration_rolls_back_whole_file(scratch_db, tmp_path):
    write(tmp_path, '0001_bad.sql', 'CREATE TABLE t (x int); INSERT INTO t VALUES (1); SELECT 1/0;')
    conn = scratch_db()
    with pytest.raises(MigrationError, match=r'0001_bad\.sql failed'):
        migrate(conn, tmp_path)
    assert conn.run("SELECT count(*) FROM pg_tables WHERE tablename = 't'") == [[0]]
    assert conn.run('SELECT count(*) FROM schema_migrations') == [[0]]


def test_badly_named_file_is_refused(tmp_path):
    write(tmp_path, '1_oops.sql', 'SELECT 1;')
    with pytest.raises(MigrationError, match=r'NNNN_lower_snake\.sql'):
        discover(tmp_path)


def test_concurrent_runners_apply_each_migration_once(scratch_db, tmp_path):
    write(tmp_path, '0001_slow.sql', 'CREATE TABLE t (x int); SELECT pg_sleep(0.3); INSERT INTO t VALUES (1);')
    results: list[list[str]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        conn = scratch_db()
        barrier.wait()
        try:
            results.append(migrate(conn, tmp_path))
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert sorted(len(r) for r in results) == [0, 0, 1]
    assert scratch_db().run('SELECT count(*) FROM t') == [[1]]


def test_project_migrations_create_a_restricted_app_role(owner):
    row = owner.run(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'giftcard_app'"
    )
    assert row == [[False, False, False, False]]
