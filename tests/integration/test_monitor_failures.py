"""Provisioning failures: failed redemptions in the last hour are critical, and redemptions stuck pending with a
vendor are handed to the recovery routine and alerted if they stay stuck."""

from __future__ import annotations

import pytest
from giftcards import db, errors, monitor

from tests import provisioning_support as ps
from tests.monitor_support import Topic, alerts_of, open_alert, run, topic

__all__ = ['topic']


def age(redemption_id: str, column: str, minutes: int) -> None:
    """Time passing for a redemption: one of its times moved into the past. Only the owner with triggers off may
    (the application role may not touch created_at, nor the state machine a failed redemption's failed_at)."""
    with db.owner_connection() as owner:
        owner.run('BEGIN')
        owner.run('SET LOCAL session_replication_role = replica')
        owner.run(
            f'UPDATE redemptions SET {column} = now() - make_interval(mins => :m) WHERE id = CAST(:id AS uuid)',
            m=minutes,
            id=redemption_id,
        )
        owner.run('COMMIT')


def test_a_failed_vendor_redemption_raises_a_critical_alert_announced_once(owner, monkeypatch, topic: Topic):
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('refuse')
        with pytest.raises(errors.FulfilmentUnavailable):
            s.provision()

    first = run()
    second = run()

    alert = open_alert('fulfilment_unavailable', s.brand['id'])
    assert (alert['severity'], alert['entity_type']) == ('critical', 'brand')
    assert alert['details']['failures'] == 1
    assert alert['occurrences'] == 3  # raised by provisioning, refreshed by each run
    assert first['breakdown']['provisioning_failures'] >= 1
    assert second['breakdown']['provisioning_failures'] >= 1
    assert topic.changes(s.brand['id']) == [('new', 'critical')]


def test_the_failure_alert_resolves_once_the_last_hour_has_no_failures(owner, topic: Topic):
    s = ps.setup(owner, funds_cents=10_000)
    with pytest.raises(errors.FulfilmentUnavailable):
        s.provision()  # no stock, no vendor configured
    run()
    [failed] = ps.redemptions_of(s.campaign_id)
    age(failed['id'], 'failed_at', 59)
    run()
    assert open_alert('fulfilment_unavailable', s.brand['id']) is not None
    age(failed['id'], 'failed_at', 61)

    answer = run()

    assert open_alert('fulfilment_unavailable', s.brand['id']) is None
    assert [a['status'] for a in alerts_of('fulfilment_unavailable', s.brand['id'])] == ['resolved']
    assert ('resolved', 'critical') in [
        (a['change'], a['severity']) for a in answer['alerts'] if a['entity_id'] == s.brand['id']
    ]
    assert topic.changes(s.brand['id']) == [('new', 'critical'), ('resolved', 'critical')]


def test_a_stuck_pending_redemption_is_recovered_by_the_run(owner, monkeypatch):
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('error')
        with pytest.raises(errors.ServiceUnavailable):
            s.provision()
        [pending] = ps.redemptions_of(s.campaign_id)
        age(pending['id'], 'created_at', 10)
        ps.query(
            'UPDATE redemptions SET next_attempt_at = now() WHERE id = CAST(:id AS uuid) RETURNING id', id=pending['id']
        )
        vendor.set_mode('ok')

        answer = run()

        [row] = ps.redemptions_of(s.campaign_id)
        assert row['status'] == 'fulfilled' and row['source'] == 'api'
        assert answer['recovery']['fulfilled'] >= 1
        assert vendor.sold_count(row['vendor_key']) == 1
        ps.assert_settled(s.campaign_id, vendor)


def test_a_redemption_still_stuck_after_recovery_is_alerted(owner, monkeypatch):
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('error')
        with pytest.raises(errors.ServiceUnavailable):
            s.provision()
        [pending] = ps.redemptions_of(s.campaign_id)
        age(pending['id'], 'created_at', 24 * 60)  # the oldest pending redemption of the session
        ps.query(
            'UPDATE redemptions SET next_attempt_at = now() WHERE id = CAST(:id AS uuid) RETURNING id', id=pending['id']
        )

        answer = run()

        [row] = ps.redemptions_of(s.campaign_id)
        assert row['status'] == 'pending'
        assert vendor.attempts(row['vendor_key']) >= 2  # the first call and the recovery's retry, same key
        alert = open_alert('redemptions_stuck', None, 'system')
        assert alert['severity'] == 'critical'  # pending for more than an hour
        assert pending['id'] in alert['details']['redemption_ids']
        assert answer['breakdown']['provisioning_failures'] >= 1
        vendor.set_mode('ok')
        run()
        assert ps.redemptions_of(s.campaign_id)[0]['status'] == 'fulfilled'
        stuck = open_alert('redemptions_stuck', None, 'system')
        assert stuck is None or pending['id'] not in stuck['details']['redemption_ids']


def test_recovery_takes_only_the_retries_that_fit_in_the_runs_time(owner, monkeypatch):
    s = ps.setup(owner, funds_cents=100_000)
    with ps.fake_vendors(monkeypatch, 'tango-a', timeout_s=1.0) as (vendor,):  # a retry takes 2 s at worst
        vendor.set_mode('error')
        for _ in range(3):
            with pytest.raises(errors.ServiceUnavailable):
                s.provision()
        for row in ps.redemptions_of(s.campaign_id):
            age(row['id'], 'created_at', 10)
            ps.query(
                'UPDATE redemptions SET next_attempt_at = now() WHERE id = CAST(:id AS uuid) RETURNING id', id=row['id']
            )

        budget_for_two = monitor.CHECKS_RESERVE_S + 2 * 2.0 + 0.5
        tight = monitor.run_monitor('schedule', time_budget_s=budget_for_two)
        none = monitor.run_monitor('schedule', time_budget_s=monitor.CHECKS_RESERVE_S + 1.0)

    assert tight.success and tight.recovery['examined'] == 2
    assert none.success and none.recovery == {'examined': 0, 'skipped': 'not enough time left for a vendor retry'}
    assert none.breakdown['provisioning_failures'] >= 1  # the checks ran all the same: these are stuck
    assert open_alert('redemptions_stuck', None, 'system') is not None
