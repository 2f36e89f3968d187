"""Exactly one monitor run at a time: overlapping or duplicated deliveries produce one set of alerts and one
announcement per change, and a run that finds another in progress says it skipped. The ledger check's watermark
does not pass entries of a transaction still open, whose ids lie below entries committed since."""

from __future__ import annotations

import threading

import pytest
from giftcards import db, monitor, recovery

from tests import factories
from tests.concurrency_support import race
from tests.monitor_support import (
    Topic,
    alerts_of,
    entries_of,
    ledger_watermark,
    open_alert,
    own_ledger,
    run,
    stocked_pool,
    topic,
)

__all__ = ['own_ledger', 'topic']

pytestmark = pytest.mark.slow


def test_concurrent_runs_produce_one_set_of_alerts(owner, topic: Topic, monkeypatch):
    # Each answer lists its first LISTED_ALERTS changes: with the alerts of earlier tests in the database, this
    # test's own could fall outside the list.
    monkeypatch.setattr(monitor, 'LISTED_ALERTS', 100_000)
    admin = factories.platform_admin(owner)
    pools = [stocked_pool(admin, cards) for cards in (0, 5, 30)]
    agency = factories.agency()

    results = race([lambda: monitor.run_monitor('schedule') for _ in range(4)])

    answers = [r.as_json() for r in results if isinstance(r, monitor.MonitorResult)]
    assert len(answers) == 4, results
    assert all(a['success'] for a in answers)
    ran = [a for a in answers if not a.get('skipped')]
    assert len(ran) >= 1
    for a in answers:
        if a.get('skipped'):
            assert 'another monitor run' in a['reason']
    for entity_id, type in [(p['id'], 'pool_low_stock') for p in pools] + [(agency['id'], 'agency_low_balance')]:
        [alert] = alerts_of(type, entity_id)
        assert alert['occurrences'] == len(ran)
        assert len(topic.changes(entity_id)) == 1
    new_in = [alert['entity_id'] for answer in ran for alert in answer['alerts'] if alert['change'] == 'new']
    for pool in pools:
        assert new_in.count(pool['id']) == 1


def test_a_run_while_another_is_in_progress_is_skipped_and_says_so(owner, monkeypatch):
    admin = factories.platform_admin(owner)
    pool = stocked_pool(admin, 3)
    in_recovery, release = threading.Event(), threading.Event()
    real = recovery.recover_pending

    def slow_recovery(*args, **kwargs):
        in_recovery.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(recovery, 'recover_pending', slow_recovery)
    first: list[monitor.MonitorResult] = []

    def first_run() -> None:
        try:
            first.append(monitor.run_monitor('schedule'))
        finally:
            db.reset_connections()

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert in_recovery.wait(30)
        skipped = monitor.run_monitor('http')
    finally:
        release.set()
        thread.join(60)

    assert skipped.as_json() == {
        'success': True,
        'skipped': True,
        'reason': skipped.reason,
        'duration_ms': skipped.duration_ms,
        'alerts_generated': 0,
        'alerts_escalated': 0,
        'alerts_resolved': 0,
        'alerts_open': 0,
        'breakdown': dict.fromkeys(monitor.CATEGORIES, 0),
        'alerts': [],
        'campaigns_paused': [],
        'notifications_sent': 0,
        'recovery': {},
        'ledger': {},
        'deliveries_swept': 0,
    }
    assert 'another monitor run (schedule' in skipped.reason
    assert first[0].success and not first[0].skipped
    assert open_alert('pool_low_stock', pool['id'])['occurrences'] == 1
    assert not run().get('skipped')  # the lease was given back


def test_a_lease_left_by_a_run_that_died_is_taken_over_once_it_expires():
    db.in_transaction(
        lambda uow: uow.execute(
            "UPDATE monitor_state SET run_token = gen_random_uuid(), run_trigger = 'schedule',"
            " run_started_at = now() - interval '10 minutes', lease_until = now() + interval '1 minute'"
        )
    )
    try:
        assert monitor.run_monitor('cli').skipped
        db.in_transaction(lambda uow: uow.execute("UPDATE monitor_state SET lease_until = now() - interval '1 second'"))
        answer = monitor.run_monitor('cli')
        assert answer.success and not answer.skipped
    finally:
        db.in_transaction(
            lambda uow: uow.execute('UPDATE monitor_state SET run_token = NULL, run_trigger = NULL, lease_until = NULL')
        )


def test_a_run_whose_lease_ran_out_writes_no_alerts(owner, monkeypatch):
    admin = factories.platform_admin(owner)
    pool = stocked_pool(admin, 2)
    real = recovery.recover_pending

    def lose_the_lease(*args, **kwargs):
        db.in_transaction(lambda uow: uow.execute("UPDATE monitor_state SET lease_until = now() - interval '1 second'"))
        db.in_transaction(lambda uow: uow.execute('UPDATE monitor_state SET run_token = gen_random_uuid()'))
        return real(*args, **kwargs)

    monkeypatch.setattr(recovery, 'recover_pending', lose_the_lease)
    try:
        answer = monitor.run_monitor('cli')
    finally:
        db.in_transaction(
            lambda uow: uow.execute('UPDATE monitor_state SET run_token = NULL, run_trigger = NULL, lease_until = NULL')
        )
    assert answer.skipped and 'expired' in answer.reason
    assert open_alert('pool_low_stock', pool['id']) is None


def test_entries_committed_after_newer_ones_are_checked_once_their_transaction_ends(own_ledger):
    payer, late_payee, other = (factories.agency()['account_id'] for _ in range(3))
    factories.fund(1_000, payer)
    run()
    run()
    # A transaction draws its entries' ids, and breaks the chain of one account's entries (as the owner, triggers
    # off; the account's balance still matches its newest entry), then stays open.
    late = db.connect('owner')
    transfer = (
        "SELECT debit_entry_id FROM ledger_transfer(gen_random_uuid(), 'allocation', CAST(:f AS uuid),"
        " CAST(:t AS uuid), :c, 'test', NULL, NULL)"
    )
    try:
        late.run('BEGIN')
        late.run('SET LOCAL session_replication_role = replica')
        late.run(transfer, f=payer, t=late_payee, c=500)
        late.run(
            'UPDATE credit_entries SET balance_after_cents = 501 WHERE account_id = CAST(:a AS uuid)', a=late_payee
        )
        late.run(transfer, f=late_payee, t=payer, c=100)
        late_ids = [
            row[0]
            for row in late.run(
                'SELECT id FROM credit_entries WHERE account_id = CAST(:a AS uuid) ORDER BY id', a=late_payee
            )
        ]
        # Meanwhile another transfer commits, with ids above the open transaction's, and the monitor runs.
        factories.fund(700, other)
        assert min(e['id'] for e in entries_of(other)) > max(late_ids)
        during = [run(), run()]
        assert all(answer['ledger']['violations'] == 0 for answer in during)  # not visible yet
        assert during[0]['ledger']['entries_through'] > max(late_ids)
        assert ledger_watermark() < min(late_ids)
        late.run('COMMIT')
    finally:
        late.close()

    after = run()

    alert = open_alert('ledger_violation', late_payee, 'account')
    assert alert['severity'] == 'critical'
    assert [(p['problem'], p['entry_id']) for p in alert['details']['problems']] == [
        ('entry_chain_broken', late_ids[0]),
        ('entry_chain_broken', late_ids[1]),
    ]
    assert after['ledger']['entries_after'] < min(late_ids)
    assert ledger_watermark() > max(late_ids)
