"""Alerts people can live with: one open alert per (type, entity), refreshed while the condition persists, escalated
when it worsens, resolved when it clears, acknowledged by an admin, and announced on the topic once per change."""

from __future__ import annotations

import uuid

import pytest
from giftcards import alerts, db, errors, notify

from tests import factories
from tests.monitor_support import Topic, alerts_of, open_alert, run, set_stock, stocked_pool, topic

__all__ = ['topic']


@pytest.fixture
def admin(owner) -> str:
    factories.platform_admin(owner)
    # The session's database holds every earlier test's conditions. Alert them before this test starts, so a run's
    # answer (which lists at most 100 changes) lists only what this test changes.
    run()
    return factories.platform_admin(owner)


def changed(answer: dict, entity_id: str) -> list[tuple[str, str]]:
    return [(a['change'], a['severity']) for a in answer['alerts'] if a['entity_id'] == entity_id]


def test_a_persisting_condition_keeps_one_alert_across_runs(admin, topic: Topic):
    pool = stocked_pool(admin, 5)
    first = run()
    alert = open_alert('pool_low_stock', pool['id'])
    second = run()
    again = open_alert('pool_low_stock', pool['id'])
    assert changed(first, pool['id']) == [('new', 'warning')]
    assert changed(second, pool['id']) == []
    assert len(alerts_of('pool_low_stock', pool['id'])) == 1
    assert again['id'] == alert['id']
    assert again['occurrences'] == 2
    assert again['first_seen'] == alert['first_seen']
    assert again['last_seen'] > alert['last_seen']
    assert topic.changes(pool['id']) == [('new', 'warning')]


def test_restocking_resolves_the_alert_and_announces_it(admin, topic: Topic):
    pool = stocked_pool(admin, 3)
    run()
    set_stock(admin, pool, 60)
    answer = run()
    assert open_alert('pool_low_stock', pool['id']) is None
    [resolved] = alerts_of('pool_low_stock', pool['id'])
    assert resolved['status'] == 'resolved' and resolved['resolved_at'] is not None
    assert changed(answer, pool['id']) == [('resolved', 'warning')]
    assert answer['alerts_resolved'] >= 1
    assert topic.changes(pool['id']) == [('new', 'warning'), ('resolved', 'warning')]


def test_a_condition_returning_after_resolution_opens_a_new_alert(admin, topic: Topic):
    pool = stocked_pool(admin, 3)
    run()
    set_stock(admin, pool, 60)
    run()
    set_stock(admin, pool, 0)
    run()
    history = alerts_of('pool_low_stock', pool['id'])
    assert [(a['status'], a['severity']) for a in history] == [('resolved', 'warning'), ('open', 'critical')]
    assert topic.changes(pool['id']) == [('new', 'warning'), ('resolved', 'warning'), ('new', 'critical')]


def test_escalation_info_warning_critical_announces_each_change_once(admin, topic: Topic):
    pool = stocked_pool(admin, 49)
    run()
    run()
    set_stock(admin, pool, 9)
    escalated = run()
    run()
    set_stock(admin, pool, 0)
    run()
    run()
    assert changed(escalated, pool['id']) == [('escalated', 'warning')]
    assert topic.changes(pool['id']) == [('new', 'info'), ('escalated', 'warning'), ('escalated', 'critical')]
    assert len(alerts_of('pool_low_stock', pool['id'])) == 1
    assert open_alert('pool_low_stock', pool['id'])['occurrences'] == 6


def test_an_improving_condition_is_not_announced_and_a_relapse_is_not_announced_again(admin, topic: Topic):
    pool = stocked_pool(admin, 0)
    run()
    set_stock(admin, pool, 20)  # critical -> info
    run()
    assert open_alert('pool_low_stock', pool['id'])['severity'] == 'info'
    set_stock(admin, pool, 0)  # back to critical: already announced at this severity
    run()
    assert topic.changes(pool['id']) == [('new', 'critical')]


def test_messages_carry_the_alert_and_filterable_attributes(admin, topic: Topic):
    pool = stocked_pool(admin, 0)
    run()
    [message] = topic.about(pool['id'])
    assert message['attributes'] == {'severity': 'critical', 'change': 'new', 'type': 'pool_low_stock'}
    assert message['subject'].startswith('[CRITICAL] New: ')
    assert len(message['subject']) <= 100
    alert = message['body']['alert']
    assert alert['type'] == 'pool_low_stock' and alert['entity_type'] == 'pool'
    assert alert['details']['available'] == 0


def test_acknowledged_alert_stays_acknowledged_until_it_gets_worse(admin, topic: Topic):
    pool = stocked_pool(admin, 30)
    run()
    alert = open_alert('pool_low_stock', pool['id'])
    acknowledged = alerts.acknowledge(admin, alert['id'])
    assert acknowledged.status == 'acknowledged' and acknowledged.acknowledged_by == admin
    run()
    assert open_alert('pool_low_stock', pool['id'])['status'] == 'acknowledged'
    set_stock(admin, pool, 0)
    run()
    worse = open_alert('pool_low_stock', pool['id'])
    assert (worse['status'], worse['severity']) == ('open', 'critical')
    assert topic.changes(pool['id']) == [('new', 'info'), ('escalated', 'critical')]


@pytest.mark.parametrize(('raised_again', 'status'), [('warning', 'acknowledged'), ('critical', 'open')])
def test_an_alert_raised_outside_the_monitor_reopens_only_when_worse(admin, raised_again: str, status: str):
    """The rule lives on the table (migration 0027): raise_alert (provisioning's and recovery's alerts) meets it as the
    monitor's reconcile does."""
    entity = str(uuid.uuid4())

    def raise_(severity: str) -> alerts.RaisedAlert:
        return db.in_transaction(
            lambda uow: alerts.raise_alert(uow, 'card_integrity', severity, 'card', entity, f'{severity} integrity')
        )

    raised = raise_('warning')
    assert alerts.acknowledge(admin, raised.id).status == 'acknowledged'
    again = raise_(raised_again)
    [alert] = db.in_transaction(lambda uow: alerts.find(uow, [raised.id]))
    assert again.id == raised.id and not again.created
    assert (alert.status, alert.severity, alert.occurrences) == (status, raised_again, 2)
    assert alert.acknowledged_by == admin  # who acknowledged it stays on record either way


def test_acknowledging_twice_keeps_the_first_acknowledgement(admin, owner):
    pool = stocked_pool(admin, 30)
    run()
    alert = open_alert('pool_low_stock', pool['id'])
    first = alerts.acknowledge(admin, alert['id'])
    second = alerts.acknowledge(factories.platform_admin(owner), alert['id'])
    assert second.acknowledged_by == admin
    assert second.acknowledged_at == first.acknowledged_at


def test_a_resolved_alert_cannot_be_acknowledged(admin):
    pool = stocked_pool(admin, 30)
    run()
    alert = open_alert('pool_low_stock', pool['id'])
    set_stock(admin, pool, 50)
    run()
    with pytest.raises(errors.Conflict):
        alerts.acknowledge(admin, alert['id'])


def test_an_announcement_the_topic_did_not_take_is_sent_by_the_next_run(admin, topic: Topic, monkeypatch):
    pool = stocked_pool(admin, 4)
    real_publish = notify.publish
    monkeypatch.setattr(notify, 'publish', lambda pending: [])  # the topic is down
    run()
    assert open_alert('pool_low_stock', pool['id'])['notified_status'] is None
    assert topic.changes(pool['id']) == []
    monkeypatch.setattr(notify, 'publish', real_publish)
    run()
    run()
    assert topic.changes(pool['id']) == [('new', 'warning')]
    assert open_alert('pool_low_stock', pool['id'])['notified_severity'] == 'warning'


def test_a_crash_after_publishing_announces_again_rather_than_never(admin, topic: Topic, monkeypatch):
    pool = stocked_pool(admin, 4)
    real_in_transaction = db.in_transaction
    calls = {'n': 0}

    def crash_when_recording(work, **kwargs):
        if getattr(work, '__name__', '') == 'record':
            calls['n'] += 1
            raise errors.ServiceUnavailable('the database went away')
        return real_in_transaction(work, **kwargs)

    monkeypatch.setattr(alerts, 'CLAIM_S', 0)  # the crashed publisher's claim has run out by the next run
    monkeypatch.setattr(db, 'in_transaction', crash_when_recording)
    run()
    monkeypatch.setattr(db, 'in_transaction', real_in_transaction)
    assert calls['n'] == 1
    run()
    run()
    assert topic.changes(pool['id']) == [('new', 'warning'), ('new', 'warning')]


def test_an_alert_raised_outside_the_monitor_is_announced_by_its_next_run(topic: Topic):
    brand = factories.brand()
    db.in_transaction(
        lambda uow: alerts.raise_alert(
            uow, 'vendor_card_after_refund', 'critical', 'brand', brand['id'], 'a vendor sold after a refund'
        )
    )
    run()
    run()
    assert topic.changes(brand['id']) == [('new', 'critical')]
    assert open_alert('vendor_card_after_refund', brand['id'])['status'] == 'open'  # not the monitor's to resolve


def test_without_a_topic_announcements_are_logged_and_recorded(admin, monkeypatch):
    monkeypatch.delenv('ALERTS_TOPIC_ARN', raising=False)
    pool = stocked_pool(admin, 4)
    run()
    alert = open_alert('pool_low_stock', pool['id'])
    assert (alert['notified_status'], alert['notified_severity']) == ('open', 'warning')
