"""The dashboards through the admin function: what each role sees, in API Gateway v2 events."""

from __future__ import annotations

from typing import Any

import pytest
from dashboards_app import lambda_handler
from giftcards import hierarchy

from tests import factories
from tests import provisioning_support as ps
from tests.events import call, http_event
from tests.monitor_support import run, stocked_pool


def get(path: str, subject: str | None) -> tuple[int, Any]:
    status, _, body = call(lambda_handler, http_event('GET', path, subject=subject))
    return status, body


@pytest.fixture
def admin(owner: Any) -> str:
    return factories.platform_admin(owner)


# --- admin -----------------------------------------------------------------------------------------------


def test_inventory_shows_csv_stock_health_per_brand_and_denomination(admin: str) -> None:
    empty, low, plenty = stocked_pool(admin, 0), stocked_pool(admin, 5), stocked_pool(admin, 60)

    status, body = get('/dashboards/admin', admin)

    assert status == 200
    rows = {row['brand_id']: row for row in body['inventory']}
    assert [rows[p['brand_id']]['health'] for p in (empty, low, plenty)] == ['red', 'yellow', 'green']
    assert rows[low['brand_id']]['denomination'] == 25
    assert rows[low['brand_id']]['csv'] == {'pools': 1, 'available': 5, 'claimed': 0, 'low_stock_threshold': 50}
    assert rows[plenty['brand_id']]['redemptions_last_30_days'] == {'csv': 0, 'api': 0}


def test_profit_and_the_csv_api_split_follow_redemptions(owner: Any, admin: str) -> None:
    s = ps.setup(owner, funds_cents=100_000, prices=(hierarchy.Price(2500, 2600, 2750),))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    _, before = get('/dashboards/admin', admin)

    s.provision()

    _, after = get('/dashboards/admin', admin)
    month_before, month_after = before['profit']['month_to_date'], after['profit']['month_to_date']
    assert month_after['redemptions'] == month_before['redemptions'] + 1
    assert round(month_after['charged'] - month_before['charged'], 2) == 27.5
    assert round(month_after['cost'] - month_before['cost'], 2) == 23.5
    assert round(month_after['profit'] - month_before['profit'], 2) == 4.0
    [row] = [r for r in after['inventory'] if r['brand_id'] == s.brand['id']]
    assert row['redemptions_last_30_days'] == {'csv': 1, 'api': 0}
    assert (row['health'], row['csv']['available'], row['csv']['claimed']) == ('red', 0, 1)


def test_a_redemption_moves_its_charge_from_credit_outstanding_to_credit_spent(owner: Any, admin: str) -> None:
    s = ps.setup(owner, funds_cents=100_000, prices=(hierarchy.Price(2500, 2600, 2750),))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    _, before = get('/dashboards/admin', admin)

    s.provision()

    _, after = get('/dashboards/admin', admin)
    spent = round(after['platform']['credit_spent'] - before['platform']['credit_spent'], 2)
    outstanding = round(after['platform']['credit_outstanding'] - before['platform']['credit_outstanding'], 2)
    assert (spent, outstanding) == (27.5, -27.5)


def test_agencies_alerts_and_monitor_state(admin: str) -> None:
    agency = factories.agency()
    factories.fund(12_345, agency['account_id'])
    run()

    _, body = get('/dashboards/admin', admin)

    balances = [a['balance'] for a in body['agencies']['lowest_balances']]
    assert balances == sorted(balances)
    assert body['agencies']['count'] >= 1
    assert set(body['alerts']['open']) == {'info', 'warning', 'critical'}
    assert body['alerts']['open']['warning'] >= 1  # at least this agency's low balance
    assert all(a['status'] != 'resolved' for a in body['alerts']['latest'])
    assert body['monitor']['last_run_at'] is not None and body['monitor']['last_run_succeeded'] is True
    assert body['platform']['credit_issued'] >= 123.45


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'stranger'])
def test_the_admin_dashboard_is_for_platform_admins(owner: Any, role: str) -> None:
    tree = factories.hierarchy_tree(owner)
    subject = {'agency_admin': tree.agency_admin, 'client_admin': tree.client_admin, 'stranger': factories.stranger()}[
        role
    ]
    status, body = get('/dashboards/admin', subject)
    assert status == 403 and body['error']['code'] == 'forbidden'


# --- agency ----------------------------------------------------------------------------------------------


def test_agency_dashboard_shows_clients_usage_and_monthly_metrics(owner: Any) -> None:
    s = ps.setup(owner, budget_mode='shared', funds_cents=100_000, prices=(hierarchy.Price(2500, 2600, 2750),))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    quiet = factories.client(s.tree.agency['id'])
    s.provision()
    s.provision()

    status, body = get(f'/dashboards/agencies/{s.tree.agency["id"]}', s.tree.agency_admin)

    assert status == 200
    assert body['agency']['id'] == s.tree.agency['id']
    assert body['agency']['balance'] == 0  # everything was allocated to the client
    assert body['agency']['low_balance_threshold'] == 1000
    clients = {c['id']: c for c in body['clients']}
    busy = clients[s.tree.client['id']]
    assert busy['balance'] == 945 and busy['campaigns'] == 1 and busy['active_campaigns'] == 1
    assert busy['month_to_date'] == {'redemptions': 2, 'spend': 55}
    assert clients[quiet['id']]['month_to_date'] == {'redemptions': 0, 'spend': 0}
    assert len(body['monthly']) == 6
    assert [m['month'] for m in body['monthly']] == sorted(m['month'] for m in body['monthly'])
    assert body['monthly'][-1] == {'month': body['monthly'][-1]['month'], 'redemptions': 2, 'spend': 55, 'profit': 3}
    assert all(m['redemptions'] == 0 for m in body['monthly'][:-1])


@pytest.mark.parametrize(
    ('role', 'expected'),
    [
        ('platform_admin', 200),
        ('agency_admin', 200),
        ('other_agency_admin', 404),
        ('client_admin', 404),
        ('stranger', 404),
    ],
)
def test_agency_dashboard_is_scoped_to_the_agency(owner: Any, role: str, expected: int) -> None:
    tree = factories.hierarchy_tree(owner)
    subject = {
        'platform_admin': tree.platform_admin,
        'agency_admin': tree.agency_admin,
        'other_agency_admin': factories.agency_admin(owner, factories.agency()['id']),
        'client_admin': tree.client_admin,
        'stranger': factories.stranger(),
    }[role]
    status, _ = get(f'/dashboards/agencies/{tree.agency["id"]}', subject)
    assert status == expected


def test_an_unknown_agency_is_not_found(admin: str) -> None:
    assert get('/dashboards/agencies/not-an-id', admin)[0] == 404


# --- client ----------------------------------------------------------------------------------------------


def test_client_dashboard_shows_campaigns_with_estimated_redemptions_remaining(owner: Any) -> None:
    s = ps.setup(owner, budget_mode='isolated', funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    s.provision()  # the isolated campaign: $100 - $25 = $75, its cheapest card $25
    factories.fund(20_000, s.tree.agency['account_id'], s.tree.client['account_id'])  # the client now holds $200
    shared = factories.campaign(s.tree.client['id'], budget_mode='shared')

    status, body = get(f'/dashboards/clients/{s.tree.client["id"]}', s.tree.client_admin)

    assert status == 200
    assert body['client']['balance'] == 200 and body['client']['low_balance_threshold'] == 500
    campaigns = {c['id']: c for c in body['campaigns']}
    isolated = campaigns[s.campaign_id]
    assert (isolated['budget_mode'], isolated['balance'], isolated['available_credit']) == ('isolated', 75, 75)
    assert (isolated['redemptions'], isolated['spend'], isolated['cheapest_card']) == (1, 25, 25)
    assert isolated['estimated_redemptions_remaining'] == 3
    on_client = campaigns[shared['id']]
    assert (on_client['budget_mode'], on_client['balance'], on_client['available_credit']) == ('shared', 0, 200)
    assert on_client['spend'] == 0 and on_client['cheapest_card'] is not None
    assert on_client['estimated_redemptions_remaining'] == int(200 // on_client['cheapest_card'])


def test_an_ended_campaign_has_nothing_left_to_redeem(owner: Any) -> None:
    s = ps.setup(owner, budget_mode='shared', funds_cents=10_000)
    hierarchy.update_campaign(s.tree.client_admin, s.campaign_id, status='ended')

    _, body = get(f'/dashboards/clients/{s.tree.client["id"]}', s.tree.client_admin)

    [campaign] = body['campaigns']
    assert campaign['status'] == 'ended' and campaign['estimated_redemptions_remaining'] == 0


@pytest.mark.parametrize(
    ('role', 'expected'),
    [
        ('platform_admin', 200),
        ('agency_admin', 200),
        ('client_admin', 200),
        ('other_client_admin', 404),
        ('other_agency_admin', 404),
        ('stranger', 404),
    ],
)
def test_client_dashboard_is_scoped_to_the_client(owner: Any, role: str, expected: int) -> None:
    tree = factories.hierarchy_tree(owner)
    subject = {
        'platform_admin': tree.platform_admin,
        'agency_admin': tree.agency_admin,
        'client_admin': tree.client_admin,
        'other_client_admin': factories.client_admin(owner, factories.client(tree.agency['id'])['id']),
        'other_agency_admin': factories.agency_admin(owner, factories.agency()['id']),
        'stranger': factories.stranger(),
    }[role]
    status, _ = get(f'/dashboards/clients/{tree.client["id"]}', subject)
    assert status == expected


def test_dashboards_need_a_token() -> None:
    assert get('/dashboards/admin', None)[0] == 401
