"""Where a provision's time in the database goes, function by function and table by table.

    BENCH_PROVISIONS=2000 python -m bench.db_functions

A provision is one statement (`provision_card`), and what it runs happens in PL/pgSQL functions and triggers, which
PostgreSQL times itself with `track_functions = all` (`pg_stat_user_functions`): calls, total and own time. The
embedded PostgreSQL ships neither pg_stat_statements nor auto_explain, so this is the breakdown available
everywhere. One process calls `provisioning.provision_gift_card` in a loop, as `bench.provision` does with one
worker (warm first: connected, statements prepared and the functions' plans cached, the data key unwrapped). The
counters are read after the warm-up (a backend hands its counters over when a transaction ends a second or more
after its last hand-over) and again after the run, once the process's connections are closed (a backend that ends
hands over all it holds); the difference, divided by the provisions made, is the table. One client, so no
time is spent waiting on a lock: the times are the backend's work. The per-table counters (rows inserted, updated
and deleted, index and sequential scans) say what each provision touches; foreign-key and policy checks count as
scans.

Not a speed target, a breakdown: compare it with the database's CPU per provision in `bench.provision` and
`bench.http`. Needs the right to `ALTER DATABASE ... SET track_functions` (the embedded server's owner has it).
"""

from __future__ import annotations

import os
import time
from typing import Any

import bench
from bench import provision


def _counters() -> tuple[list[list[Any]], list[list[Any]]]:
    from giftcards import db

    with db.owner_connection() as conn:
        functions = conn.run('SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions')
        tables = conn.run(
            'SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, coalesce(idx_scan, 0), coalesce(seq_scan, 0)'
            ' FROM pg_stat_user_tables ORDER BY relname'
        )
    return functions, tables


def _difference(
    before: tuple[list[list[Any]], list[list[Any]]], after: tuple[list[list[Any]], list[list[Any]]]
) -> tuple[list[list[Any]], list[list[Any]]]:
    """The counters of `after` less those of `before`, by name; rows that did not move are left out."""
    result = []
    for earlier, later in zip(before, after, strict=True):
        known = {row[0]: row[1:] for row in earlier}
        moved = []
        for name, *values in later:
            was = known.get(name, [0] * len(values))
            delta = [v - w for v, w in zip(values, was, strict=True)]
            if any(delta):
                moved.append([name, *delta])
        result.append(moved)
    return result[0], result[1]


def main(argv: list[str] | None = None) -> int:
    """Knobs: BENCH_PROVISIONS (2000), BENCH_CARDS (the pool: the provisions and the warm-up, 5000 at least)."""
    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')  # a log line per provision is not the database's
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    count = int(os.environ.get('BENCH_PROVISIONS', '2000'))
    warm = 20
    with bench.scratch_database('db_functions'):
        from giftcards import db, provisioning

        fixture = provision.prepare(max(int(os.environ.get('BENCH_CARDS', '5000')), count + warm))
        provision.settle()
        with db.owner_connection() as conn:
            (name,) = conn.run('SELECT current_database()')[0]
            conn.run(f'ALTER DATABASE "{name}" SET track_functions = \'all\'')
        db.reset_connections()  # the setting applies to connections made from now on

        def once() -> None:
            provisioning.provision_gift_card(provision.new_request(fixture), subject=fixture.subject)

        for _ in range(warm):
            once()
        time.sleep(1.1)
        db.call('SELECT 1')  # ends a transaction a second after the warm-up's last: its counters are handed over
        time.sleep(0.2)
        before = _counters()
        began = time.perf_counter()
        for _ in range(count):
            once()
        wall_ms = (time.perf_counter() - began) * 1000 / count
        db.reset_connections()
        time.sleep(0.5)
        functions, tables = _difference(before, _counters())
        problems = provision.overdraft_problems(fixture)

    made = next((calls for name, calls, _, _ in functions if name == 'provision_card'), 0)
    if made != count:
        print(f'provision_card was counted {made} times for {count} provisions')
        return 1
    per = float(count)
    functions.sort(key=lambda row: -row[3])
    rows: list[tuple[Any, ...]] = [
        (f'`{name}`', f'{calls / per:.2f}', f'{total / per:.3f}', f'{own / per:.3f}')
        for name, calls, total, own in functions
    ]
    table = bench.markdown_table(('function', 'calls per provision', 'total ms', 'own ms'), rows)
    table += '\n\n' + bench.markdown_table(
        ('table', 'rows inserted', 'rows updated', 'rows deleted', 'index scans', 'sequential scans'),
        [(f'`{name}`', *(f'{n / per:.2f}' for n in counts)) for name, *counts in tables],
    )
    notes = (
        f'{count} provisions from one process: {wall_ms:.2f} ms each as the caller saw it (the round trip and its '
        'Python included). Per provision; "total" includes the functions a function calls, "own" does not.\n\n'
        f'Overdraft check after the run: {"; ".join(problems) if problems else "none"}'
    )
    bench.report('db_functions', 'A provision in the database, function by function', None, table, notes)
    print(notes)
    return 1 if problems else 0


if __name__ == '__main__':
    raise SystemExit(main())
