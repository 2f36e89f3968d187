"""CSV card import: seconds and cards/s for a generated file, beside a plain COPY of the same file in the same run.

    .venv/bin/python -m bench.import_cards [--cards 100000] [--runs 3]

The baseline is what PostgreSQL itself takes to COPY the raw file into an unindexed temporary table. The import
does that too, then checks the file, hashes and encrypts every card in Python, and COPYs the cards into the
indexed, foreign-keyed, WAL-logged `cards` and `available_cards`. Each run imports a new file into one pool of a
fresh database on the server DATABASE_URL names (or the embedded server), dropped at the end. Each run also shows
the CPU seconds the import took in Python and in its server process (when that runs on this machine): on a shared
machine they move less than the wall time, which also holds whatever else ran.
Target: 100,000 cards in < 10 s. The file must also fit one request: Lambda takes at most 6 MB per synchronous
invocation (API Gateway's own limit is 10 MB).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024
ADMIN = 'bench-import-admin'


def write_file(path: Path, count: int) -> int:
    """A CSV file of `count` new cards shaped like a vendor's export; answers its size in bytes."""
    with path.open('w', encoding='utf-8', newline='') as out:
        out.write('card_code,card_number,pin,expires_on\n')
        for i in range(count):
            out.write(f'{uuid.uuid4().hex[:16].upper()},{6006490000000000 + i},{i % 10_000:04d},2031-12-31\n')
    return path.stat().st_size


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path='/' + name))


def _use_database(url: str) -> None:
    from giftcards import db
    from giftcards.config import get_settings

    os.environ['DATABASE_URL'] = url
    get_settings.cache_clear()
    db.reset_connections()


def baseline_copy(path: Path) -> float:
    """Seconds PostgreSQL takes to COPY the raw file into an unindexed table (on the application role)."""
    from giftcards import db

    conn = db.connect('app')
    try:
        conn.run('CREATE TEMPORARY TABLE baseline (card_code text, card_number text, pin text, expires_on text)')
        with path.open('rb') as stream:
            started = time.perf_counter()
            conn.run('COPY baseline FROM STDIN WITH (FORMAT csv, HEADER true)', stream=stream)
            return time.perf_counter() - started
    finally:
        conn.close()


@dataclass(frozen=True)
class Timing:
    seconds: float
    python_cpu_s: float
    server_cpu_s: float | None  # None when the server is not a process of this machine


def _server_cpu_s(pid: int) -> float | None:
    """CPU seconds a server process of this machine has used, from /proc; None for a server elsewhere."""
    try:
        if b'postgres' not in Path(f'/proc/{pid}/cmdline').read_bytes():
            return None
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime


def timed_import(pool_id: str, path: Path) -> Timing:
    """The import's wall time, and the CPU time it took in Python and in its server process: on a shared machine
    the CPU seconds say what the import costs, the wall time also what the other processes took."""
    from giftcards import card_import, db

    [[pid]] = db.get_connection('app').run('SELECT pg_backend_pid()')  # the connection the import will use
    with path.open('rb') as stream:
        server_before = _server_cpu_s(pid)
        cpu_before, started = time.process_time(), time.perf_counter()
        card_import.import_cards(ADMIN, pool_id, stream)
        seconds, python_cpu_s = time.perf_counter() - started, time.process_time() - cpu_before
        server_after = _server_cpu_s(pid)
    server_cpu_s = server_after - server_before if server_before is not None and server_after is not None else None
    return Timing(seconds, python_cpu_s, server_cpu_s)


def new_pool() -> str:
    from giftcards import db, memberships, pools

    with db.owner_connection() as conn:
        memberships.grant(conn, ADMIN, 'platform_admin')
        [[brand_id]] = conn.run(
            "INSERT INTO brands (name, denominations_cents) VALUES ('Bench', '{2500}') RETURNING id::text"
        )
    request = pools.PoolRequest.model_validate({'brand_id': brand_id, 'denomination': 25, 'cost_per_card': 23})
    return db.in_transaction(lambda uow: pools.create_pool(uow, ADMIN, request)).id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cards', type=int, default=100_000, help='cards per file (default 100000)')
    parser.add_argument('--runs', type=int, default=3, help='files imported, one after another (default 3)')
    args = parser.parse_args(argv)

    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    from giftcard_local import embedded
    from giftcards import db, pools
    from giftcards.migrations_runner import migrate

    base = embedded.database_url()
    name = f'gc_bench_import_{uuid.uuid4().hex[:8]}'
    _use_database(_with_database(base, 'postgres'))
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    try:
        _use_database(_with_database(base, name))
        with db.owner_connection() as conn:
            migrate(conn)
        pool_id = new_pool()
        imports: list[Timing] = []
        copies: list[float] = []
        with tempfile.TemporaryDirectory() as folder:
            for run in range(1, args.runs + 1):
                path = Path(folder) / f'cards-{run}.csv'
                size = write_file(path, args.cards)
                copies.append(baseline_copy(path))
                imports.append(timed_import(pool_id, path))
                over = ' (over the 6 MB Lambda request limit)' if size > LAMBDA_PAYLOAD_LIMIT else ''
                timing = imports[-1]
                server = f', server {timing.server_cpu_s:.2f} s' if timing.server_cpu_s is not None else ''
                print(
                    f'run {run}: {args.cards:,} cards, {size / 1e6:.1f} MB{over}: '
                    f'import {timing.seconds:.2f} s ({args.cards / timing.seconds:,.0f} cards/s; '
                    f'CPU: Python {timing.python_cpu_s:.2f} s{server}), '
                    f'plain COPY {copies[-1]:.2f} s ({args.cards / copies[-1]:,.0f} rows/s)'
                )
        stock = db.in_transaction(pools.stock_by_pool)[pool_id]
        assert stock.available == args.cards * args.runs, stock
        import_s, copy_s = statistics.median(t.seconds for t in imports), statistics.median(copies)
        print(
            f'median of {args.runs}: import {import_s:.2f} s = {args.cards / import_s:,.0f} cards/s (target < 10 s); '
            f'plain COPY of the same file {copy_s:.2f} s; the import takes {import_s / copy_s:.0f}x the COPY; '
            f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs'
        )
    finally:
        db.reset_connections()
        _use_database(_with_database(base, 'postgres'))
        with db.owner_connection() as conn:
            conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
