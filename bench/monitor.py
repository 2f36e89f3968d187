"""One monitor run over a large system, beside a plain `SELECT count(*)` over the cards table in the same run.

    .venv/bin/python -m bench.monitor [--agencies 1000] [--clients-per-agency 10] [--campaigns-per-client 5]
                                      [--pools 500] [--cards 1000000]

A scratch database on the embedded server (or the server DATABASE_URL names) is migrated and filled as the owner
role with set-based SQL (generate_series): agencies, clients and campaigns with their credit accounts, funded
through real ledger transfers and entries (the ledger checks clean); 50 brands of 4 denominations; CSV pools
holding the cards (ciphertext columns hold random bytes), a fifth of them claimed. Some entities sit below their
thresholds so the checks find work: 5% of agencies and clients, 5% of isolated campaigns under $100, 1% of
isolated campaigns at $0 (auto-paused), and 30 pools empty, nearly empty or low.

Then, as the application role: the first monitor run (opens every alert; its ledger check reads every entry, as
on its first run after a deployment), a second run (the steady state: every condition persists, nothing to announce;
the ledger check reads the entries again, as its watermark lags a run behind), a third run (the ledger check caught
up: every balance against its newest entry, and no entry), and `SELECT count(*) FROM cards`. Target: a run under 2
seconds.
The database is dropped at the end; the report is written to bench/results/ (see bench/__init__.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from typing import Any

DENOMINATIONS = (1000, 2500, 5000, 10000)
BRANDS = 50
TARGET_S = 2.0


FILL = """
SET LOCAL synchronous_commit = off;

INSERT INTO brands (name, denominations_cents)
SELECT 'Bench brand ' || g, ARRAY[{denominations}]::bigint[] FROM generate_series(1, {brands}) g;
INSERT INTO brand_prices (brand_id, denomination_cents, agency_price_cents, client_price_cents)
SELECT id, 2500, 2600, 2750 FROM brands;

-- The hierarchy and the final balance of each account (cents). 5% of agencies, clients and isolated campaigns are
-- below their threshold; 1% of isolated campaigns hold nothing.
CREATE TEMPORARY TABLE bench_agencies ON COMMIT DROP AS
SELECT g AS n, gen_random_uuid() AS id, gen_random_uuid() AS account_id,
       CASE WHEN g % 20 = 0 THEN 50000 ELSE 2000000 END::bigint AS keep
  FROM generate_series(1, {agencies}) g;
CREATE TEMPORARY TABLE bench_clients ON COMMIT DROP AS
SELECT (a.n - 1) * {clients} + k AS n, a.id AS agency_id, a.account_id AS parent_account, gen_random_uuid() AS id,
       gen_random_uuid() AS account_id,
       CASE WHEN ((a.n - 1) * {clients} + k) % 20 = 0 THEN 30000 ELSE 500000 END::bigint AS keep
  FROM bench_agencies a CROSS JOIN generate_series(1, {clients}) k;
CREATE TEMPORARY TABLE bench_campaigns ON COMMIT DROP AS
SELECT (c.n - 1) * {campaigns} + k AS n, c.id AS client_id, c.account_id AS parent_account, gen_random_uuid() AS id,
       gen_random_uuid() AS account_id, CASE WHEN k <= 3 THEN 'isolated' ELSE 'shared' END AS budget_mode,
       CASE WHEN k > 3 THEN 0
            WHEN k = 1 AND c.n % 7 = 0 THEN 5000
            WHEN k = 2 AND c.n % 33 = 0 THEN 0
            ELSE 50000 END::bigint AS keep
  FROM bench_clients c CROSS JOIN generate_series(1, {campaigns}) k;

INSERT INTO credit_accounts (id, owner_type, owner_id, parent_id)
SELECT account_id, 'agency', id, (SELECT id FROM credit_accounts WHERE owner_type = 'platform') FROM bench_agencies
UNION ALL SELECT account_id, 'client', id, parent_account FROM bench_clients
UNION ALL SELECT account_id, 'campaign', id, parent_account FROM bench_campaigns;
INSERT INTO agencies (id, name, account_id) SELECT id, 'Bench agency ' || n, account_id FROM bench_agencies;
INSERT INTO clients (id, agency_id, name, account_id)
SELECT id, agency_id, 'Bench client ' || n, account_id FROM bench_clients;
INSERT INTO campaigns (id, client_id, name, budget_mode, account_id)
SELECT id, client_id, 'Bench campaign ' || n, budget_mode, account_id FROM bench_campaigns;

-- One allocation per funded account, from its parent: what it keeps plus what it passes down.
CREATE TEMPORARY TABLE bench_allocations ON COMMIT DROP AS
WITH campaign_in AS (
    SELECT parent_account AS from_id, account_id AS to_id, keep AS amount, n FROM bench_campaigns WHERE keep > 0
), client_in AS (
    SELECT c.parent_account AS from_id, c.account_id AS to_id, c.keep + coalesce(d.total, 0) AS amount, c.n
      FROM bench_clients c
      LEFT JOIN (SELECT from_id, sum(amount) AS total FROM campaign_in GROUP BY from_id) d ON d.from_id = c.account_id
), agency_in AS (
    SELECT (SELECT id FROM credit_accounts WHERE owner_type = 'platform') AS from_id, a.account_id AS to_id,
           a.keep + d.total AS amount, a.n
      FROM bench_agencies a
      JOIN (SELECT from_id, sum(amount) AS total FROM client_in GROUP BY from_id) d ON d.from_id = a.account_id
)
SELECT gen_random_uuid() AS id, level, from_id, to_id, amount::bigint AS amount, n
  FROM (SELECT 1 AS level, * FROM agency_in UNION ALL SELECT 2, * FROM client_in
        UNION ALL SELECT 3, * FROM campaign_in) t;

INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator)
SELECT id, 'allocation', from_id, to_id, amount, 'bench' FROM bench_allocations;
-- Each account's entries chain as the ledger writes them: in id order, each one's balance_after is the one before
-- it plus its amount. An account is credited at one level and debited at the next, so the entries are written
-- level by level, each balance_after the running sum in that order.
INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
SELECT id, account_id, amount, sum(amount) OVER (PARTITION BY account_id ORDER BY level, side, n)
  FROM (SELECT id, from_id AS account_id, -amount AS amount, level, 0 AS side, n FROM bench_allocations
        UNION ALL
        SELECT id, to_id, amount, level, 1, n FROM bench_allocations) e
 ORDER BY level, n, side;
SET LOCAL ROLE giftcard_ledger;  -- balances change only as the ledger's role (migration 0019)
UPDATE credit_accounts acc SET balance_cents = t.total
  FROM (SELECT account_id, sum(amount_cents) AS total FROM credit_entries GROUP BY account_id) t
 WHERE acc.id = t.account_id;
RESET ROLE;

-- Pools: each brand and denomination has its pools; every 50th pool is empty, nearly empty (5) or low (30).
CREATE TEMPORARY TABLE bench_pools ON COMMIT DROP AS
SELECT p AS n, gen_random_uuid() AS id, b.id AS brand_id,
       (ARRAY[{denominations}]::bigint[])[1 + (p / {brands}) % {denomination_count}] AS denomination_cents,
       CASE p % 50 WHEN 0 THEN 0 WHEN 1 THEN 5 WHEN 2 THEN 30 ELSE NULL END AS cards
  FROM generate_series(0, {pools} - 1) p
  JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS k FROM brands) b ON b.k = p % {brands};
WITH sized AS (
    SELECT count(*) FILTER (WHERE cards IS NULL) AS big, {cards} - coalesce(sum(cards), 0) AS rest FROM bench_pools
)
UPDATE bench_pools p SET cards = sized.rest / sized.big + CASE WHEN r.k <= sized.rest % sized.big THEN 1 ELSE 0 END
  FROM sized, (SELECT id, row_number() OVER (ORDER BY n) AS k FROM bench_pools WHERE cards IS NULL) r
 WHERE p.id = r.id;
INSERT INTO card_pools (id, brand_id, denomination_cents, cost_per_card_cents, card_count)
SELECT id, brand_id, denomination_cents, denomination_cents - 100, cards FROM bench_pools;

INSERT INTO card_data_keys (id, wrapped_key) VALUES ('00000000-0000-4000-8000-000000000001', '\\x00');
INSERT INTO cards (id, pool_id, brand_id, denomination_cents, cost_cents, source, key_id, code_sealed,
                   number_sealed, code_hash, code_last4, number_last4, status, claimed_at)
SELECT gen_random_uuid(), p.id, p.brand_id, p.denomination_cents, p.denomination_cents - 100, 'csv',
       '00000000-0000-4000-8000-000000000001', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()),
       uuid_send(gen_random_uuid()), sha256(uuid_send(p.id) || int4send(i)), lpad((i % 10000)::text, 4, '0'),
       lpad((i % 10000)::text, 4, '0'),
       CASE WHEN p.cards > 100 AND i % 5 = 0 THEN 'claimed' ELSE 'available' END,
       CASE WHEN p.cards > 100 AND i % 5 = 0 THEN now() END
  FROM bench_pools p CROSS JOIN LATERAL generate_series(1, p.cards) i;
INSERT INTO available_cards (pool_id, card_id) SELECT pool_id, id FROM cards WHERE status = 'available';
"""


def fill(url: str, agencies: int, clients: int, campaigns: int, pools: int, cards: int) -> None:
    from giftcards import db
    from giftcards.config import get_settings

    os.environ['DATABASE_URL'] = url
    get_settings.cache_clear()
    sql = FILL.format(
        denominations=', '.join(map(str, DENOMINATIONS)),
        denomination_count=len(DENOMINATIONS),
        brands=BRANDS,
        agencies=agencies,
        clients=clients,
        campaigns=campaigns,
        pools=pools,
        cards=cards,
    )
    import pg8000.native

    params = {**db.connection_params('owner'), 'timeout': None}  # filling takes longer than a request may
    conn = pg8000.native.Connection(**params)
    try:
        conn.run('BEGIN')
        conn.execute_simple(sql)
        conn.run('COMMIT')
        conn.run('VACUUM ANALYZE')
    finally:
        conn.close()


def counts() -> dict[str, int]:
    from giftcards import db

    row = db.in_transaction(
        lambda uow: uow.fetch_one(
            'SELECT (SELECT count(*) FROM agencies) AS agencies, (SELECT count(*) FROM clients) AS clients,'
            ' (SELECT count(*) FROM campaigns) AS campaigns, (SELECT count(*) FROM card_pools) AS pools,'
            ' (SELECT count(*) FROM available_cards) AS available'
        )
    )
    assert row is not None
    return {k: int(v) for k, v in row.items()}


def timed_run() -> tuple[float, dict[str, Any]]:
    from giftcards import monitor

    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's EMF metric lines (one per brand and denomination)
        result = monitor.run_monitor('cli')
    return time.perf_counter() - began, result.as_json()


def timed_count() -> tuple[float, int]:
    from giftcards import db

    began = time.perf_counter()
    total = db.in_transaction(lambda uow: uow.value('SELECT count(*) FROM cards'))
    return time.perf_counter() - began, int(total)


def server_facts() -> dict[str, Any]:
    from giftcards import db

    row = db.in_transaction(
        lambda uow: uow.fetch_one(
            "SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,"
            " current_setting('synchronous_commit') AS synchronous_commit,"
            " current_setting('shared_buffers') AS shared_buffers"
        )
    )
    assert row is not None
    return row


def main(argv: list[str] | None = None) -> int:
    import bench

    parser = argparse.ArgumentParser(description=(__doc__ or '').split('\n\n')[0])
    parser.add_argument('--agencies', type=int, default=1000)
    parser.add_argument('--clients-per-agency', type=int, default=10)
    parser.add_argument('--campaigns-per-client', type=int, default=5)
    parser.add_argument('--pools', type=int, default=500)
    parser.add_argument('--cards', type=int, default=1_000_000)
    args = parser.parse_args(argv)

    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')  # one INFO line per alert announced to the log
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    os.environ.pop('ALERTS_TOPIC_ARN', None)
    from giftcards import db, ledger_checks

    clients = args.agencies * args.clients_per_agency
    campaigns = clients * args.campaigns_per_client
    with bench.scratch_database('monitor') as url:
        began = time.perf_counter()
        print(
            f'filling: {args.agencies} agencies, {clients} clients, {campaigns} campaigns, {args.pools} pools,'
            f' {args.cards} cards...',
            file=sys.stderr,
        )
        fill(url, args.agencies, args.clients_per_agency, args.campaigns_per_client, args.pools, args.cards)
        print(f'filled in {time.perf_counter() - began:.0f} s: {counts()}', file=sys.stderr)
        check = db.in_transaction(ledger_checks.check)
        first_s, first = timed_run()
        second_s, second = timed_run()
        third_s, third = timed_run()
        count_s, cards = timed_count()
        facts = server_facts()
        db.reset_connections()
    table = bench.markdown_table(
        ('measurement', 'seconds', 'what it did'),
        [
            (
                'monitor run, first (opens every alert)',
                f'{first_s:.3f}',
                f'{first["alerts_generated"]} alerts opened, {len(first["campaigns_paused"])} campaigns paused,'
                f' conditions {first["breakdown"]}, ledger check {first["ledger"]}',
            ),
            (
                'monitor run, steady (every condition persists)',
                f'{second_s:.3f}',
                f'{second["alerts_generated"]} opened, {second["alerts_resolved"]} resolved,'
                f' {second["alerts_open"]} open, ledger check {second["ledger"]}',
            ),
            (
                'monitor run, ledger check caught up (no new entry)',
                f'{third_s:.3f}',
                f'{third["alerts_generated"]} opened, ledger check {third["ledger"]}',
            ),
            ('`SELECT count(*) FROM cards`', f'{count_s:.3f}', f'{cards} cards'),
        ],
    )
    slowest = max(first_s, second_s, third_s)
    monitor_found = sum(run['ledger']['violations'] for run in (first, second, third))
    verdict = 'met' if slowest < TARGET_S else 'NOT met'
    notes = (
        f'{args.agencies} agencies, {clients} clients, {campaigns} campaigns, {args.pools} pools,'
        f' {args.cards} cards.\n\nTarget (a monitor run under {TARGET_S:.0f} s): {verdict}'
        f' (slowest {slowest:.3f} s).\n\nLedger of the generated data: {check.summary()}; the monitor found'
        f' {monitor_found} ledger violations'
    )
    bench.report('monitor', 'One monitor run over a large system', facts, table, notes)
    print(notes)
    return 0 if slowest < TARGET_S and check.ok and not monitor_found else 1


if __name__ == '__main__':
    sys.exit(main())
