"""GET /accounts/{id} and GET /accounts/{id}/transactions through the admin function's handler."""

from __future__ import annotations

from typing import Any

import pytest
from dashboards_app import lambda_handler
from giftcards import db, ledger

from tests import factories
from tests.events import call, http_event
from tests.ledger_fixtures import ledger_stays_consistent, move, platform_account

__all__ = ['ledger_stays_consistent']
pytestmark = pytest.mark.usefixtures('ledger_stays_consistent')


def get(path: str, subject: str | None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, body = call(lambda_handler, http_event('GET', path, subject=subject, query=query))
    return status, body


@pytest.fixture
def tree(owner: Any) -> factories.Tree:
    return factories.hierarchy_tree(owner, budget_mode='isolated')


def test_an_account_shows_its_owner_parent_and_balance(owner: Any, tree: factories.Tree) -> None:
    factories.fund(12_345, tree.agency['account_id'], tree.client['account_id'])
    [[created_at]] = owner.run(
        'SELECT created_at FROM credit_accounts WHERE id = CAST(:id AS uuid)', id=tree.client['account_id']
    )

    status, body = get(f'/accounts/{tree.client["account_id"]}', tree.client_admin)

    assert status == 200, body
    assert body == {
        'account_id': tree.client['account_id'],
        'owner_type': 'client',
        'owner_id': tree.client['id'],
        'system_name': None,
        'parent_account_id': tree.agency['account_id'],
        'balance': 123.45,
        # as `datetime.isoformat` writes it (`...+00:00`, api.models.IsoTimestamp), not as pydantic would (`...Z`)
        'created_at': created_at.isoformat(),
    }


def test_transactions_are_the_accounts_entries_newest_first(tree: factories.Tree) -> None:
    agency, client = tree.agency['account_id'], tree.client['account_id']
    factories.fund(10_000, agency)
    move(tree.agency_admin, 'allocation', agency, client, 3_000, notes='first')
    move(tree.agency_admin, 'reclaim', client, agency, 500)

    status, body = get(f'/accounts/{agency}/transactions', tree.agency_admin)

    assert status == 200, body
    assert body['next_cursor'] is None
    items = body['items']
    assert [(i['kind'], i['amount'], i['balance_after'], i['notes']) for i in items] == [
        ('reclaim', 5, 75, None),
        ('allocation', -30, 70, 'first'),
        ('allocation', 100, 100, None),
    ]
    assert [i['counter_account_id'] for i in items] == [client, client, platform_account()]
    assert items[0]['initiator'] == items[1]['initiator'] == tree.agency_admin
    assert items[0]['id'] > items[1]['id'] > items[2]['id']
    assert all(i['account_id'] == agency and i['transfer_id'] and i['created_at'] for i in items)


def test_transactions_are_paged_with_a_cursor(tree: factories.Tree) -> None:
    agency, client = tree.agency['account_id'], tree.client['account_id']
    factories.fund(10_000, agency)
    for cents in (100, 200, 300, 400):
        move(tree.agency_admin, 'allocation', agency, client, cents)

    first = get(f'/accounts/{client}/transactions', tree.agency_admin, {'limit': '3'})[1]
    second = get(f'/accounts/{client}/transactions', tree.agency_admin, {'limit': '3', 'cursor': first['next_cursor']})[
        1
    ]

    assert [i['amount'] for i in first['items']] == [4, 3, 2]
    assert [i['amount'] for i in second['items']] == [1]
    assert second['next_cursor'] is None


@pytest.mark.parametrize(
    'query',
    [
        {'limit': '0'},
        {'limit': '501'},
        {'limit': 'x'},
        {'cursor': 'garbage'},
        {'cursor': 'WyJ4Il0'},
        {'cursor': 'W3RydWVd'},
        {'cursor': 'Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XQ'},
    ],
)
def test_a_bad_limit_or_cursor_is_422(tree: factories.Tree, query: dict[str, str]) -> None:
    # ["x"], [true] and [99999999999999999999] in base64: well-formed cursors this API never issues
    status, body = get(f'/accounts/{tree.client["account_id"]}/transactions', tree.agency_admin, query)

    assert status == 422, body
    assert body['error']['code'] == 'validation_error'


def test_platform_admin_sees_the_platform_and_spend_accounts(tree: factories.Tree) -> None:
    spend = db.in_transaction(ledger.system_account)

    platform_status, platform = get(f'/accounts/{platform_account()}', tree.platform_admin)
    spend_status, spend_body = get(f'/accounts/{spend}', tree.platform_admin)

    assert (platform_status, platform['owner_type']) == (200, 'platform')
    assert (spend_status, spend_body['owner_type'], spend_body['system_name']) == (200, 'system', 'spend')


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'integration'])
def test_only_platform_admins_see_the_platform_and_spend_accounts(tree: factories.Tree, role: str) -> None:
    spend = db.in_transaction(ledger.system_account)
    subject = getattr(tree, role)

    assert get(f'/accounts/{platform_account()}', subject)[0] == 404
    assert get(f'/accounts/{spend}/transactions', subject)[0] == 404


@pytest.mark.parametrize(
    ('role', 'level', 'visible'),
    [
        ('agency_admin', 'agency', True),
        ('agency_admin', 'client', True),
        ('agency_admin', 'campaign', True),
        ('client_admin', 'agency', False),
        ('client_admin', 'client', True),
        ('client_admin', 'campaign', True),
        ('integration', 'agency', False),
        ('integration', 'client', False),
        ('integration', 'campaign', False),
    ],
)
def test_accounts_are_visible_like_their_owners(tree: factories.Tree, role: str, level: str, visible: bool) -> None:
    account = getattr(tree, level)['account_id']

    status, body = get(f'/accounts/{account}', getattr(tree, role))
    history_status, _ = get(f'/accounts/{account}/transactions', getattr(tree, role))

    assert (status, history_status) == ((200, 200) if visible else (404, 404)), body


def test_another_agencys_accounts_are_404(owner: Any, tree: factories.Tree) -> None:
    other = factories.hierarchy_tree(owner)

    status, body = get(f'/accounts/{other.client["account_id"]}', tree.agency_admin)

    assert (status, body['error']['code']) == (404, 'not_found')
    assert get(f'/accounts/{other.campaign["account_id"]}/transactions', tree.client_admin)[0] == 404


@pytest.mark.parametrize('account_id', ['not-a-uuid', '00000000-0000-4000-8000-000000000000'])
def test_an_unknown_account_is_404(tree: factories.Tree, account_id: str) -> None:
    assert get(f'/accounts/{account_id}', tree.platform_admin)[0] == 404
    assert get(f'/accounts/{account_id}/transactions', tree.platform_admin)[0] == 404


def test_without_a_token_it_is_401(tree: factories.Tree) -> None:
    assert get(f'/accounts/{tree.client["account_id"]}', None)[0] == 401
