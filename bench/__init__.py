"""Benchmarks (`make bench`, i.e. `python -m bench`): each module measures one path of the system next to a
pgbench baseline (`bench.baseline`) measured in the same run on the same server. What every benchmark shares
lives here: a scratch database, the markdown table, and writing the report to `bench/results/`."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RESULTS = Path(__file__).resolve().parent / 'results'


def duration_s(default: int = 10) -> int:
    """Seconds per measurement: `BENCH_DURATION`."""
    return int(os.environ.get('BENCH_DURATION', default))


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path='/' + name))


OPERATOR = 'bench-operator'


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A new database migrated by the project's migrations, on `DATABASE_URL`'s server or the embedded one.
    While it exists, `DATABASE_URL` names it (so `giftcards.db` connects there); it is dropped afterwards."""
    from giftcard_local import embedded
    from giftcards import db
    from giftcards.config import get_settings
    from giftcards.migrations_runner import migrate

    previous = os.environ.get('DATABASE_URL')
    base = embedded.database_url()
    admin_url, url = with_database(base, 'postgres'), with_database(base, f'gc_bench_{label}_{uuid.uuid4().hex[:8]}')
    name = urlsplit(url).path.lstrip('/')

    def point_at(target: str | None) -> None:
        if target is None:
            os.environ.pop('DATABASE_URL', None)
        else:
            os.environ['DATABASE_URL'] = target
        get_settings.cache_clear()
        db.reset_connections()

    point_at(admin_url)
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    try:
        point_at(url)
        with db.owner_connection() as conn:
            migrate(conn)
            conn.run("INSERT INTO memberships (subject, role) VALUES (:s, 'platform_admin')", s=OPERATOR)
        # What a benchmark sets up and checks for itself with the application role (row-level security), it does
        # as a platform admin of its own; what it measures acts as the subjects it measures.
        with db.acting_as(db.Scope.of_subject(OPERATOR)):
            yield url
    finally:
        point_at(admin_url)
        with db.owner_connection() as conn:
            conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        point_at(previous)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = [
        '| ' + ' | '.join(headers) + ' |',
        '|' + '|'.join('---' if i == 0 else '---:' for i in range(len(headers))) + '|',
    ]
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def report(name: str, title: str, facts: dict[str, Any] | None, table: str, notes: str = '') -> Path:
    """Print the table and write the whole report to `bench/results/<name>-<UTC time>.md`. `facts` are the
    server's (`Baseline.server_facts()`); None for a benchmark that uses no database."""
    now = datetime.now(UTC)
    python = f'Python {platform.python_version()}'
    header = [f'# {title}', '', f'- date: {now:%Y-%m-%d %H:%M:%S} UTC']
    if facts is None:
        header.append(f'- {os.cpu_count()} CPUs shared with whatever else runs; {python}')
    else:
        header += [
            f'- PostgreSQL {facts.get("version")} (fsync={facts.get("fsync")}, synchronous_commit='
            f'{facts.get("synchronous_commit")}, shared_buffers={facts.get("shared_buffers")})',
            f'- {os.cpu_count()} CPUs shared by the server, the benchmark and pgbench; {python}',
        ]
    header.append('- single-run figures on a shared machine: compare only within one run')
    text = '\n'.join(header) + '\n\n' + table + '\n' + (f'\n{notes.strip()}\n' if notes.strip() else '')
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f'{name}-{now:%Y%m%dT%H%M%SZ}.md'
    path.write_text(text)
    print(table)
    print(f'\nwritten: {path}')
    return path
