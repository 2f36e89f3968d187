"""CSV-path provisioning throughput and latency on one hot shared client budget, beside pgbench in the same run.

    .venv/bin/python -m bench.provision [--duration 10] [--workers 1 8 32] [--cards 60000]

For each worker count: pgbench runs the `provision_like` transaction (conditional UPDATE of one hot row, two entry
INSERTs, one SKIP LOCKED card claim; see ../shared/bench/README.md) for the duration, then as many worker processes
call `provisioning.provision_gift_card` (each on its own connection, every call a new redemption code, one shared
client budget) for the same duration. Prints a markdown table with provisions per second, p50/p99 latency and the
ratio to pgbench, then checks that nothing was overdrawn: the ledger recomputes clean, the client's balance is its
funding minus exactly what the fulfilled redemptions charged, and every redemption holds its own card.

The database is a fresh one on the server DATABASE_URL names (or the embedded server), dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PRICE_CENTS = 2500
FUNDS_CENTS = 10**13  # the hot shared budget never runs out during a run
PGBENCH_CARDS = 1_000_000

PGBENCH_SCHEMA = f"""
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS pgbench_anchor CASCADE;
CREATE SCHEMA pgbench_anchor;
SET search_path = pgbench_anchor;
CREATE TABLE account (id int PRIMARY KEY, balance_cents bigint NOT NULL CHECK (balance_cents >= 0));
INSERT INTO account VALUES (1, 1000000000000000);
CREATE TABLE entry (id bigserial PRIMARY KEY, account_id int, amount_cents bigint,
                    created_at timestamptz DEFAULT now());
CREATE TABLE card (id bigserial PRIMARY KEY, state text NOT NULL DEFAULT 'available', claimed_at timestamptz);
INSERT INTO card (state) SELECT 'available' FROM generate_series(1, {PGBENCH_CARDS});
CREATE INDEX card_available_idx ON card (id) WHERE state = 'available';
VACUUM ANALYZE account, entry, card;
"""

# The `provision_like` script of ../shared/bench/pgbench_baseline.sh.
PROVISION_LIKE = """BEGIN;
UPDATE account SET balance_cents = balance_cents - 2500 WHERE id = 1 AND balance_cents >= 2500;
INSERT INTO entry(account_id, amount_cents) VALUES (1, -2500);
INSERT INTO entry(account_id, amount_cents) VALUES (0, 2500);
UPDATE card SET state = 'claimed', claimed_at = now()
 WHERE id = (SELECT id FROM card WHERE state = 'available' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id;
END;
"""


@dataclass(frozen=True)
class Fixture:
    campaign_id: str
    brand_id: str
    client_account: str
    subject: str


@dataclass(frozen=True)
class Row:
    workers: int
    provisions: int
    errors: int
    tps: float
    p50_ms: float
    p99_ms: float
    pgbench_tps: float


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path='/' + name))


def _pgbench_binary() -> Path:
    import pgserver

    return Path(pgserver.__file__).resolve().parent / 'pginstall' / 'bin' / 'pgbench'


# --- setup -----------------------------------------------------------------------------------------------


def create_database(base_url: str) -> tuple[str, str]:
    """A fresh, migrated database: (its URL, the admin URL to drop it with)."""
    from giftcards import db
    from giftcards.config import get_settings
    from giftcards.migrations_runner import migrate

    name = f'gc_bench_{uuid.uuid4().hex[:10]}'
    admin_url = _with_database(base_url, 'postgres')
    os.environ['DATABASE_URL'] = admin_url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    url = _with_database(base_url, name)
    os.environ['DATABASE_URL'] = url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        migrate(conn)
    return url, admin_url


def drop_database(url: str, admin_url: str) -> None:
    from giftcards import db
    from giftcards.config import get_settings

    db.reset_connections()
    os.environ['DATABASE_URL'] = admin_url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        conn.run(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def build_fixture(cards: int) -> Fixture:
    """One agency -> client -> shared campaign, the client funded, one brand, one pool of `cards` cards."""
    from giftcards import cards as card_pools
    from giftcards import db, hierarchy, ledger, memberships

    def hierarchy_rows(uow: db.UnitOfWork) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
        agency = hierarchy.add_agency(uow, f'Bench agency {uuid.uuid4().hex[:6]}', actor='bench')
        client = hierarchy.add_client(uow, agency['id'], 'Bench client', actor='bench')
        campaign = hierarchy.add_campaign(uow, client['id'], 'Bench campaign', 'shared', actor='bench')
        brand = hierarchy.add_brand(uow, f'Bench brand {uuid.uuid4().hex[:6]}', [PRICE_CENTS], [], actor='bench')
        source = ledger.platform_account(uow)
        for target in (agency['account_id'], client['account_id']):
            ledger.transfer_credit(uow, source, target, FUNDS_CENTS, 'allocation', initiator='bench')
            source = target
        return agency, client, campaign, brand

    _, client, campaign, brand = db.in_transaction(hierarchy_rows)
    admin, subject = f'bench-admin-{uuid.uuid4().hex[:6]}', f'bench-integration-{uuid.uuid4().hex[:6]}'
    with db.owner_connection() as conn:
        memberships.grant(conn, admin, 'platform_admin')
        memberships.grant(conn, subject, 'client_integration', client_id=client['id'])
    body = card_pools.PoolRequest.model_validate(
        {'brand_id': brand['id'], 'denomination': PRICE_CENTS // 100, 'cost_per_card': 23.5}
    )
    pool = db.in_transaction(lambda uow: card_pools.create_pool(uow, admin, body))
    rows = ''.join(f'BENCH-{uuid.uuid4().hex},{n:016d}\n' for n in range(cards))
    card_pools.import_cards(admin, pool['id'], io.BytesIO(f'card_code,card_number\n{rows}'.encode()))
    return Fixture(campaign['id'], brand['id'], client['account_id'], subject)


# --- the two contenders ----------------------------------------------------------------------------------


def run_pgbench(url: str, clients: int, duration: float) -> float:
    """pgbench's provision_like transactions per second with `clients` connections."""
    with tempfile.NamedTemporaryFile('w', suffix='.sql', delete=False) as script:
        script.write(PROVISION_LIKE)
    env = {**os.environ, 'PGOPTIONS': '-c search_path=pgbench_anchor'}
    threads = min(clients, os.cpu_count() or 1)
    try:
        done = subprocess.run(
            [
                str(_pgbench_binary()),
                '-n',
                '-M',
                'prepared',
                '-j',
                str(threads),
                '-c',
                str(clients),
                '-T',
                str(int(duration)),
                '-f',
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    match = re.search(r'^tps = ([\d.]+)', done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f'pgbench printed no tps:\n{done.stdout}\n{done.stderr}')
    return float(match.group(1))


def _worker(fixture: Fixture, start: Any, duration: float, results: Any) -> None:
    from giftcards import errors, provisioning

    latencies: list[float] = []
    failures = 0
    start.wait()
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        request = provisioning.ProvisionRequest(
            campaign_id=fixture.campaign_id,
            brand_id=fixture.brand_id,
            denomination_cents=PRICE_CENTS,
            redemption_code=f'BENCH-{uuid.uuid4().hex}',
            source_ip='198.51.100.9',
            user_agent='bench',
        )
        began = time.perf_counter()
        try:
            provisioning.provision_gift_card(request, subject=fixture.subject)
        except errors.DomainError:
            failures += 1
            continue
        latencies.append(time.perf_counter() - began)
    results.put((latencies, failures))


def run_provisions(fixture: Fixture, workers: int, duration: float) -> tuple[list[float], int, float]:
    """(latencies of successful provisions, failures, wall seconds) with `workers` processes."""
    from giftcards import db

    db.reset_connections()  # each forked worker opens its own connection
    context = mp.get_context('fork')
    start, results = context.Barrier(workers + 1), context.Queue()
    processes = [context.Process(target=_worker, args=(fixture, start, duration, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    start.wait()
    began = time.monotonic()
    outcomes = [results.get(timeout=duration + 120) for _ in processes]
    elapsed = time.monotonic() - began
    for process in processes:
        process.join()
    latencies = [lat for lats, _ in outcomes for lat in lats]
    return latencies, sum(f for _, f in outcomes), elapsed


# --- report ----------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float('nan')


def check_no_overdraft(fixture: Fixture) -> list[str]:
    """Everything that would mean money or cards went wrong; empty when all is well."""
    from giftcards import db, ledger

    def work(uow: db.UnitOfWork) -> list[str]:
        problems = []
        report = ledger.check(uow)
        if not report.ok:
            problems.append(report.summary())
        row = uow.fetch_one(
            "SELECT count(*) FILTER (WHERE status = 'fulfilled') AS fulfilled, count(*) AS redemptions,"
            ' count(DISTINCT card_id) AS cards, coalesce(sum(amount_charged_cents), 0) AS charged'
            ' FROM redemptions WHERE campaign_id = CAST(:c AS uuid)',
            c=fixture.campaign_id,
        )
        balance = uow.value(
            'SELECT balance_cents FROM credit_accounts WHERE id = CAST(:a AS uuid)', a=fixture.client_account
        )
        assert row is not None
        if row['fulfilled'] != row['redemptions'] or row['cards'] != row['redemptions']:
            problems.append(f'redemptions without their own card: {row}')
        if balance != FUNDS_CENTS - row['charged'] or balance < 0:
            problems.append(f'client balance {balance} != funding {FUNDS_CENTS} - charged {row["charged"]}')
        claimed = uow.value("SELECT count(*) FROM cards WHERE status = 'claimed'")
        if claimed != row['redemptions']:
            problems.append(f'{claimed} cards claimed for {row["redemptions"]} redemptions')
        return problems

    return db.in_transaction(work)


def table(rows: list[Row]) -> str:
    lines = [
        '| workers | provisions/s | p50 ms | p99 ms | errors | pgbench provision_like tps | ratio |',
        '|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for r in rows:
        lines.append(
            f'| {r.workers} | {r.tps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {r.pgbench_tps:.0f} |'
            f' {r.tps / r.pgbench_tps:.0%} |'
        )
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration', type=float, default=10.0, help='seconds per measurement (default 10)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 8, 32])
    parser.add_argument('--cards', type=int, default=60_000, help='cards in the pool (enough for every run)')
    args = parser.parse_args(argv)

    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')  # one INFO line per provision would be the bench
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    from giftcard_local import embedded

    url, admin_url = create_database(embedded.database_url())
    try:
        print(f'setting up: {args.cards} cards, pgbench schema ({PGBENCH_CARDS} cards)...', file=sys.stderr)
        fixture = build_fixture(args.cards)
        subprocess.run(
            [str(_pgbench_binary().parent / 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', url],
            input=PGBENCH_SCHEMA,
            text=True,
            check=True,
            capture_output=True,
        )
        rows = []
        for workers in args.workers:
            print(f'pgbench -c {workers}...', file=sys.stderr)
            baseline = run_pgbench(url, workers, args.duration)
            print(f'provisioning with {workers} workers...', file=sys.stderr)
            latencies, failures, elapsed = run_provisions(fixture, workers, args.duration)
            rows.append(
                Row(
                    workers,
                    len(latencies),
                    failures,
                    len(latencies) / elapsed,
                    percentile(latencies, 0.5),
                    percentile(latencies, 0.99),
                    baseline,
                )
            )
        problems = check_no_overdraft(fixture)
        print(table(rows))
        total = sum(r.provisions for r in rows)
        print(f'\n{total} provisions; p50/p99 over successful calls; errors = answers other than 200.')
        print(
            'overdraft check: '
            + (
                'clean (ledger ok, balance = funding - charges, one card per redemption)'
                if not problems
                else 'FAILED: ' + '; '.join(problems)
            )
        )
        return 1 if problems else 0
    finally:
        drop_database(url, admin_url)


if __name__ == '__main__':
    sys.exit(main())
