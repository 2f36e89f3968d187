"""POST /allocate-credit and POST /reclaim-credit through the allocate function's handler, with real v2 events."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from allocate_app import lambda_handler

from tests import factories
from tests.events import call, http_event
from tests.ledger_fixtures import balances, entries_of, ledger_stays_consistent, platform_account, transfer_count

__all__ = ['ledger_stays_consistent']
pytestmark = pytest.mark.usefixtures('ledger_stays_consistent')


def post(
    path: str, body: Any, subject: str | None, *, key: str | None = None, raw: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {'Idempotency-Key': key} if key is not None else None
    event = http_event('POST', path, body=body if raw is None else None, raw_body=raw, subject=subject, headers=headers)
    return call(lambda_handler, event)


def allocate(
    subject: str | None, source: str, target: str, amount: Any, **extra: Any
) -> tuple[int, dict[str, str], Any]:
    key = extra.pop('key', None)
    return post(
        '/allocate-credit',
        {'fromAccountId': source, 'toAccountId': target, 'amount': amount, **extra},
        subject,
        key=key,
    )


def reclaim(subject: str | None, child: str, parent: str, amount: Any, **extra: Any) -> tuple[int, dict[str, str], Any]:
    key = extra.pop('key', None)
    return post(
        '/reclaim-credit', {'fromAccountId': child, 'toAccountId': parent, 'amount': amount, **extra}, subject, key=key
    )


def assert_error(response: tuple[int, dict[str, str], Any], status: int, code: str) -> None:
    got_status, _, body = response
    assert (got_status, body['error']['code']) == (status, code), body
    assert body['success'] is False
    assert isinstance(body['error']['message'], str) and body['error']['message']


@pytest.fixture
def tree(owner: Any) -> factories.Tree:
    return factories.hierarchy_tree(owner, budget_mode='isolated')


def accounts(tree: factories.Tree) -> tuple[str, str, str]:
    return tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id']


# --- the answer ----------------------------------------------------------------------------------------


def test_allocation_answers_both_entries_and_both_balances(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(100_000, agency)

    status, headers, body = allocate(tree.agency_admin, agency, client, 250.75, notes='March budget')

    assert status == 200, body
    assert 'idempotent-replayed' not in headers
    transfer_id = body['outTransaction']['transfer_id']
    assert body == {
        'success': True,
        'outTransaction': {
            'id': body['outTransaction']['id'],
            'transfer_id': transfer_id,
            'account_id': agency,
            'counter_account_id': client,
            'kind': 'allocation',
            'amount': -250.75,
            'balance_after': 749.25,
            'notes': 'March budget',
            'initiator': tree.agency_admin,
            'created_at': body['outTransaction']['created_at'],
        },
        'inTransaction': {
            'id': body['inTransaction']['id'],
            'transfer_id': transfer_id,
            'account_id': client,
            'counter_account_id': agency,
            'kind': 'allocation',
            'amount': 250.75,
            'balance_after': 250.75,
            'notes': 'March budget',
            'initiator': tree.agency_admin,
            'created_at': body['outTransaction']['created_at'],
        },
        'fromAccountBalance': 749.25,
        'toAccountBalance': 250.75,
    }
    assert [(e['id'], e['transfer_id'], e['amount_cents'], e['balance_after_cents']) for e in entries_of(client)] == [
        (body['inTransaction']['id'], transfer_id, 25_075, 25_075)
    ]
    assert balances(agency, client) == [74_925, 25_075]


def test_platform_admin_funds_an_agency_from_the_platform_which_may_go_negative(tree: factories.Tree) -> None:
    platform = platform_account()
    (before,) = balances(platform)

    status, _, body = allocate(tree.platform_admin, platform, tree.agency['account_id'], 1_000_000_000)

    assert status == 200, body
    assert balances(platform, tree.agency['account_id']) == [before - 100_000_000_000, 100_000_000_000]
    assert body['fromAccountBalance'] == (before - 100_000_000_000) / 100
    assert body['toAccountBalance'] == 1_000_000_000


def test_client_admin_allocates_to_an_isolated_campaign_and_reclaims_it(tree: factories.Tree) -> None:
    agency, client, campaign = accounts(tree)
    factories.fund(10_000, agency, client)

    assert allocate(tree.client_admin, client, campaign, 60)[0] == 200
    status, _, body = reclaim(tree.client_admin, campaign, client, 25.5)

    assert status == 200, body
    assert body['outTransaction']['kind'] == body['inTransaction']['kind'] == 'reclaim'
    assert (body['outTransaction']['account_id'], body['outTransaction']['amount']) == (campaign, -25.5)
    assert (body['fromAccountBalance'], body['toAccountBalance']) == (34.5, 65.5)
    assert balances(client, campaign) == [6_550, 3_450]


def test_agency_admin_reclaims_unused_credit_from_its_client(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(5_000, agency, client)

    status, _, body = reclaim(tree.agency_admin, client, agency, 50)

    assert status == 200, body
    assert balances(agency, client) == [5_000, 0]


# --- the hierarchy -------------------------------------------------------------------------------------


def test_allocation_skipping_a_level_is_invalid_hierarchy(tree: factories.Tree) -> None:
    agency, _, campaign = accounts(tree)
    factories.fund(10_000, agency)

    assert_error(allocate(tree.agency_admin, agency, campaign, 10), 422, 'invalid_hierarchy')
    assert balances(agency, campaign) == [10_000, 0]


def test_allocation_upwards_is_invalid_hierarchy(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency, client)

    assert_error(allocate(tree.agency_admin, client, agency, 10), 422, 'invalid_hierarchy')
    assert balances(agency, client) == [0, 10_000]


def test_allocation_to_another_agencys_client_is_invalid_hierarchy(owner: Any, tree: factories.Tree) -> None:
    other = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'])

    response = allocate(tree.platform_admin, tree.agency['account_id'], other.client['account_id'], 10)

    assert_error(response, 422, 'invalid_hierarchy')
    assert balances(tree.agency['account_id'], other.client['account_id']) == [10_000, 0]


def test_allocation_to_a_shared_budget_campaign_is_refused(owner: Any) -> None:
    tree = factories.hierarchy_tree(owner, budget_mode='shared')
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])

    assert_error(
        allocate(tree.client_admin, tree.client['account_id'], tree.campaign['account_id'], 10),
        422,
        'invalid_hierarchy',
    )
    assert balances(tree.client['account_id'], tree.campaign['account_id']) == [10_000, 0]


def test_reclaim_from_a_grandchild_is_invalid_hierarchy(tree: factories.Tree) -> None:
    agency, client, campaign = accounts(tree)
    factories.fund(10_000, agency, client, campaign)

    assert_error(reclaim(tree.agency_admin, campaign, agency, 10), 422, 'invalid_hierarchy')
    assert balances(agency, client, campaign) == [0, 0, 10_000]


def test_reclaim_downwards_is_invalid_hierarchy(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)

    assert_error(reclaim(tree.agency_admin, agency, client, 10), 422, 'invalid_hierarchy')


def test_moving_credit_to_the_same_account_is_invalid_hierarchy(tree: factories.Tree) -> None:
    agency = tree.agency['account_id']
    factories.fund(10_000, agency)

    assert_error(allocate(tree.agency_admin, agency, agency, 10), 422, 'invalid_hierarchy')


def test_nothing_may_be_allocated_from_the_spend_account(tree: factories.Tree) -> None:
    from giftcards import db, ledger

    spend = db.in_transaction(ledger.system_account)

    assert_error(allocate(tree.platform_admin, spend, tree.agency['account_id'], 10), 422, 'invalid_hierarchy')


# --- credit --------------------------------------------------------------------------------------------


def test_allocating_more_than_the_balance_is_insufficient_credit_and_moves_nothing(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)
    count = transfer_count()

    assert_error(allocate(tree.agency_admin, agency, client, 100.01), 409, 'insufficient_credit')
    assert balances(agency, client) == [10_000, 0]
    assert transfer_count() == count


def test_reclaiming_more_than_the_child_holds_is_insufficient_credit(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency, client)

    assert_error(reclaim(tree.agency_admin, client, agency, 100.01), 409, 'insufficient_credit')
    assert balances(agency, client) == [0, 10_000]


def test_the_whole_balance_can_be_allocated(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)

    assert allocate(tree.agency_admin, agency, client, 100)[0] == 200
    assert balances(agency, client) == [0, 10_000]


# --- money and the body --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('raw_amount', 'field_message'),
    [
        ('10.001', 'at most 2 decimal places'),
        ('0', 'greater than 0'),
        ('0.00', 'greater than 0'),
        ('-5', 'greater than 0'),
        ('"10"', 'JSON number'),
        ('"ten"', 'JSON number'),
        ('true', 'JSON number'),
        ('null', 'JSON number'),
        ('NaN', 'finite'),
        ('Infinity', 'finite'),
        ('-Infinity', 'finite'),
        ('1000000000.01', 'at most 1000000000'),
        ('1e10', 'at most 1000000000'),
    ],
)
def test_an_invalid_amount_is_422_and_moves_nothing(tree: factories.Tree, raw_amount: str, field_message: str) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)
    raw = f'{{"fromAccountId": "{agency}", "toAccountId": "{client}", "amount": {raw_amount}}}'

    response = post('/allocate-credit', None, tree.agency_admin, raw=raw)

    assert_error(response, 422, 'validation_error')
    details = response[2]['error']['details']
    assert details[0]['field'] == 'amount'
    assert field_message in details[0]['message']
    assert balances(agency, client) == [10_000, 0]


@pytest.mark.parametrize(('amount', 'cents'), [('27.5', 2_750), ('0.01', 1), ('1e1', 1_000), ('12.30', 1_230)])
def test_decimal_amounts_move_exact_cents(tree: factories.Tree, amount: str, cents: int) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(100_000, agency)
    raw = f'{{"fromAccountId": "{agency}", "toAccountId": "{client}", "amount": {amount}}}'

    status, _, body = post('/allocate-credit', None, tree.agency_admin, raw=raw)

    assert status == 200, body
    assert balances(client) == [cents]


def test_malformed_json_is_400(tree: factories.Tree) -> None:
    assert_error(post('/allocate-credit', None, tree.agency_admin, raw='{"amount": '), 400, 'malformed_json')


@pytest.mark.parametrize(
    'change',
    [
        {'unexpected': 1},
        {'fromAccountId': 'not-a-uuid'},
        {'toAccountId': None},
        {'notes': 'x' * 501},
        {'notes': 12},
    ],
)
def test_a_malformed_body_is_422(tree: factories.Tree, change: dict[str, Any]) -> None:
    body = {'fromAccountId': tree.agency['account_id'], 'toAccountId': tree.client['account_id'], 'amount': 1, **change}

    assert_error(post('/allocate-credit', body, tree.agency_admin), 422, 'validation_error')


def test_a_missing_field_is_422(tree: factories.Tree) -> None:
    response = post('/allocate-credit', {'fromAccountId': tree.agency['account_id'], 'amount': 1}, tree.agency_admin)

    assert_error(response, 422, 'validation_error')
    assert response[2]['error']['details'][0]['field'] == 'toAccountId'


# --- idempotency ---------------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_answer_and_moves_once(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)

    first = allocate(tree.agency_admin, agency, client, 30, key='march-budget-1')
    again = allocate(tree.agency_admin, agency, client, 30.00, key='march-budget-1')

    assert first[0] == again[0] == 200
    assert again[2] == first[2]
    assert again[1]['idempotent-replayed'] == 'true'
    assert 'idempotent-replayed' not in first[1]
    assert balances(agency, client) == [7_000, 3_000]
    assert len(entries_of(client)) == 1


def test_the_same_key_with_another_body_is_a_conflict(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)
    assert allocate(tree.agency_admin, agency, client, 30, key='k-1')[0] == 200

    assert_error(allocate(tree.agency_admin, agency, client, 31, key='k-1'), 409, 'idempotency_conflict')
    assert_error(allocate(tree.agency_admin, agency, client, 30, notes='other', key='k-1'), 409, 'idempotency_conflict')
    assert balances(agency, client) == [7_000, 3_000]


def test_the_same_key_on_the_other_route_is_a_conflict(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)
    assert allocate(tree.agency_admin, agency, client, 30, key='k-route')[0] == 200

    # the same fields sent to /reclaim-credit ask for something else
    assert_error(reclaim(tree.agency_admin, agency, client, 30, key='k-route'), 409, 'idempotency_conflict')


def test_keys_are_scoped_to_the_caller(owner: Any, tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    colleague = factories.agency_admin(owner, tree.agency['id'])
    factories.fund(10_000, agency)

    assert allocate(tree.agency_admin, agency, client, 30, key='shared-key')[0] == 200
    status, headers, _ = allocate(colleague, agency, client, 30, key='shared-key')

    assert status == 200
    assert 'idempotent-replayed' not in headers
    assert balances(agency, client) == [4_000, 6_000]


def test_a_key_bound_by_an_earlier_release_still_replays_its_movement(owner: Any, tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(10_000, agency)
    first = allocate(tree.agency_admin, agency, client, 30, notes='april', key='from-before')
    # What earlier releases stored: a fingerprint naming the route rather than the kind of movement, and the answer.
    canonical = json.dumps(['/allocate-credit', agency, client, 3_000, 'april'], separators=(',', ':'))
    owner.run(
        'UPDATE idempotency_keys SET request_hash = :h, response = CAST(:r AS jsonb) WHERE scope = :s AND key = :k',
        h=hashlib.sha256(canonical.encode()).hexdigest(),
        r=json.dumps(first[2]),
        s=tree.agency_admin,
        k='from-before',
    )

    again = allocate(tree.agency_admin, agency, client, 30, notes='april', key='from-before')

    assert again[0] == 200 and again[1]['idempotent-replayed'] == 'true'
    assert again[2] == first[2]
    assert balances(agency, client) == [7_000, 3_000]


def test_a_refused_request_leaves_its_key_unused(tree: factories.Tree) -> None:
    agency, client, _ = accounts(tree)
    factories.fund(1_000, agency)

    assert_error(allocate(tree.agency_admin, agency, client, 20, key='retry-me'), 409, 'insufficient_credit')
    factories.fund(1_000, agency)
    status, headers, _ = allocate(tree.agency_admin, agency, client, 20, key='retry-me')

    assert status == 200
    assert 'idempotent-replayed' not in headers
    assert balances(agency, client) == [0, 2_000]


@pytest.mark.parametrize('key', ['', 'k' * 256, 'tab\there'])
def test_an_idempotency_key_not_1_to_255_printable_characters_is_422(tree: factories.Tree, key: str) -> None:
    factories.fund(1_000, tree.agency['account_id'])

    response = allocate(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 1, key=key)

    assert_error(response, 422, 'validation_error')
    assert response[2]['error']['details'] == [
        {'field': 'Idempotency-Key', 'message': 'must be 1 to 255 printable characters'}
    ]
    assert balances(tree.client['account_id']) == [0]


def test_a_255_character_key_is_accepted(tree: factories.Tree) -> None:
    factories.fund(1_000, tree.agency['account_id'])

    assert allocate(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 1, key='k' * 255)[0] == 200


# --- authorization -------------------------------------------------------------------------------------


def test_without_a_token_it_is_401(tree: factories.Tree) -> None:
    assert_error(allocate(None, tree.agency['account_id'], tree.client['account_id'], 1), 401, 'unauthorized')


def test_a_caller_without_membership_gets_404(tree: factories.Tree) -> None:
    factories.fund(1_000, tree.agency['account_id'])

    response = allocate(factories.stranger(), tree.agency['account_id'], tree.client['account_id'], 1)

    assert_error(response, 404, 'not_found')
    assert balances(tree.agency['account_id']) == [1_000]


def test_an_agency_admin_cannot_reach_another_agencys_accounts(owner: Any, tree: factories.Tree) -> None:
    other = factories.hierarchy_tree(owner)
    factories.fund(1_000, other.agency['account_id'])

    response = allocate(tree.agency_admin, other.agency['account_id'], other.client['account_id'], 1)

    assert_error(response, 404, 'not_found')
    assert balances(other.agency['account_id']) == [1_000]


def test_an_agency_admin_cannot_fund_itself_from_the_platform(tree: factories.Tree) -> None:
    assert_error(allocate(tree.agency_admin, platform_account(), tree.agency['account_id'], 1), 404, 'not_found')


def test_a_client_admin_cannot_reclaim_into_the_agency(tree: factories.Tree) -> None:
    factories.fund(1_000, tree.agency['account_id'], tree.client['account_id'])

    response = reclaim(tree.client_admin, tree.client['account_id'], tree.agency['account_id'], 1)

    assert_error(response, 404, 'not_found')
    assert balances(tree.client['account_id']) == [1_000]


def test_a_client_admin_cannot_allocate_to_another_clients_campaign(owner: Any, tree: factories.Tree) -> None:
    sibling_client = factories.client(tree.agency['id'])
    sibling_campaign = factories.campaign(sibling_client['id'])
    factories.fund(1_000, tree.agency['account_id'], tree.client['account_id'])

    response = allocate(tree.client_admin, tree.client['account_id'], sibling_campaign['account_id'], 1)

    assert_error(response, 404, 'not_found')


def test_an_integration_sees_no_account_of_its_client_and_moves_no_credit(tree: factories.Tree) -> None:
    agency, client, campaign = accounts(tree)
    factories.fund(1_000, agency, client)

    assert_error(allocate(tree.integration, client, campaign, 1), 404, 'not_found')
    assert balances(client, campaign) == [1_000, 0]


def test_an_unknown_account_is_404(tree: factories.Tree) -> None:
    unknown = '00000000-0000-4000-8000-000000000000'

    assert_error(allocate(tree.platform_admin, tree.agency['account_id'], unknown, 1), 404, 'not_found')
