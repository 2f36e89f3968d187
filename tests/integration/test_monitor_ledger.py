"""The monitor checks the ledger on every run: a balance changed without entries, an entry that breaks its account's
chain, a transfer missing an entry or balances that do not sum to zero raise a critical `ledger_violation` alert on the
next run, kept open on every run until the ledger is repaired, then resolved. Each run reads every account's newest
entry and the entries written since the last run, never the older history.

Each test breaks the ledger in a database of its own (`own_ledger`), as the owner with triggers off: the only way past
the database's walls."""

from __future__ import annotations

from typing import Any

from giftcards import db, ledger_checks

from tests import factories
from tests.monitor_support import (
    Topic,
    alerts_of,
    entries_of,
    ledger_watermark,
    open_alert,
    own_ledger,
    run,
    topic,
    without_triggers,
)

__all__ = ['own_ledger', 'topic']


def newest_entry() -> int:
    return int(db.in_transaction(lambda uow: uow.value('SELECT max(id) FROM credit_entries')))


def ledger_alerts() -> list[dict[str, Any]]:
    return db.in_transaction(
        lambda uow: uow.fetch("SELECT entity_type, status FROM system_alerts WHERE type = 'ledger_violation'")
    )


def problems(alert: dict[str, Any]) -> list[tuple[str, int | None, int, int]]:
    return [(p['problem'], p['entry_id'], p['expected'], p['found']) for p in alert['details']['problems']]


def test_a_sound_ledger_raises_nothing_and_the_watermark_reaches_its_newest_entry(own_ledger: Any) -> None:
    agency = factories.agency()
    client = factories.client(agency['id'])
    factories.fund(50_000, agency['account_id'], client['account_id'])
    factories.fund(20_000, agency['account_id'])

    first = run()
    second = run()

    assert ledger_alerts() == []
    assert first['breakdown']['ledger'] == 0
    assert first['ledger'] == {
        'entries_after': 0,
        'entries_through': newest_entry(),
        'watermark': 0,  # not yet: a transaction still open at this run could commit an entry below the newest
        'behind': 0,
        'violations': 0,
    }
    assert second['ledger']['violations'] == 0
    assert second['ledger']['watermark'] == newest_entry()


def test_a_balance_changed_without_entries_raises_a_critical_alert_naming_the_account(
    own_ledger: Any, topic: Topic
) -> None:
    agency = factories.agency()
    factories.fund(10_000, agency['account_id'])
    [entry] = entries_of(agency['account_id'])
    run()
    run()
    raise_balance = 'UPDATE credit_accounts SET balance_cents = balance_cents + :c WHERE id = CAST(:a AS uuid)'
    without_triggers(own_ledger, (raise_balance, {'c': 100_000_000, 'a': agency['account_id']}))

    answer = run()

    alert = open_alert('ledger_violation', agency['account_id'], 'account')
    assert alert['severity'] == 'critical'
    assert alert['message'] == (
        f'Ledger violation on account {agency["account_id"]} (agency {agency["id"]}): its balance is'
        f' $1,000,100.00 but its newest entry ({entry["id"]}) leaves $100.00'
    )
    assert problems(alert) == [('balance_differs', entry['id'], 10_000, 100_010_000)]
    total = open_alert('ledger_violation', None, 'ledger')
    assert total['severity'] == 'critical'
    assert total['message'] == 'Ledger violation: the balances of all accounts sum to $1,000,000.00, not $0.00'
    assert answer['breakdown']['ledger'] == 2 and answer['ledger']['violations'] == 2
    assert topic.changes(agency['account_id']) == [('new', 'critical')]

    run()
    assert open_alert('ledger_violation', agency['account_id'], 'account')['occurrences'] == 2

    without_triggers(own_ledger, (raise_balance, {'c': -100_000_000, 'a': agency['account_id']}))
    repaired = run()

    assert open_alert('ledger_violation', agency['account_id'], 'account') is None
    assert open_alert('ledger_violation', None, 'ledger') is None
    assert repaired['ledger']['violations'] == 0
    assert topic.changes(agency['account_id']) == [('new', 'critical'), ('resolved', 'critical')]


def test_an_entry_that_breaks_its_accounts_chain_is_alerted_on_every_run_until_repaired(own_ledger: Any) -> None:
    agency = factories.agency()
    client = factories.client(agency['id'])
    factories.fund(10_000, agency['account_id'])
    factories.fund(3_000, agency['account_id'], client['account_id'])
    first, second, last = entries_of(agency['account_id'])
    assert [e['balance_after_cents'] for e in (first, second, last)] == [10_000, 13_000, 10_000]
    set_after = 'UPDATE credit_entries SET balance_after_cents = :b WHERE id = :id'
    # The balance still matches the newest entry, and the balances still sum to zero: only the chain shows it.
    without_triggers(own_ledger, (set_after, {'b': 10_001, 'id': first['id']}))

    for n in (1, 2, 3):
        run()
        alert = open_alert('ledger_violation', agency['account_id'], 'account')
        assert alert['occurrences'] == n
    assert ledger_watermark() >= last['id']  # passed: the broken entries are checked again on every run all the same

    assert alert['severity'] == 'critical'
    assert problems(alert) == [
        ('entry_chain_broken', first['id'], 10_000, 10_001),
        ('entry_chain_broken', second['id'], 13_001, 13_000),
    ]
    assert (
        f'entry {first["id"]} leaves $100.01 where the entry before it and its amount make $100.00'
        in (alert['message'])
    )
    assert [a['entity_type'] for a in ledger_alerts()] == ['account']

    without_triggers(own_ledger, (set_after, {'b': 10_000, 'id': first['id']}))
    run()

    assert open_alert('ledger_violation', agency['account_id'], 'account') is None
    assert [a['status'] for a in alerts_of('ledger_violation', agency['account_id'], 'account')] == ['resolved']


def test_a_transfer_missing_an_entry_is_alerted_until_the_entry_is_back(own_ledger: Any) -> None:
    agency = factories.agency()
    factories.fund(2_500, agency['account_id'])
    [credit] = entries_of(agency['account_id'])
    set_balance = 'UPDATE credit_accounts SET balance_cents = :c WHERE id = CAST(:a AS uuid)'
    without_triggers(
        own_ledger,
        ('DELETE FROM credit_entries WHERE id = :id', {'id': credit['id']}),
        (set_balance, {'c': 0, 'a': agency['account_id']}),
    )

    run()

    alert = open_alert('ledger_violation', credit['transfer_id'], 'transfer')
    assert alert['severity'] == 'critical'
    assert alert['message'] == (
        f'Ledger violation: transfer {credit["transfer_id"]} has 1 of its 2 entries'
        ' (its source debited and its destination credited by its amount)'
    )
    assert open_alert('ledger_violation', None, 'ledger')['details']['problems'][0]['found'] == -2_500
    assert open_alert('ledger_violation', agency['account_id'], 'account') is None  # no entries, and a balance of 0

    without_triggers(
        own_ledger,
        (
            'INSERT INTO credit_entries (id, transfer_id, account_id, amount_cents, balance_after_cents)'
            ' OVERRIDING SYSTEM VALUE VALUES (:id, CAST(:t AS uuid), CAST(:a AS uuid), 2500, 2500)',
            {'id': credit['id'], 't': credit['transfer_id'], 'a': agency['account_id']},
        ),
        (set_balance, {'c': 2_500, 'a': agency['account_id']}),
    )
    run()

    assert [a['status'] for a in ledger_alerts()] == ['resolved', 'resolved']


def test_a_long_ledger_is_caught_up_a_batch_per_run(own_ledger: Any) -> None:
    agency = factories.agency()
    for _ in range(30):
        factories.fund(100, agency['account_id'])
    newest = newest_entry()

    def check(uow: db.UnitOfWork) -> ledger_checks.RecentCheck:
        return ledger_checks.check_recent(uow, batch=10)

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
        uow.fetch(ledger_checks._RECENT_PROBLEMS, after=after, through=through)
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
