"""The monitor's ledger check (`ledger.check_recent`): each run reads every account's newest entry and the entries
written since the last run, never the older history, and a long ledger is caught up a batch per run. Each test has a
database of its own (`own_ledger`)."""

from __future__ import annotations

from typing import Any

from giftcards import db, ledger

from tests import factories
from tests.monitor_support import ledger_watermark, own_ledger

__all__ = ['own_ledger']


def newest_entry() -> int:
    return int(db.in_transaction(lambda uow: uow.value('SELECT max(id) FROM credit_entries')))


def test_a_long_ledger_is_caught_up_a_batch_per_run(own_ledger: Any) -> None:
    agency = factories.agency()
    for _ in range(30):
        factories.fund(100, agency['account_id'])
    newest = newest_entry()

    def check(uow: db.UnitOfWork) -> ledger.RecentCheck:
        return ledger.check_recent(uow, batch=10)

    checks = [db.in_transaction(check) for _ in range(8)]

    assert [(c.after, c.through, c.checked_through) for c in checks[:3]] == [(0, 10, 0), (0, 20, 10), (10, 30, 20)]
    assert all(c.through - c.after <= 20 and c.ok for c in checks)
    assert checks[-1].checked_through == newest == ledger_watermark()
    assert checks[0].behind == newest - 10


_READS = """
SELECT coalesce(sum(seq_scan), 0) AS scans, coalesce(sum(seq_tup_read + idx_tup_fetch), 0) AS rows
  FROM pg_stat_xact_user_tables WHERE relname IN ('credit_entries', 'credit_transfers')
"""


def ledger_reads(after: int, through: int) -> tuple[int, int]:
    """(sequential scans, rows read) of credit_entries and credit_transfers by the check over the entries in
    (after, through], from the statistics of the transaction it runs in."""

    def work(uow: db.UnitOfWork) -> tuple[int, int]:
        before = uow.fetch_one(_READS)
        uow.fetch(ledger._RECENT_PROBLEMS, after=after, through=through)
        reads = uow.fetch_one(_READS)
        assert before is not None and reads is not None
        return int(reads['scans'] - before['scans']), int(reads['rows'] - before['rows'])

    return db.in_transaction(work)


def test_the_check_reads_no_more_rows_when_the_history_is_ten_times_longer(own_ledger: Any) -> None:
    old, older, new, newer = (factories.agency()['account_id'] for _ in range(4))
    for account in (old, new, newer):  # every account the new transfers write to has entries before them
        factories.fund(1_000, account)
    back_and_forth = (
        "SELECT count(*) FROM generate_series(1, :n) g, ledger_transfer(gen_random_uuid(), 'allocation',"
        ' CAST(CASE WHEN g % 2 = 1 THEN :a ELSE :b END AS uuid), CAST(CASE WHEN g % 2 = 1 THEN :b ELSE :a END AS uuid),'
        " 100, 'test', NULL, NULL)"
    )

    def reads_after_history(transfers: int) -> tuple[int, int]:
        own_ledger.run(back_and_forth, n=transfers, a=old, b=older)
        before = newest_entry()
        own_ledger.run(back_and_forth, n=3, a=new, b=newer)
        return ledger_reads(before, newest_entry())

    short = reads_after_history(300)
    long = reads_after_history(3_000)

    assert long == short
    scans, rows = short
    assert scans == 0
    assert rows < 60  # the 6 new entries, their transfers and predecessors, the newest entry of each account
