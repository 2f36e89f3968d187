"""Allocations per second from one hot source account, next to pgbench's `hot_debit_txn` on the same server.

Each worker is a process (as each concurrent Lambda invocation is; `BENCH_WORKER_KIND=threads` runs
threads of one interpreter instead) with its own connection calling what `POST /allocate-credit` calls,
`allocation.move_credit` (load the caller, authorize, conditional debit, credit, transfer and two entries,
the deferred balance check at commit), moving $25 from one agency to its own client for a fixed time. The
agency's account row is the hot row every transaction locks, as pgbench's `account` row 1 is.

    BENCH_DURATION=12 BENCH_ROUNDS=3 BENCH_WORKERS="1 8 32" python -m bench allocate

Target: at 8 workers, at least half of pgbench's transactions per second.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import bench
from bench.baseline import Baseline

AMOUNT_CENTS = 2_500
TARGET_RATIO_AT_8 = 0.5


@dataclass(frozen=True)
class Hierarchy:
    subject: str  # the agency's admin
    agency_account: str
    client_accounts: list[str]


@dataclass(frozen=True)
class Measurement:
    workers: int
    allocations: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.allocations / self.seconds


def prepare(clients: int) -> Hierarchy:
    """An agency funded with $1,000,000,000 (40 million allocations of $25), `clients` clients, an admin."""
    from giftcards import db, hierarchy, ledger, memberships

    agency = db.in_transaction(lambda uow: hierarchy.add_agency(uow, 'Bench agency', actor='bench'))

    def add_client(i: int) -> str:
        return db.in_transaction(
            lambda uow: hierarchy.add_client(uow, agency.id, f'Bench client {i}', actor='bench')
        ).account_id

    client_accounts = [add_client(i) for i in range(clients)]
    subject = 'bench-agency-admin'
    with db.owner_connection() as conn:
        memberships.grant(conn, subject, 'agency_admin', agency_id=agency.id)
    db.in_transaction(
        lambda uow: ledger.transfer_credit(
            uow, ledger.platform_account(uow), agency.account_id, 100_000_000_000, 'allocation', initiator='bench'
        )
    )
    return Hierarchy(subject, agency.account_id, client_accounts)


def settle() -> None:
    """As the baseline does before each run: VACUUM ANALYZE the tables the run writes, CHECKPOINT."""
    from giftcards import db

    with db.owner_connection() as conn:
        conn.run('VACUUM ANALYZE credit_accounts, credit_transfers, credit_entries')
        conn.run('CHECKPOINT')


def _process_worker(url: str, tree: Hierarchy, account: str, duration_s: float, barrier: Any, results: Any) -> None:
    """One worker process: warm up (one allocation: connected, statements prepared), wait for the others,
    allocate until the deadline, report."""
    os.environ['DATABASE_URL'] = url
    from giftcards import allocation, errors

    request = allocation.MoveRequest('allocation', tree.agency_account, account, AMOUNT_CENTS)
    allocation.move_credit(tree.subject, request)
    barrier.wait()
    deadline, done, failed = time.time() + duration_s, 0, 0
    while time.time() < deadline:
        try:
            allocation.move_credit(tree.subject, request)
            done += 1
        except errors.DomainError:
            failed += 1
    results.put((done, failed, time.time()))


def measure_processes(tree: Hierarchy, workers: int, duration_s: float) -> Measurement:
    context = multiprocessing.get_context('spawn')
    barrier, results = context.Barrier(workers + 1), context.Queue()
    url = os.environ['DATABASE_URL']
    processes = [
        context.Process(target=_process_worker, args=(url, tree, tree.client_accounts[i], duration_s, barrier, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    start = time.time()
    outcomes = [results.get(timeout=duration_s + 60) for _ in processes]
    for process in processes:
        process.join()
    return Measurement(
        workers, sum(o[0] for o in outcomes), sum(o[1] for o in outcomes), max(o[2] for o in outcomes) - start
    )


def measure(tree: Hierarchy, workers: int, duration_s: float) -> Measurement:
    if os.environ.get('BENCH_WORKER_KIND', 'processes') == 'processes':
        return measure_processes(tree, workers, duration_s)
    from giftcards import allocation, db, errors

    barrier = threading.Barrier(workers + 1)
    counts, failures, finished = [0] * workers, [0] * workers, [0.0] * workers
    deadline = [0.0]

    def work(i: int) -> None:
        request = allocation.MoveRequest('allocation', tree.agency_account, tree.client_accounts[i], AMOUNT_CENTS)
        allocation.move_credit(tree.subject, request)  # warm before the clock starts: connected, statements prepared
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            try:
                allocation.move_credit(tree.subject, request)
                counts[i] += 1
            except errors.DomainError:
                failures[i] += 1
        finished[i] = time.perf_counter()
        db.reset_connections()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + duration_s
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return Measurement(workers, sum(counts), sum(failures), max(finished) - start)


def compare(
    tree: Hierarchy, baseline: Baseline, workers: int, duration_s: int, rounds: int
) -> tuple[float, float, int]:
    """Ours and pgbench in alternating rounds, so that both meet the same mix of other load on a shared
    machine; answers (our allocations/s, pgbench tps, our failed allocations) over all rounds."""
    slice_s = max(1, round(duration_s / rounds))
    allocations, seconds, failed, pgbench_tps = 0, 0.0, 0, []
    settle()
    baseline.settle()
    for _ in range(rounds):
        ours = measure(tree, workers, slice_s)
        allocations, seconds, failed = allocations + ours.allocations, seconds + ours.seconds, failed + ours.failed
        pgbench_tps.append(baseline.run('hot_debit_txn', workers, slice_s, settle=False).tps)
    return allocations / seconds, sum(pgbench_tps) / len(pgbench_tps), failed


def main(argv: list[str] | None = None) -> int:
    """Knobs: BENCH_DURATION (seconds per side and worker count, 12), BENCH_ROUNDS (alternations, 3),
    BENCH_WORKERS ("1 8 32"). Exit 1 if the ledger check fails after the run."""
    from giftcards import db, ledger_checks

    workers = [int(w) for w in os.environ.get('BENCH_WORKERS', '1 8 32').split()]
    duration, rounds = bench.duration_s(12), int(os.environ.get('BENCH_ROUNDS', '3'))
    rows, verdict = [], ''
    with bench.scratch_database('allocate') as url:
        tree = prepare(max(workers))
        with Baseline(url, shapes=['hot_debit_txn']) as baseline:
            for count in workers:
                ours, theirs, failed = compare(tree, baseline, count, duration, rounds)
                ratio = ours / theirs
                rows.append((count, f'{ours:.0f}', f'{theirs:.0f}', f'{ratio:.0%}', failed))
                if count == 8:
                    met = 'met' if ratio >= TARGET_RATIO_AT_8 else 'NOT met'
                    verdict = f'Target (ours >= {TARGET_RATIO_AT_8:.0%} of pgbench at 8 workers): {met} ({ratio:.0%}).'
            facts = baseline.server_facts()
        check = db.in_transaction(ledger_checks.check)
    table = bench.markdown_table(
        ('workers', 'ours (allocations/s)', 'pgbench hot_debit_txn (tps)', 'ratio', 'failed'), rows
    )
    notes = f'{verdict}\n\nLedger after the run: {check.summary()}'
    kind = os.environ.get('BENCH_WORKER_KIND', 'processes')
    title = f'Allocations from one hot account ({kind}): {duration} s per side in {rounds} alternating rounds'
    bench.report('allocate', title, facts, table, notes)
    print(notes)
    return 0 if check.ok else 1


if __name__ == '__main__':
    raise SystemExit(main())
