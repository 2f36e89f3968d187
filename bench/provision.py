"""CSV-path provisions per second and latency on one hot shared client budget, next to pgbench's `provision_like`.

Each worker is a process (as a Lambda runs one request per process) with its own connection, warmed by one
provision before the clock starts, calling what
`POST /provision-gift-card` calls, `provisioning.provision_gift_card`: load the caller, authorize, read the campaign,
price and code, claim the cheapest pool's card (SKIP LOCKED) and read it, charge the client's account through the
ledger, write the redemption and its reveal, commit. Every call has a new redemption code; every charge debits the
same client account (shared budget), the hot row every transaction locks, as pgbench's `account` row 1 is.

    BENCH_DURATION=12 BENCH_ROUNDS=3 BENCH_WORKERS="1 8 32" python -m bench provision

Target: at 8 workers, at least half of pgbench's transactions per second. After the run: zero overdraft (the
ledger recomputes clean, the client's balance is its funding minus exactly what the redemptions charged, one
claimed card per redemption); a violation exits 1.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bench
from bench.baseline import Baseline

if TYPE_CHECKING:
    from giftcards.provisioning import ProvisionRequest

PRICE_CENTS = 2_500
FUNDS_CENTS = 10**13  # the shared budget never runs out during a run
TARGET_RATIO_AT_8 = 0.5


@dataclass(frozen=True)
class Fixture:
    campaign_id: str
    brand_id: str
    client_account: str
    subject: str  # the client's integration


@dataclass(frozen=True)
class Measurement:
    latencies: list[float]
    failed: int
    seconds: float


def prepare(cards: int) -> Fixture:
    """Agency -> client (funded) -> shared campaign, one brand, one pool of `cards` cards, an integration."""
    from giftcards import card_import, db, hierarchy, ledger, memberships, pools

    def branch(uow: db.UnitOfWork) -> tuple[hierarchy.Client, hierarchy.Campaign, hierarchy.Brand]:
        agency = hierarchy.add_agency(uow, 'Bench agency', actor='bench')
        client = hierarchy.add_client(uow, agency.id, 'Bench client', actor='bench')
        campaign = hierarchy.add_campaign(uow, client.id, 'Bench campaign', 'shared', actor='bench')
        brand = hierarchy.add_brand(uow, 'Bench brand', [PRICE_CENTS], [], actor='bench')
        source = ledger.platform_account(uow)
        for target in (agency.account_id, client.account_id):
            ledger.transfer_credit(uow, source, target, FUNDS_CENTS, 'allocation', initiator='bench')
            source = target
        return client, campaign, brand

    client, campaign, brand = db.in_transaction(branch)
    admin, subject = 'bench-platform-admin', 'bench-integration'
    with db.owner_connection() as conn:
        memberships.grant(conn, admin, 'platform_admin')
        memberships.grant(conn, subject, 'client_integration', client_id=client.id)
    body = pools.PoolRequest.model_validate({'brand_id': brand.id, 'denomination': 25, 'cost_per_card': 23.5})
    pool = db.in_transaction(lambda uow: pools.create_pool(uow, admin, body))
    rows = ''.join(f'BENCH-{uuid.uuid4().hex},{n:016d}\n' for n in range(cards))
    card_import.import_cards(admin, pool.id, io.BytesIO(f'card_code,card_number\n{rows}'.encode()))
    return Fixture(campaign.id, brand.id, client.account_id, subject)


def settle() -> None:
    """As the baseline does before its runs: VACUUM ANALYZE what the run writes, CHECKPOINT."""
    from giftcards import db

    with db.owner_connection() as conn:
        conn.run('VACUUM ANALYZE credit_accounts, credit_transfers, credit_entries, cards, available_cards')
        conn.run('VACUUM ANALYZE redemptions, card_reveals')
        conn.run('CHECKPOINT')


def new_request(fixture: Fixture) -> ProvisionRequest:
    """A provision of the fixture's card with a new redemption code."""
    from giftcards import provisioning

    return provisioning.ProvisionRequest(
        campaign_id=fixture.campaign_id,
        brand_id=fixture.brand_id,
        denomination_cents=PRICE_CENTS,
        redemption_code=f'BENCH-{uuid.uuid4().hex}',
        source_ip='198.51.100.9',
        user_agent='bench',
    )


def _worker(fixture: Fixture, start: Any, stop_at: Any, results: Any) -> None:
    from giftcards import errors, provisioning

    latencies: list[float] = []
    failed = 0
    # Warm before the clock starts, as a Lambda that has served a request is: connected, its statements prepared,
    # the card data key unwrapped. Measured, a cold first provision took about 0.5 s at 32 workers, and these
    # first calls alone made the p99.
    provisioning.provision_gift_card(new_request(fixture), subject=fixture.subject)
    start.wait()
    while time.perf_counter() < stop_at.value:
        began = time.perf_counter()
        try:
            provisioning.provision_gift_card(new_request(fixture), subject=fixture.subject)
        except errors.DomainError:
            failed += 1
            continue
        latencies.append(time.perf_counter() - began)
    results.put((latencies, failed, time.perf_counter()))


def measure(fixture: Fixture, workers: int, duration_s: float) -> Measurement:
    from giftcards import db

    db.reset_connections()  # a forked worker must not share the parent's socket
    context = mp.get_context('fork')
    start, stop_at, results = context.Barrier(workers + 1), context.Value('d', 0.0), context.Queue()
    processes = [context.Process(target=_worker, args=(fixture, start, stop_at, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    stop_at.value = time.perf_counter() + 3600  # until the clock starts below
    start.wait()
    began = time.perf_counter()
    stop_at.value = began + duration_s
    outcomes = [results.get(timeout=duration_s + 120) for _ in processes]
    for process in processes:
        process.join()
    return Measurement(
        latencies=[lat for lats, _, _ in outcomes for lat in lats],
        failed=sum(f for _, f, _ in outcomes),
        seconds=max(end for _, _, end in outcomes) - began,
    )


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float('nan')


def compare(
    fixture: Fixture, baseline: Baseline, workers: int, duration_s: int, rounds: int
) -> tuple[Measurement, float]:
    """Ours and pgbench in alternating rounds, so that both meet the same mix of other load on a shared machine;
    answers all our rounds together and pgbench's mean tps."""
    slice_s = max(1, round(duration_s / rounds))
    latencies: list[float] = []
    failed, seconds, pgbench_tps = 0, 0.0, []
    settle()
    baseline.settle()
    for _ in range(rounds):
        ours = measure(fixture, workers, slice_s)
        latencies += ours.latencies
        failed, seconds = failed + ours.failed, seconds + ours.seconds
        pgbench_tps.append(baseline.run('provision_like', workers, slice_s, settle=False).tps)
    return Measurement(latencies, failed, seconds), sum(pgbench_tps) / len(pgbench_tps)


def overdraft_problems(fixture: Fixture) -> list[str]:
    """Whatever would mean money or cards went wrong; empty when all is well."""
    from giftcards import db, ledger_checks

    def work(uow: db.UnitOfWork) -> list[str]:
        problems = []
        report = ledger_checks.check(uow)
        if not report.ok:
            problems.append(report.summary())
        row = uow.fetch_one(
            "SELECT count(*) AS redemptions, count(*) FILTER (WHERE status = 'fulfilled') AS fulfilled,"
            ' count(DISTINCT card_id) AS cards, coalesce(sum(amount_charged_cents), 0) AS charged'
            ' FROM redemptions WHERE campaign_id = CAST(:c AS uuid)',
            c=fixture.campaign_id,
        )
        assert row is not None
        balance = uow.value(
            'SELECT balance_cents FROM credit_accounts WHERE id = CAST(:a AS uuid)', a=fixture.client_account
        )
        claimed = uow.value("SELECT count(*) FROM cards WHERE status = 'claimed'")
        if not row['redemptions'] == row['fulfilled'] == row['cards'] == claimed:
            problems.append(f'redemptions, fulfilled, distinct cards, claimed cards differ: {row}, {claimed}')
        if balance != FUNDS_CENTS - row['charged']:
            problems.append(f'client balance {balance} is not its funding {FUNDS_CENTS} - charged {row["charged"]}')
        return problems

    return db.in_transaction(work)


def main(argv: list[str] | None = None) -> int:
    """Knobs: BENCH_DURATION (seconds per side and worker count, 12), BENCH_ROUNDS (alternations, 3),
    BENCH_WORKERS ("1 8 32"), BENCH_CARDS (pool size, enough for every run: 60000)."""
    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')  # an INFO line per provision would be measured too
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    workers = [int(w) for w in os.environ.get('BENCH_WORKERS', '1 8 32').split()]
    duration, rounds = bench.duration_s(12), int(os.environ.get('BENCH_ROUNDS', '3'))
    rows, verdict = [], ''
    with bench.scratch_database('provision') as url:
        fixture = prepare(int(os.environ.get('BENCH_CARDS', '60000')))
        with Baseline(url, shapes=['provision_like']) as baseline:
            for count in workers:
                ours, theirs = compare(fixture, baseline, count, duration, rounds)
                per_second = len(ours.latencies) / ours.seconds
                ratio = per_second / theirs
                rows.append((
                    count, f'{per_second:.0f}', f'{percentile_ms(ours.latencies, 0.5):.1f}',
                    f'{percentile_ms(ours.latencies, 0.99):.1f}', f'{theirs:.0f}', f'{ratio:.0%}', ours.failed,
                ))  # fmt: skip
                if count == 8:
                    met = 'met' if ratio >= TARGET_RATIO_AT_8 else 'NOT met'
                    verdict = f'Target (ours >= {TARGET_RATIO_AT_8:.0%} of pgbench at 8 workers): {met} ({ratio:.0%}).'
            facts = baseline.server_facts()
        problems = overdraft_problems(fixture)
    table = bench.markdown_table(
        ('workers', 'ours (provisions/s)', 'p50 ms', 'p99 ms', 'pgbench provision_like (tps)', 'ratio', 'failed'),
        rows,
    )
    overdraft = 'none: ledger ok, balance = funding - charges, one claimed card per redemption'
    notes = f'{verdict}\n\nOverdraft check after the run: {overdraft if not problems else "; ".join(problems)}'
    title = f'CSV-path provisions on one hot shared budget: {duration} s per side in {rounds} alternating rounds'
    bench.report('provision', title, facts, table, notes)
    print(notes)
    return 1 if problems else 0


if __name__ == '__main__':
    raise SystemExit(main())
