"""The money rules under concurrent HTTP clients, through a real `giftcard serve`: each answer belongs to its own
request, nothing is spent twice, and the books balance afterwards."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from giftcard_local.tokens import issue_token

from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Answer, Live, together

pytestmark = pytest.mark.slow

CLIENTS = 16


def provision_body(s: ps.Setup, code: str) -> dict[str, Any]:
    return {
        'campaignId': s.campaign_id,
        'brandId': s.brand['id'],
        'denomination': float(ps.dollars(s.denomination_cents)),
        'redemptionCode': code,
    }


def in_lanes(live: Live, lanes: int, requests: list[tuple[str, str, str, dict[str, Any]]]) -> list[Answer]:
    """The requests spread over `lanes` concurrent clients (each sends its share one after another); the
    answers in the order of the requests."""
    answers: list[Answer | None] = [None] * len(requests)

    def lane(first: int) -> None:
        for i in range(first, len(requests), lanes):
            method, path, token, body = requests[i]
            answers[i] = live.call(method, path, token=token, json_body=body)

    failures = [r for r in together([lambda i=i: lane(i) for i in range(lanes)]) if isinstance(r, BaseException)]
    assert not failures, failures
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def available_cards(pool_id: str) -> int:
    (row,) = ps.query('SELECT count(*) AS n FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool_id)
    return int(row['n'])


def test_96_issued_codes_from_16_clients_each_get_their_own_card(live: Live, owner: Any) -> None:
    s = ps.setup(owner, funds_cents=96 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 100)
    admin = issue_token(s.tree.client_admin)
    issued = live.call(
        'POST',
        f'/campaigns/{s.campaign_id}/codes',
        token=admin,
        json_body={'brand_id': s.brand['id'], 'denomination': 25, 'count': 96},
    )
    assert issued.status == 201, issued.text
    codes = issued.json()['codes']
    integration = issue_token(s.tree.integration)

    answers = in_lanes(
        live, CLIENTS, [('POST', '/provision-gift-card', integration, provision_body(s, code)) for code in codes]
    )

    assert [a.status for a in answers] == [200] * 96, Counter(a.text for a in answers if a.status != 200)
    bodies = [a.json() for a in answers]
    mismatched = [
        (code, b['redemption']['redemptionCodeLast4'])
        for code, b in zip(codes, bodies, strict=True)
        if b['redemption']['redemptionCodeLast4'] != code[-4:]
    ]
    assert mismatched == []  # every answer is its own request's
    assert len({b['redemption']['id'] for b in bodies}) == 96
    assert len({b['card']['cardCode'] for b in bodies}) == 96
    assert not any(b.get('replayed') for b in bodies)
    assert factories.balance_cents(s.paying_account) == 0
    assert available_cards(pool) == 4
    assert len(ps.redemptions_of(s.campaign_id)) == 96
    assert factories.ledger_check().ok


def test_overdraft_race_sells_exactly_the_cards_the_budget_pays_for(live: Live, owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 60)
    integration = issue_token(s.tree.integration)
    codes = [ps.new_code() for _ in range(48)]

    answers = in_lanes(
        live, CLIENTS, [('POST', '/provision-gift-card', integration, provision_body(s, code)) for code in codes]
    )

    sold = [(code, a.json()) for code, a in zip(codes, answers, strict=True) if a.status == 200]
    refused = [a for a in answers if a.status != 200]
    assert len(sold) == 10
    assert {(a.status, a.error_code) for a in refused} <= {(409, 'insufficient_credit'), (409, 'campaign_not_active')}
    assert all(body['redemption']['redemptionCodeLast4'] == code[-4:] for code, body in sold)
    assert len({body['card']['cardCode'] for _, body in sold}) == 10
    assert factories.balance_cents(s.paying_account) == 0
    assert available_cards(pool) == 50
    assert len(ps.redemptions_of(s.campaign_id)) == 10
    assert factories.ledger_check().ok


def test_one_code_sent_by_16_clients_at_once_buys_one_card_and_every_answer_is_the_same(live: Live, owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 5)
    integration = issue_token(s.tree.integration)
    code = ps.new_code()

    answers = in_lanes(
        live, CLIENTS, [('POST', '/provision-gift-card', integration, provision_body(s, code))] * CLIENTS
    )

    assert [a.status for a in answers] == [200] * CLIENTS
    bodies = [a.json() for a in answers]
    assert sum(not b.get('replayed') for b in bodies) == 1
    for body in bodies:
        body.pop('replayed', None)
    assert all(b == bodies[0] for b in bodies)
    assert bodies[0]['redemption']['redemptionCodeLast4'] == code[-4:]
    assert factories.balance_cents(s.paying_account) == 9 * 2500
    assert available_cards(pool) == 4
    assert len(ps.redemptions_of(s.campaign_id)) == 1
    assert factories.ledger_check().ok


def test_30_allocations_of_what_covers_10_move_exactly_10(live: Live, owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10 * 2500, tree.agency['account_id'])
    admin = issue_token(tree.agency_admin)
    body = {'fromAccountId': tree.agency['account_id'], 'toAccountId': tree.client['account_id'], 'amount': 25}

    answers = in_lanes(live, CLIENTS, [('POST', '/allocate-credit', admin, body)] * 30)

    moved = [a.json() for a in answers if a.status == 200]
    refused = [(a.status, a.error_code) for a in answers if a.status != 200]
    assert len(moved) == 10
    assert set(refused) == {(409, 'insufficient_credit')}
    # Each answer is its own movement: ten distinct transfers, the source's balance after each one a step lower.
    assert len({m['outTransaction']['transfer_id'] for m in moved}) == 10
    assert sorted(Decimal(str(m['fromAccountBalance'])) for m in moved) == [Decimal(25 * i) for i in range(10)]
    assert sorted(Decimal(str(m['toAccountBalance'])) for m in moved) == [Decimal(25 * i) for i in range(1, 11)]
    assert factories.balance_cents(tree.agency['account_id']) == 0
    assert factories.balance_cents(tree.client['account_id']) == 10 * 2500
    assert factories.ledger_check().ok


def test_one_idempotency_key_sent_by_16_clients_at_once_moves_credit_once(live: Live, owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10 * 2500, tree.agency['account_id'])
    admin = issue_token(tree.agency_admin)
    body = {'fromAccountId': tree.agency['account_id'], 'toAccountId': tree.client['account_id'], 'amount': 25}
    key = factories.unique('key')

    answers = together(
        [
            lambda: live.call('POST', '/allocate-credit', token=admin, json_body=body, headers={'Idempotency-Key': key})
            for _ in range(CLIENTS)
        ]
    )

    assert all(isinstance(a, Answer) and a.status == 200 for a in answers), answers
    bodies = [a.json() for a in answers if isinstance(a, Answer)]
    assert all(b == bodies[0] for b in bodies)
    assert factories.balance_cents(tree.agency['account_id']) == 9 * 2500
    assert factories.ledger_check().ok


def test_one_code_sent_at_once_by_two_clients_integrations_buys_one_card_for_each(live: Live, owner: Any) -> None:
    a, b = ps.setup(owner, funds_cents=10 * 2500), ps.setup(owner, funds_cents=10 * 2500)
    pools = [ps.pool(s.admin, s.brand['id'], 2500, 2350, 5) for s in (a, b)]
    code = f'ORDER-{ps.new_code()}'
    sent = [(s, issue_token(s.tree.integration)) for s in (a, b)]

    answers = in_lanes(
        live,
        CLIENTS,
        [('POST', '/provision-gift-card', token, provision_body(s, code)) for s, token in sent] * (CLIENTS // 2),
    )

    assert [x.status for x in answers] == [200] * CLIENTS, Counter(x.text for x in answers if x.status != 200)
    for i, s in enumerate((a, b)):
        bodies = [x.json() for x in answers[i::2]]
        assert sum(not body.pop('replayed', False) for body in bodies) == 1  # one card and charge per client
        assert all(body == bodies[0] for body in bodies)
        assert bodies[0]['redemption']['campaignId'] == s.campaign_id
        assert factories.balance_cents(s.paying_account) == 9 * 2500
        assert available_cards(pools[i]) == 4
        assert len(ps.redemptions_of(s.campaign_id)) == 1
    assert answers[0].json()['card'] != answers[1].json()['card']
    assert factories.ledger_check().ok


def test_admins_of_two_levels_taking_turns_on_one_client_are_never_refused(live: Live, owner: Any) -> None:
    """Each environment remembers accounts' owners between requests; a client admin's scope does not see the agency's
    account. The agency's admin and the client's take turns without keys, in every environment of the server:
    every move is answered 200 (a remembered half row had answered the agency's admin 404)."""
    tree = factories.hierarchy_tree(owner)
    factories.fund(50_000, tree.agency['account_id'], tree.client['account_id'])
    factories.fund(50_000, tree.agency['account_id'])
    agency, client = issue_token(tree.agency_admin), issue_token(tree.client_admin)
    agency_to_client = {
        'fromAccountId': tree.agency['account_id'],
        'toAccountId': tree.client['account_id'],
        'amount': 1,
    }
    client_to_campaign = {
        'fromAccountId': tree.client['account_id'],
        'toAccountId': tree.campaign['account_id'],
        'amount': 1,
    }
    turns = 8

    answers = [
        live.call('POST', '/allocate-credit', token=token, json_body=body).status
        for _ in range(turns)
        for token, body in ((agency, agency_to_client), (client, client_to_campaign))
    ]

    assert answers == [200] * 2 * turns
    assert factories.balance_cents(tree.campaign['account_id']) == turns * 100
    assert factories.ledger_check().ok
