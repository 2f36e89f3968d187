"""`POST /provision-gift-card` and `GET /redemptions` through their Lambda handlers, with API Gateway v2 events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from admin_app import lambda_handler as admin_handler
from giftcards import hierarchy
from provision_app import lambda_handler as provision_handler

from tests import factories
from tests import provisioning_support as ps
from tests.events import call, http_event


def provision(subject: str | None, body: Any = None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(provision_handler, http_event('POST', '/provision-gift-card', subject=subject, body=body, **kwargs))


def listing(subject: str | None, **query: str) -> tuple[int, dict[str, str], Any]:
    return call(admin_handler, http_event('GET', '/redemptions', subject=subject, query=query))


def body_for(s: ps.Setup, code: str | None = None, **changes: Any) -> dict[str, Any]:
    return {
        'campaignId': s.campaign_id,
        'brandId': s.brand['id'],
        'denomination': 25,
        'redemptionCode': code or ps.new_code(),
        **changes,
    }


@pytest.fixture
def stocked(owner: Any) -> ps.Setup:
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 5)
    return s


# --- POST /provision-gift-card ---------------------------------------------------------------------------


def test_200_answers_the_redemption_and_the_card(stocked: ps.Setup) -> None:
    s = stocked
    code = ps.new_code()
    status, headers, body = provision(s.tree.integration, body_for(s, code, recipientId='emp-7'))

    assert status == 200, body
    assert headers['cache-control'] == 'no-store'
    assert body['success'] is True and body['source'] == 'csv' and body['creditRemaining'] == 75
    assert body['card']['cardValue'] == 25 and body['card']['cardCode'].startswith('CARD-')
    assert len(body['card']['cardNumber']) == 16
    redemption = body['redemption']
    assert (redemption['status'], redemption['campaignId'], redemption['brandId']) == (
        'fulfilled',
        s.campaign_id,
        s.brand['id'],
    )
    assert (redemption['denomination'], redemption['amountCharged'], redemption['source']) == (25, 25, 'csv')
    assert redemption['recipientId'] == 'emp-7' and redemption['redemptionCodeLast4'] == code[-4:]
    assert 'replayed' not in body and 'campaignPaused' not in body


def test_200_replay_is_the_same_body_marked_replayed(stocked: ps.Setup) -> None:
    body = body_for(stocked)
    _, _, first = provision(stocked.tree.integration, body)

    status, _, again = provision(stocked.tree.client_admin, body)

    assert status == 200 and again.pop('replayed') is True
    assert again == first


def test_200_says_when_the_charge_paused_the_campaign(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=2_500)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)

    status, _, body = provision(s.tree.integration, body_for(s))

    assert status == 200 and body['campaignPaused'] is True and body['creditRemaining'] == 0


def test_200_with_a_price_list_charges_the_client_price(owner: Any) -> None:
    s = ps.setup(owner, prices=(hierarchy.Price(2500, agency_price_cents=2600, client_price_cents=2750),))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)

    _, _, body = provision(s.tree.integration, body_for(s, denomination=25.0))

    assert body['redemption']['amountCharged'] == 27.5 and body['card']['cardValue'] == 25


def test_401_without_a_token(stocked: ps.Setup) -> None:
    status, _, body = provision(None, body_for(stocked))
    assert status == 401 and body['error']['code'] == 'unauthorized'


def test_403_for_an_agency_admin(stocked: ps.Setup) -> None:
    status, _, body = provision(stocked.tree.agency_admin, body_for(stocked))
    assert status == 403 and body['error']['code'] == 'forbidden'


def test_404_for_a_campaign_the_caller_cannot_see(stocked: ps.Setup) -> None:
    status, _, body = provision(factories.stranger(), body_for(stocked))
    assert status == 404 and body['error']['code'] == 'not_found'


def test_409_for_insufficient_credit(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=1_000)
    status, _, body = provision(s.tree.integration, body_for(s))
    assert status == 409 and body['error']['code'] == 'insufficient_credit'


def test_409_for_a_paused_campaign(stocked: ps.Setup) -> None:
    hierarchy.update_campaign(stocked.tree.client_admin, stocked.campaign_id, status='paused')
    status, _, body = provision(stocked.tree.integration, body_for(stocked))
    assert status == 409 and body['error']['code'] == 'campaign_not_active'


def test_409_for_a_code_reused_with_another_denomination(stocked: ps.Setup) -> None:
    body = body_for(stocked)
    provision(stocked.tree.integration, body)
    status, _, answer = provision(stocked.tree.integration, {**body, 'denomination': 50})
    assert status == 409 and answer['error']['code'] == 'redemption_code_conflict'


def test_422_for_a_denomination_the_brand_does_not_offer(stocked: ps.Setup) -> None:
    status, _, body = provision(stocked.tree.integration, body_for(stocked, denomination=30))
    assert status == 422 and body['error']['details'][0]['field'] == 'denomination'


def test_503_with_retry_after_when_the_vendor_outcome_is_unknown(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner)
    request = body_for(s)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('error')
        status, headers, body = provision(s.tree.integration, request)
        vendor.set_mode('ok')
        later = provision(s.tree.integration, request)

    assert status == 503 and body['error']['code'] == 'fulfilment_pending'
    assert int(headers['retry-after']) >= 1
    assert later[0] == 200 and later[2]['replayed'] is True and later[2]['source'] == 'api'


def test_503_fulfilment_unavailable_when_every_vendor_refuses(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('refuse')
        status, _, body = provision(s.tree.integration, body_for(s))

    assert status == 503 and body['error']['code'] == 'fulfilment_unavailable'


MALFORMED: list[tuple[str, str]] = [
    ('not-json', '{"campaignId": '),
    ('array', '[]'),
    ('null', 'null'),
    ('string', '"code"'),
    ('empty-object', '{}'),
    ('empty', ''),
    ('deep', '[' * 50_000),
    ('huge-int', '{"denomination": ' + '9' * 5_000 + '}'),
]


BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ('code-short', {'redemptionCode': 'AB1'}),
    ('code-long', {'redemptionCode': 'A' * 65}),
    ('code-underscore', {'redemptionCode': 'ABC_123'}),
    ('code-space', {'redemptionCode': 'ABC 123'}),
    ('code-unicode', {'redemptionCode': 'ÄBC-123'}),
    ('code-number', {'redemptionCode': 12345}),
    ('code-null', {'redemptionCode': None}),
    ('denomination-zero', {'denomination': 0}),
    ('denomination-negative', {'denomination': -25}),
    ('denomination-3dp', {'denomination': 25.001}),
    ('denomination-string', {'denomination': '25'}),
    ('denomination-bool', {'denomination': True}),
    ('denomination-huge', {'denomination': 1e12}),
    ('campaign-number', {'campaignId': 7}),
    ('campaign-empty', {'campaignId': ''}),
    ('campaign-huge', {'campaignId': 'x' * 10_000}),
    ('brand-list', {'brandId': ['a']}),
    ('recipient-huge', {'recipientId': 'r' * 201}),
    ('extra-field', {'amount': 25}),
]


@pytest.mark.parametrize(('name', 'raw'), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_bodies_are_4xx_and_charge_nothing(stocked: ps.Setup, name: str, raw: str) -> None:
    status, _, body = provision(stocked.tree.integration, raw_body=raw)
    assert status in (400, 422), body
    assert body['success'] is False and body['error']['code']
    assert factories.balance_cents(stocked.paying_account) == 10_000


@pytest.mark.parametrize(('name', 'change'), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_invalid_fields_are_422_and_charge_nothing(stocked: ps.Setup, name: str, change: dict[str, Any]) -> None:
    status, _, body = provision(stocked.tree.integration, raw_body=json.dumps({**body_for(stocked), **change}))
    assert status == 422, body
    assert body['error']['code'] == 'validation_error'
    assert factories.balance_cents(stocked.paying_account) == 10_000


@pytest.mark.parametrize('campaign_id', ['not-a-uuid', '00000000-0000-0000-0000-000000000000', "'; DROP TABLE x; --"])
def test_unknown_or_malformed_campaign_ids_are_404(stocked: ps.Setup, campaign_id: str) -> None:
    status, _, body = provision(stocked.tree.integration, body_for(stocked, campaignId=campaign_id))
    assert status == 404, body


# --- GET /redemptions ------------------------------------------------------------------------------------


def test_redemptions_list_masks_cards_and_totals_profit(owner: Any) -> None:
    s = ps.setup(owner, prices=(hierarchy.Price(2500, agency_price_cents=2600, client_price_cents=2750),))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    ps.pool(s.admin, s.brand['id'], 2500, 2400, 1)
    answers = [provision(s.tree.integration, body_for(s))[2] for _ in range(2)]
    card_codes = [a['card']['cardCode'] for a in answers]

    status, _, body = listing(s.tree.agency_admin, campaign_id=s.campaign_id)

    assert status == 200
    assert body['totals'] == {'redemptions': 2, 'pending': 0, 'failed': 0, 'charged': 55, 'cost': 47.5, 'profit': 7.5}
    assert [i['id'] for i in body['items']] == [a['redemption']['id'] for a in reversed(answers)]
    newest = body['items'][0]
    assert newest['card'] == '****' + card_codes[1][-4:]
    assert (newest['amount_charged'], newest['cost_basis'], newest['agency_price'], newest['profit']) == (
        27.5,
        24,
        26,
        3.5,
    )
    text = json.dumps(body)
    assert all(code not in text for code in card_codes)
    assert all(a['card']['cardNumber'] not in text for a in answers)


def test_redemptions_pages_keep_the_same_totals(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
    ids = [provision(s.tree.integration, body_for(s))[2]['redemption']['id'] for _ in range(3)]

    _, _, first = listing(s.tree.platform_admin, client_id=s.tree.client['id'], limit='2')
    _, _, second = listing(s.tree.platform_admin, client_id=s.tree.client['id'], limit='2', cursor=first['next_cursor'])

    assert [i['id'] for i in first['items'] + second['items']] == list(reversed(ids))
    assert second['next_cursor'] is None
    assert first['totals'] == second['totals'] and first['totals']['charged'] == 75


def test_redemptions_by_agency_cover_its_clients(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    provision(s.tree.integration, body_for(s))

    _, _, body = listing(s.tree.agency_admin, agency_id=s.tree.agency['id'])

    assert body['totals']['redemptions'] == 1 and body['totals']['cost'] == 23.5


def test_a_client_admin_sees_charges_but_not_costs(stocked: ps.Setup) -> None:
    provision(stocked.tree.integration, body_for(stocked))

    status, _, body = listing(stocked.tree.client_admin, client_id=stocked.tree.client['id'])

    assert status == 200
    assert body['totals']['charged'] == 25 and body['totals']['cost'] is None and body['totals']['profit'] is None
    assert body['items'][0]['cost_basis'] is None and body['items'][0]['profit'] is None


@pytest.mark.parametrize(('who', 'status'), [('integration', 404), ('stranger', 404), ('other_agency_admin', 404)])
def test_redemptions_are_listed_only_for_the_scope_a_caller_administers(
    owner: Any, stocked: ps.Setup, who: str, status: int
) -> None:
    subject = {
        'integration': stocked.tree.integration,
        'stranger': factories.stranger(),
        'other_agency_admin': factories.agency_admin(owner, factories.agency()['id']),
    }[who]
    assert listing(subject, campaign_id=stocked.campaign_id)[0] == status


def test_redemptions_need_a_token_and_at_most_one_scope(stocked: ps.Setup) -> None:
    assert listing(None, campaign_id=stocked.campaign_id)[0] == 401
    assert (
        listing(stocked.tree.platform_admin, campaign_id=stocked.campaign_id, client_id=stocked.tree.client['id'])[0]
        == 422
    )
    assert listing(stocked.tree.agency_admin)[0] == 403  # everything: the platform admin only
    assert listing(stocked.tree.platform_admin, cursor='forged')[0] == 422
