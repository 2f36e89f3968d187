"""The monitor function (HTTP route and EventBridge schedule) and the alert routes of the admin function, through
API Gateway v2 events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from dashboards_app import lambda_handler as dashboards_handler
from monitor_app import lambda_handler as monitor_handler

from tests import factories
from tests.events import LambdaContext, call, http_event
from tests.monitor_support import open_alert, run, set_stock, stocked_pool

ANSWER_KEYS = {'success', 'duration_ms', 'alerts_generated', 'alerts_resolved', 'breakdown', 'alerts'}


def scheduled_event() -> dict[str, Any]:
    return {
        'version': '0',
        'id': str(uuid.uuid4()),
        'detail-type': 'Scheduled Event',
        'source': 'aws.events',
        'account': '123456789012',
        'time': '2026-11-26T12:00:00Z',
        'region': 'us-east-1',
        'resources': ['arn:aws:events:us-east-1:123456789012:rule/giftcards-EveryFiveMinutes'],
        'detail': {},
    }


def admin_send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(dashboards_handler, http_event(method, path, subject=subject, **kwargs))


@pytest.fixture
def admin(owner: Any) -> str:
    return factories.platform_admin(owner)


# --- the monitor function ------------------------------------------------------------------------------


def test_the_schedule_runs_the_monitor(admin: str, capsys: pytest.CaptureFixture[str]) -> None:
    pool = stocked_pool(admin, 0)

    answer = monitor_handler(scheduled_event(), LambdaContext())

    assert answer.keys() >= ANSWER_KEYS and answer['success'] is True
    assert set(answer['breakdown']) == {
        'csv_pools',
        'campaigns',
        'agencies',
        'clients',
        'provisioning_failures',
        'ledger',
        'deliveries',
    }
    assert open_alert('pool_low_stock', pool['id'])['severity'] == 'critical'
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m['Name'] for doc in emf for d in doc['_aws']['CloudWatchMetrics'] for m in d['Metrics']}
    assert {'CsvCardsAvailable', 'OpenAlerts', 'MonitorRunDuration'} <= names
    stock = [doc for doc in emf if doc.get('brand') == pool['brand'] and 'CsvCardsAvailable' in doc]
    assert [(doc['denomination'], doc['CsvCardsAvailable']) for doc in stock] == [('25.00', [0.0])]
    assert {doc['severity'] for doc in emf if 'OpenAlerts' in doc} == {'info', 'warning', 'critical'}


def test_a_platform_admin_runs_the_monitor_over_http(admin: str) -> None:
    pool = stocked_pool(admin, 8)

    status, _, body = call(monitor_handler, http_event('POST', '/monitor-gift-card-system', subject=admin))

    assert status == 200
    assert body.keys() >= ANSWER_KEYS and body['success'] is True
    assert body['alerts_generated'] >= 1 and body['breakdown']['csv_pools'] >= 1
    [alert] = [a for a in body['alerts'] if a['entity_id'] == pool['id']]
    assert (alert['type'], alert['severity'], alert['change'], alert['status']) == (
        'pool_low_stock',
        'warning',
        'new',
        'open',
    )
    assert {'id', 'message', 'entity_type', 'first_seen', 'last_seen'} <= alert.keys()


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'client_integration', 'stranger'])
def test_only_a_platform_admin_may_run_the_monitor(owner: Any, role: str) -> None:
    tree = factories.hierarchy_tree(owner)
    subject = {
        'agency_admin': tree.agency_admin,
        'client_admin': tree.client_admin,
        'client_integration': tree.integration,
        'stranger': factories.stranger(),
    }[role]

    status, _, body = call(monitor_handler, http_event('POST', '/monitor-gift-card-system', subject=subject))

    assert status == 403 and body['error']['code'] == 'forbidden'


def test_the_monitor_route_needs_a_token() -> None:
    status, _, body = call(monitor_handler, http_event('POST', '/monitor-gift-card-system'))
    assert status == 401 and body['success'] is False


# --- alerts --------------------------------------------------------------------------------------------


def test_open_alerts_are_listed_newest_first_and_paged(admin: str) -> None:
    run()  # alert whatever earlier tests left in the session's database first
    # Five alerts newer than any other: two full pages come from them alone.
    pools = [stocked_pool(admin, 0) for _ in range(5)]
    run()

    status, _, first = admin_send('GET', '/alerts', admin, query={'status': 'open', 'limit': '2'})
    _, _, second = admin_send(
        'GET', '/alerts', admin, query={'status': 'open', 'limit': '2', 'cursor': first['next_cursor']}
    )

    assert status == 200 and len(first['items']) == 2 and first['next_cursor']
    listed = first['items'] + second['items']
    assert len({a['id'] for a in listed}) == 4
    assert [a['first_seen'] for a in listed] == sorted((a['first_seen'] for a in listed), reverse=True)
    item = listed[0]
    assert {
        'type',
        'severity',
        'entity_type',
        'entity_id',
        'message',
        'status',
        'first_seen',
        'last_seen',
    } <= item.keys()
    assert all(a['status'] in ('open', 'acknowledged') for a in listed)
    assert all(a['entity_id'] in {p['id'] for p in pools} for a in listed)


def test_resolved_alerts_are_listed_apart(admin: str) -> None:
    pool = stocked_pool(admin, 1)
    run()
    alert_id = open_alert('pool_low_stock', pool['id'])['id']
    set_stock(admin, pool, 50)
    run()

    _, _, resolved = admin_send('GET', '/alerts', admin, query={'status': 'resolved', 'limit': '500'})
    _, _, open_ = admin_send('GET', '/alerts', admin, query={'limit': '500'})

    [item] = [a for a in resolved['items'] if a['id'] == alert_id]
    assert item['status'] == 'resolved' and item['resolved_at']
    assert alert_id not in {a['id'] for a in open_['items']}


def test_an_admin_acknowledges_an_alert(admin: str) -> None:
    pool = stocked_pool(admin, 1)
    run()
    alert_id = open_alert('pool_low_stock', pool['id'])['id']

    status, _, body = admin_send('POST', f'/alerts/{alert_id}/acknowledge', admin)

    assert status == 200
    assert (body['id'], body['status'], body['acknowledged_by']) == (alert_id, 'acknowledged', admin)
    assert open_alert('pool_low_stock', pool['id'])['status'] == 'acknowledged'


def test_acknowledging_a_resolved_alert_is_a_conflict(admin: str) -> None:
    pool = stocked_pool(admin, 1)
    run()
    alert_id = open_alert('pool_low_stock', pool['id'])['id']
    set_stock(admin, pool, 50)
    run()

    status, _, body = admin_send('POST', f'/alerts/{alert_id}/acknowledge', admin)

    assert status == 409 and body['error']['code'] == 'alert_resolved'


@pytest.mark.parametrize('alert_id', [str(uuid.uuid4()), 'not-a-uuid'])
def test_acknowledging_an_unknown_alert_is_not_found(admin: str, alert_id: str) -> None:
    status, _, body = admin_send('POST', f'/alerts/{alert_id}/acknowledge', admin)
    assert status == 404 and body['error']['code'] == 'not_found'


def test_alerts_are_for_platform_admins_only(owner: Any, admin: str) -> None:
    tree = factories.hierarchy_tree(owner)
    pool = stocked_pool(admin, 1)
    run()
    alert_id = open_alert('pool_low_stock', pool['id'])['id']

    listed, _, _ = admin_send('GET', '/alerts', tree.agency_admin)
    acknowledged, _, _ = admin_send('POST', f'/alerts/{alert_id}/acknowledge', tree.client_admin)

    assert (listed, acknowledged) == (403, 403)
    assert open_alert('pool_low_stock', pool['id'])['status'] == 'open'


@pytest.mark.parametrize('query', [{'status': 'closed'}, {'limit': '0'}, {'limit': '501'}, {'cursor': 'forged'}])
def test_bad_listing_parameters_are_rejected(admin: str, query: dict[str, str]) -> None:
    status, _, body = admin_send('GET', '/alerts', admin, query=query)
    assert status == 422 and body['error']['code'] == 'validation_error'
