"""What PostgreSQL itself reaches on this server: pgbench on the transaction shapes this system performs on one
hot account row (a port of the shared `pgbench_baseline.sh`), measured in the same run as a benchmark so that
the benchmark can print its own throughput as a ratio of it.

| shape | transaction |
|---|---|
| `hot_update` | `UPDATE account SET balance = balance - 2500 WHERE id = 1 AND balance >= 2500` |
| `hot_debit_txn` | that update + two ledger-entry INSERTs (an allocation's shape) |
| `provision_like` | that + claiming one card with `FOR UPDATE SKIP LOCKED` (a CSV provision's shape) |

    with Baseline(owner_url, shapes=['hot_debit_txn']) as baseline:
        result = baseline.run('hot_debit_txn', clients=8, duration_s=10)

The tables live in their own schema (`pgbench_anchor`), dropped at the end. `python -m bench.baseline` runs
every shape for 1, 8 and 32 clients (`CLIENTS`, `DURATION` as in the shell script) on `DATABASE_URL` or the
embedded server and prints the markdown table.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pg8000.native

SCHEMA = 'pgbench_anchor'
SHAPES = ('hot_update', 'hot_debit_txn', 'provision_like')
CARDS = 2_000_000

_DEBIT = 'UPDATE account SET balance_cents = balance_cents - 2500 WHERE id = 1 AND balance_cents >= 2500;'
_ENTRIES = (
    'INSERT INTO entry(account_id, amount_cents) VALUES (1, -2500);\n'
    'INSERT INTO entry(account_id, amount_cents) VALUES (0, 2500);'
)
_CLAIM = (
    "UPDATE card SET state = 'claimed', claimed_at = now() WHERE id = (SELECT id FROM card WHERE state = 'available'"
    ' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id;'
)
SCRIPTS = {
    'hot_update': f'{_DEBIT}\n',
    'hot_debit_txn': f'BEGIN;\n{_DEBIT}\n{_ENTRIES}\nEND;\n',
    'provision_like': f'BEGIN;\n{_DEBIT}\n{_ENTRIES}\n{_CLAIM}\nEND;\n',
}


@dataclass(frozen=True)
class PgbenchResult:
    shape: str
    clients: int
    tps: float
    latency_ms: float
    failed: int


def pgbench_bin() -> Path:
    """The folder holding `pgbench`: `PGBIN`, else the binaries the `pgserver` package ships, else PATH."""
    if os.environ.get('PGBIN'):
        return Path(os.environ['PGBIN'])
    try:
        import pgserver

        shipped = Path(pgserver.__file__).parent / 'pginstall' / 'bin'
        if (shipped / 'pgbench').exists():
            return shipped
    except ImportError:
        pass
    found = shutil.which('pgbench')
    if found is None:
        raise RuntimeError('pgbench not found: set PGBIN to the folder holding pgbench')
    return Path(found).parent


def _connect(url: str) -> pg8000.native.Connection:
    from giftcards import db
    from giftcards.config import Settings

    params = db.connection_params('owner', Settings.model_validate({'DATABASE_URL': url}))
    return pg8000.native.Connection(**params)


class Baseline:
    """The anchor schema on the server behind `url` (an owner URL libpq and pg8000 both read)."""

    def __init__(self, url: str, shapes: tuple[str, ...] | list[str] = SHAPES, cards: int = CARDS) -> None:
        unknown = set(shapes) - set(SHAPES)
        if unknown:
            raise ValueError(f'unknown shapes: {sorted(unknown)}')
        self.url = url
        self.shapes = tuple(shapes)
        self.cards = cards if 'provision_like' in shapes else 0
        self.bin = pgbench_bin()
        self._dir = Path(tempfile.mkdtemp(prefix='pgbench_anchor.'))
        self._conn: pg8000.native.Connection | None = None

    def __enter__(self) -> Baseline:
        self._conn = _connect(self.url)
        conn = self._conn
        conn.run('SET client_min_messages = warning')
        conn.run(f'DROP SCHEMA IF EXISTS {SCHEMA} CASCADE')
        conn.run(f'CREATE SCHEMA {SCHEMA}')
        conn.run(f'SET search_path = {SCHEMA}')
        conn.run('CREATE TABLE account(id int PRIMARY KEY, balance_cents bigint NOT NULL CHECK (balance_cents >= 0))')
        conn.run('INSERT INTO account VALUES (1, 1000000000000000)')
        conn.run(
            'CREATE TABLE entry(id bigserial PRIMARY KEY, account_id int, amount_cents bigint,'
            ' created_at timestamptz DEFAULT now())'
        )
        conn.run(
            "CREATE TABLE card(id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'available',"
            ' claimed_at timestamptz)'
        )
        if self.cards:
            conn.run("INSERT INTO card(state) SELECT 'available' FROM generate_series(1, :n)", n=self.cards)
        conn.run("CREATE INDEX card_available_idx ON card(id) WHERE state = 'available'")
        conn.run('VACUUM ANALYZE account, entry, card')
        for shape in self.shapes:
            (self._dir / f'{shape}.sql').write_text(SCRIPTS[shape])
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        if self._conn is not None:
            self._conn.run(f'DROP SCHEMA IF EXISTS {SCHEMA} CASCADE')
            self._conn.close()
            self._conn = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def settle(self) -> None:
        """The same clean-ish start for every run: VACUUM ANALYZE and, when allowed, a CHECKPOINT."""
        assert self._conn is not None, 'use Baseline as a context manager'
        self._conn.run('VACUUM ANALYZE account, entry, card')
        with contextlib.suppress(pg8000.native.DatabaseError):  # needs superuser or pg_checkpoint
            self._conn.run('CHECKPOINT')

    def run(self, shape: str, clients: int, duration_s: int, *, settle: bool = True) -> PgbenchResult:
        """One pgbench run; `settle` first (VACUUM ANALYZE, CHECKPOINT) unless told not to."""
        if shape not in self.shapes:
            raise ValueError(f'{shape} was not prepared; pass it in shapes')
        if settle:
            self.settle()
        env = {**os.environ, 'PGOPTIONS': f'{os.environ.get("PGOPTIONS", "")} -c search_path={SCHEMA}'.strip()}
        command = [
            str(self.bin / 'pgbench'), '-n', '-M', 'prepared', '-j', str(min(2, clients)), '-c', str(clients),
            '-T', str(duration_s), '-f', str(self._dir / f'{shape}.sql'), self.url,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration_s + 120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f'pgbench failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}')
        return PgbenchResult(
            shape=shape,
            clients=clients,
            tps=float(_field(done.stdout, r'^tps = ([\d.]+)')),
            latency_ms=float(_field(done.stdout, r'^latency average = ([\d.]+) ms')),
            failed=int(_field(done.stdout, r'^number of failed transactions: (\d+)', '0')),
        )

    def server_facts(self) -> dict[str, Any]:
        assert self._conn is not None, 'use Baseline as a context manager'
        row = self._conn.run(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'),"
            " current_setting('shared_buffers')"
        )[0]
        return dict(zip(('version', 'fsync', 'synchronous_commit', 'shared_buffers'), row, strict=True))


def _field(output: str, pattern: str, default: str | None = None) -> str:
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        if default is not None:
            return default
        raise RuntimeError(f'unexpected pgbench output (no {pattern!r}):\n{output}')
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    """Every shape for CLIENTS (\"1 8 32\") clients, DURATION (20) seconds each, as the shell script."""
    import bench

    clients = [int(c) for c in os.environ.get('CLIENTS', '1 8 32').split()]
    duration = int(os.environ.get('DURATION', '20'))
    rows = []
    with bench.scratch_database('baseline') as url, Baseline(url) as baseline:
        for shape in SHAPES:
            for c in clients:
                r = baseline.run(shape, c, duration)
                rows.append((shape, c, f'{r.tps:.0f}', f'{r.latency_ms:.3f}', r.failed))
        facts = baseline.server_facts()
    table = bench.markdown_table(('script', 'clients', 'tps', 'avg latency (ms)', 'failed'), rows)
    bench.report('baseline', f'pgbench baseline: {duration} s per run', facts, table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
