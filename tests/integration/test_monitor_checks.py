"""The monitor's checks at the seed's thresholds, each at its boundaries, and thresholds set per entity."""

from __future__ import annotations

import pytest

from tests import factories
from tests.monitor_support import open_alert, run, set_threshold, severity_of, stocked_pool


@pytest.fixture
def admin(owner) -> str:
    return factories.platform_admin(owner)


@pytest.mark.parametrize(
    ('cards', 'expected'),
    [
        (0, 'critical'),
        (1, 'warning'),
        (9, 'warning'),
        (10, 'info'),
        (49, 'info'),
        (50, None),
        (51, None),
    ],
)
def test_pool_stock_severity_at_its_boundaries(admin, cards, expected):
    pool = stocked_pool(admin, cards)
    answer = run()
    assert severity_of('pool_low_stock', pool['id']) == expected
    if expected:
        assert answer['breakdown']['csv_pools'] >= 1
        alert = open_alert('pool_low_stock', pool['id'])
        assert alert['entity_type'] == 'pool'
        assert alert['details']['available'] == cards
        assert alert['details']['brand_id'] == pool['brand_id']


def test_pool_below_its_own_low_stock_threshold_is_info(admin):
    high = stocked_pool(admin, 99, low_stock_threshold=100)
    enough = stocked_pool(admin, 100, low_stock_threshold=100)
    run()
    assert severity_of('pool_low_stock', high['id']) == 'info'
    assert severity_of('pool_low_stock', enough['id']) is None


def test_pool_with_a_low_threshold_still_warns_below_ten(admin):
    pool = stocked_pool(admin, 7, low_stock_threshold=5)
    run()
    assert severity_of('pool_low_stock', pool['id']) == 'warning'


@pytest.mark.parametrize(('cents', 'alerted'), [(99_999, True), (100_000, False)])
def test_agency_below_one_thousand_dollars_is_a_warning(cents, alerted):
    agency = factories.agency()
    factories.fund(cents, agency['account_id'])
    run()
    alert = open_alert('agency_low_balance', agency['id'])
    assert (alert is not None) == alerted
    if alerted:
        assert alert['severity'] == 'warning'
        assert alert['details']['balance_cents'] == cents
        assert alert['details']['threshold_cents'] == 100_000
        assert '$999.99' in alert['message'] and '$1,000.00' in alert['message']


@pytest.mark.parametrize(('cents', 'alerted'), [(49_999, True), (50_000, False)])
def test_client_below_five_hundred_dollars_is_a_warning(cents, alerted):
    agency = factories.agency()
    client = factories.client(agency['id'])
    factories.fund(cents, agency['account_id'], client['account_id'])
    run()
    alert = open_alert('client_low_balance', client['id'])
    assert (alert is not None) == alerted
    if alerted:
        assert alert['severity'] == 'warning'


@pytest.mark.parametrize(('cents', 'alerted'), [(9_999, True), (10_000, False)])
def test_isolated_campaign_below_one_hundred_dollars_is_info(cents, alerted):
    agency = factories.agency()
    client = factories.client(agency['id'])
    campaign = factories.campaign(client['id'], budget_mode='isolated')
    factories.fund(cents, agency['account_id'], client['account_id'], campaign['account_id'])
    run()
    alert = open_alert('campaign_low_balance', campaign['id'])
    assert (alert is not None) == alerted
    if alerted:
        assert alert['severity'] == 'info'


def test_shared_campaign_has_no_balance_of_its_own_to_watch():
    agency = factories.agency()
    client = factories.client(agency['id'])
    factories.fund(1_000_000, agency['account_id'], client['account_id'])
    campaign = factories.campaign(client['id'], budget_mode='shared')
    run()
    assert open_alert('campaign_low_balance', campaign['id']) is None


def test_threshold_set_for_one_agency_replaces_the_default():
    stricter, silenced, default = factories.agency(), factories.agency(), factories.agency()
    for agency in (stricter, silenced, default):
        factories.fund(150_000, agency['account_id'])
    set_threshold('agency', stricter['id'], 200_000)
    set_threshold('agency', silenced['id'], 0)
    run()
    assert open_alert('agency_low_balance', stricter['id'])['details']['threshold_cents'] == 200_000
    assert open_alert('agency_low_balance', silenced['id']) is None
    assert open_alert('agency_low_balance', default['id']) is None


def test_changing_the_default_threshold_applies_to_every_client_without_its_own():
    agency = factories.agency()
    client = factories.client(agency['id'])
    factories.fund(60_000, agency['account_id'], client['account_id'])
    try:
        set_threshold('client', None, 70_000)
        run()
        assert severity_of('client_low_balance', client['id']) == 'warning'
    finally:
        set_threshold('client', None, 50_000)
    run()
    assert severity_of('client_low_balance', client['id']) is None
