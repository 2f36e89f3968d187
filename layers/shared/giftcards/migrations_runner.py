"""Applies `migrations/NNNN_name.sql` in order, each in its own transaction, recorded with a checksum.

An applied file that was edited afterwards is refused; concurrent runners are serialized with an advisory
lock. Runs as the owner role (a CLI locally, the migrate function on deploy).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple

import pg8000.native

MIGRATIONS_DIR = Path(__file__).resolve().parent / 'migrations'
_LOCK_KEY = 0x6766_6D69  # 'gfmi': one advisory lock for all migration runners
_NAME = re.compile(r'^(\d{4})_[a-z0-9_]+\.sql$')


class MigrationError(Exception):
    pass


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob('*.sql')):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f'{path.name}: migration files are named NNNN_lower_snake.sql')
        found.append(Migration(int(match.group(1)), path.name, path.read_text(encoding='utf-8')))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f'two migration files share a number in {directory}')
    return found


def migrate(conn: pg8000.native.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; answer the names applied. Raises MigrationError on an edited file."""
    migrations = discover(directory)
    conn.run('SELECT pg_advisory_lock(:k)', k=_LOCK_KEY)
    try:
        conn.run(
            'CREATE TABLE IF NOT EXISTS schema_migrations ('
            ' version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,'
            ' applied_at timestamptz NOT NULL DEFAULT now())'
        )
        applied = {v: (n, c) for v, n, c in conn.run('SELECT version, name, checksum FROM schema_migrations')}
        for version, (name, checksum) in sorted(applied.items()):
            current = next((m for m in migrations if m.version == version), None)
            if current is None:
                raise MigrationError(f'{name} was applied but its file is missing')
            if current.checksum != checksum:
                raise MigrationError(
                    f'{current.name} was edited after it was applied (checksum {checksum[:12]} in the database, '
                    f'{current.checksum[:12]} on disk). Applied migrations are immutable: restore the file and '
                    'add a new migration for the change.'
                )
        done = []
        for migration in migrations:
            if migration.version in applied:
                continue
            conn.run('BEGIN')
            try:
                conn.execute_simple(migration.sql)
                conn.run(
                    'INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)',
                    v=migration.version,
                    n=migration.name,
                    c=migration.checksum,
                )
                conn.run('COMMIT')
            except Exception as exc:
                conn.run('ROLLBACK')
                raise MigrationError(f'{migration.name} failed: {exc}') from exc
            done.append(migration.name)
        return done
    finally:
        conn.run('SELECT pg_advisory_unlock(:k)', k=_LOCK_KEY)
