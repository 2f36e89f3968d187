"""`giftcard demo`: the demo data loads, loads again without duplicating money, and its code redeems."""

from __future__ import annotations

from giftcard_local import demo, tokens
from giftcards import db

from tests import factories
from tests.events import call, http_event


def _balance(account_owner_table: str, entity_id: str) -> int:
    with db.UnitOfWork() as uow:
        return int(
            uow.value(
                f'SELECT a.balance_cents FROM {account_owner_table} e JOIN credit_accounts a ON a.id = e.account_id'
                ' WHERE e.id = CAST(:id AS uuid)',
                id=entity_id,
            )
        )


def test_demo_loads_once_and_reloads_without_funding_twice(database_url):
    first = demo.load()
    second = demo.load()
    for key in ('agency_id', 'client_id', 'campaign_id', 'shared_campaign_id', 'brand_id', 'pool_id'):
        assert first[key] == second[key]
    assert first['redemption_code'] != second['redemption_code']
    assert _balance('agencies', first['agency_id']) == 100_000_00 - 10_000_00
    assert _balance('campaigns', first['campaign_id']) == 500_00
    assert set(first['tokens']) == {'platform_admin', 'agency_admin', 'client_admin', 'client_integration'}
    claims = tokens.verify_token(first['tokens']['client_integration'])
    assert claims['client_id'] == demo.SUBJECTS['client_integration']
    assert factories.ledger_check().ok


def test_demo_redemption_code_turns_into_a_card(database_url):
    import redeem_app

    data = demo.load()
    before = _balance('campaigns', data['campaign_id'])
    status, _, body = call(
        redeem_app.lambda_handler, http_event('POST', '/redeem', body={'code': data['redemption_code']})
    )
    assert status == 200, body
    assert body['card']['card_code'].startswith('DEMO-')
    assert _balance('campaigns', data['campaign_id']) == before - 27_50  # the price list's client price
