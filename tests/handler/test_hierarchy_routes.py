"""The hierarchy and catalogue routes through the admin function: answers, accounts, audit rows, pages."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from admin_app import lambda_handler
from giftcards import db, ledger_checks
from giftcards.auth import is_uuid
from giftcards.money import to_dollars

from tests import factories
from tests.events import call, http_event


def send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event(method, path, subject=subject, **kwargs))


def account(owner: Any, account_id: str) -> dict[str, Any]:
    [[owner_type, owner_id, parent_id, balance_cents]] = owner.run(
        'SELECT owner_type, owner_id::text, parent_id::text, balance_cents FROM credit_accounts'
        ' WHERE id = CAST(:id AS uuid)',
        id=account_id,
    )
    return {'owner_type': owner_type, 'owner_id': owner_id, 'parent_id': parent_id, 'balance_cents': balance_cents}


def audit_rows(owner: Any, entity_id: str) -> list[tuple[str, str, str, Any]]:
    rows = owner.run(
        'SELECT actor, action, entity_type, details FROM audit_events WHERE entity_id = CAST(:id AS uuid) ORDER BY id',
        id=entity_id,
    )
    return [tuple(r) for r in rows]


def assert_ledger_ok() -> None:
    report = factories.ledger_check()
    assert report.ok, report.summary()


@pytest.fixture
def tree(owner: Any) -> factories.Tree:
    return factories.hierarchy_tree(owner)


# --- platform ------------------------------------------------------------------------------------------


def test_platform_admin_reads_the_platform_account(owner, tree):
    status, _, body = send('GET', '/platform', tree.platform_admin)
    [[account_id, balance_cents]] = owner.run(
        "SELECT id::text, balance_cents FROM credit_accounts WHERE owner_type = 'platform'"
    )
    assert status == 200
    assert body == {'account_id': account_id, 'balance': to_dollars(balance_cents)}


def test_platform_balance_goes_negative_by_the_credit_issued(tree):
    before = send('GET', '/platform', tree.platform_admin)[2]['balance']
    factories.fund(12_345, tree.agency['account_id'])
    after = send('GET', '/platform', tree.platform_admin)[2]['balance']
    assert round(after - before, 2) == -123.45


# --- agencies ------------------------------------------------------------------------------------------


def test_create_agency_answers_201_with_the_agency(tree):
    status, headers, body = send('POST', '/agencies', tree.platform_admin, body={'name': '  Northwind Agency  '})
    assert status == 201
    assert headers['content-type'] == 'application/json'
    assert body == {
        'id': body['id'],
        'name': 'Northwind Agency',
        'account_id': body['account_id'],
        'balance': 0,
        'created_at': body['created_at'],
    }
    assert is_uuid(body['id'])
    assert is_uuid(body['account_id'])
    assert body['created_at'].startswith('20')


def test_created_agency_account_hangs_under_the_platform(owner, tree):
    body = send('POST', '/agencies', tree.platform_admin, body={'name': factories.unique('Agency')})[2]
    [[platform_id]] = owner.run("SELECT id::text FROM credit_accounts WHERE owner_type = 'platform'")
    assert account(owner, body['account_id']) == {
        'owner_type': 'agency',
        'owner_id': body['id'],
        'parent_id': platform_id,
        'balance_cents': 0,
    }


def test_creating_an_agency_is_audited(owner, tree):
    name = factories.unique('Agency')
    body = send('POST', '/agencies', tree.platform_admin, body={'name': name})[2]
    assert audit_rows(owner, body['id']) == [(tree.platform_admin, 'agency.created', 'agency', {'name': name})]


def test_platform_admin_lists_every_agency(tree):
    other = factories.agency()
    # Every page, following the cursor: a long test session holds more agencies than one page.
    ids, query = [], {'limit': '100'}
    while True:
        status, _, body = send('GET', '/agencies', tree.platform_admin, query=query)
        assert status == 200
        ids += [a['id'] for a in body['items']]
        if body['next_cursor'] is None:
            break
        query = {'limit': '100', 'cursor': body['next_cursor']}
    assert {tree.agency['id'], other['id']} <= set(ids)
    assert len(ids) == len(set(ids))


def test_agency_admin_lists_only_its_own_agency(tree):
    factories.agency()
    status, _, body = send('GET', '/agencies', tree.agency_admin)
    assert status == 200
    assert body == {'items': [tree.agency], 'next_cursor': None}


@pytest.mark.parametrize('role', ['client_admin', 'integration'])
def test_client_members_list_no_agencies(tree, role):
    assert send('GET', '/agencies', getattr(tree, role)) == (
        200,
        {'content-type': 'application/json'},
        {'items': [], 'next_cursor': None},
    )


def test_agency_admin_reads_its_agency_with_its_balance(tree):
    factories.fund(250_050, tree.agency['account_id'])
    status, _, body = send('GET', f'/agencies/{tree.agency["id"]}', tree.agency_admin)
    assert status == 200
    assert body == {**tree.agency, 'balance': 2500.5}


# --- clients -------------------------------------------------------------------------------------------


def test_agency_admin_creates_a_client_under_its_agency(owner, tree):
    status, _, body = send('POST', f'/agencies/{tree.agency["id"]}/clients', tree.agency_admin, body={'name': 'Acme'})
    assert status == 201
    assert body == {
        'id': body['id'],
        'agency_id': tree.agency['id'],
        'name': 'Acme',
        'account_id': body['account_id'],
        'balance': 0,
    }
    assert account(owner, body['account_id']) == {
        'owner_type': 'client',
        'owner_id': body['id'],
        'parent_id': tree.agency['account_id'],
        'balance_cents': 0,
    }
    assert audit_rows(owner, body['id']) == [
        (tree.agency_admin, 'client.created', 'client', {'name': 'Acme', 'agency_id': tree.agency['id']})
    ]


def test_platform_admin_creates_a_client_for_any_agency(tree):
    status, _, body = send('POST', f'/agencies/{tree.agency["id"]}/clients', tree.platform_admin, body={'name': 'X'})
    assert (status, body['agency_id']) == (201, tree.agency['id'])


def test_agency_admin_lists_its_clients(tree):
    second = factories.client(tree.agency['id'])
    status, _, body = send('GET', f'/agencies/{tree.agency["id"]}/clients', tree.agency_admin)
    assert status == 200
    assert body == {'items': [tree.client, second], 'next_cursor': None}


@pytest.mark.parametrize('role', ['platform_admin', 'agency_admin', 'client_admin'])
def test_admins_of_the_branch_read_the_client(tree, role):
    factories.fund(5_000, tree.agency['account_id'], tree.client['account_id'])
    status, _, body = send('GET', f'/clients/{tree.client["id"]}', getattr(tree, role))
    assert status == 200
    assert body == {**tree.client, 'balance': 50}


# --- campaigns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize('role', ['platform_admin', 'agency_admin', 'client_admin'])
def test_admins_create_a_campaign_under_the_client(owner, tree, role):
    subject = getattr(tree, role)
    status, _, body = send(
        'POST', f'/clients/{tree.client["id"]}/campaigns', subject, body={'name': ' Spring ', 'budget_mode': 'shared'}
    )
    assert status == 201
    assert body == {
        'id': body['id'],
        'client_id': tree.client['id'],
        'name': 'Spring',
        'status': 'active',
        'budget_mode': 'shared',
        'account_id': body['account_id'],
        'balance': 0,
    }
    assert account(owner, body['account_id']) == {
        'owner_type': 'campaign',
        'owner_id': body['id'],
        'parent_id': tree.client['account_id'],
        'balance_cents': 0,
    }
    assert audit_rows(owner, body['id']) == [
        (
            subject,
            'campaign.created',
            'campaign',
            {'name': 'Spring', 'client_id': tree.client['id'], 'budget_mode': 'shared'},
        ),
    ]


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin'])
def test_admins_of_the_branch_list_the_campaigns(tree, role):
    second = factories.campaign(tree.client['id'], budget_mode='shared')
    status, _, body = send('GET', f'/clients/{tree.client["id"]}/campaigns', getattr(tree, role))
    assert status == 200
    assert body == {'items': [tree.campaign, second], 'next_cursor': None}


def test_campaign_answers_with_its_balance(tree):
    factories.fund(2_550, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    status, _, body = send('GET', f'/campaigns/{tree.campaign["id"]}', tree.client_admin)
    assert status == 200
    assert body == {**tree.campaign, 'balance': 25.5}


# --- PATCH /campaigns/{id} -----------------------------------------------------------------------------


def campaign_row(owner: Any, campaign_id: str) -> tuple[str, str | None, str]:
    [[status, reason, mode]] = owner.run(
        'SELECT status, paused_reason, budget_mode FROM campaigns WHERE id = CAST(:id AS uuid)', id=campaign_id
    )
    return status, reason, mode


def patch(tree: factories.Tree, body: dict[str, Any], subject: str | None = None) -> tuple[int, Any]:
    status, _, answer = send('PATCH', f'/campaigns/{tree.campaign["id"]}', subject or tree.client_admin, body=body)
    return status, answer


def test_pausing_a_campaign_marks_it_paused_manually(owner, tree):
    status, body = patch(tree, {'status': 'paused'})
    assert status == 200
    assert body == {**tree.campaign, 'status': 'paused'}
    assert campaign_row(owner, tree.campaign['id']) == ('paused', 'manual', 'isolated')


def test_resuming_a_campaign_clears_the_pause_reason(owner, tree):
    patch(tree, {'status': 'paused'})
    status, body = patch(tree, {'status': 'active'})
    assert (status, body['status']) == (200, 'active')
    assert campaign_row(owner, tree.campaign['id']) == ('active', None, 'isolated')


def test_resuming_a_depleted_campaign_clears_the_monitor_pause(owner, tree):
    owner.run(
        "UPDATE campaigns SET status = 'paused', paused_reason = 'depleted' WHERE id = CAST(:id AS uuid)",
        id=tree.campaign['id'],
    )
    assert patch(tree, {'status': 'active'})[0] == 200
    assert campaign_row(owner, tree.campaign['id']) == ('active', None, 'isolated')


def test_pausing_is_audited_with_the_change(owner, tree):
    patch(tree, {'status': 'paused'})
    assert audit_rows(owner, tree.campaign['id'])[-1] == (
        tree.client_admin,
        'campaign.updated',
        'campaign',
        {'status': {'from': 'active', 'to': 'paused'}},
    )


def test_an_ended_campaign_cannot_be_changed(owner, tree):
    assert patch(tree, {'status': 'ended'})[0] == 200
    for change in ({'status': 'active'}, {'status': 'paused'}, {'budget_mode': 'shared'}):
        status, body = patch(tree, change)
        assert status == 409
        assert body == {
            'success': False,
            'error': {'code': 'campaign_ended', 'message': 'An ended campaign cannot be changed.'},
        }
    assert campaign_row(owner, tree.campaign['id']) == ('ended', None, 'isolated')


def test_ending_an_ended_campaign_again_changes_nothing(owner, tree):
    patch(tree, {'status': 'ended'})
    audited = len(audit_rows(owner, tree.campaign['id']))
    status, body = patch(tree, {'status': 'ended'})
    assert (status, body['status']) == (200, 'ended')
    assert len(audit_rows(owner, tree.campaign['id'])) == audited


def test_switching_an_isolated_campaign_to_shared_returns_its_balance_to_the_client(owner, tree):
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])
    factories.fund(4_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    assert factories.balance_cents(tree.campaign['account_id']) == 4_000

    status, body = patch(tree, {'budget_mode': 'shared'})

    assert status == 200
    assert body == {**tree.campaign, 'budget_mode': 'shared', 'balance': 0}
    assert factories.balance_cents(tree.client['account_id']) == 14_000
    [[kind, amount, initiator]] = owner.run(
        'SELECT kind, amount_cents, initiator FROM credit_transfers'
        ' WHERE from_account_id = CAST(:c AS uuid) AND to_account_id = CAST(:cl AS uuid)',
        c=tree.campaign['account_id'],
        cl=tree.client['account_id'],
    )
    assert (kind, amount, initiator) == ('reclaim', 4_000, tree.client_admin)
    details = audit_rows(owner, tree.campaign['id'])[-1][3]
    assert details['budget_mode'] == {'from': 'isolated', 'to': 'shared'}
    assert details['returned_to_client']['amount_cents'] == 4_000
    assert_ledger_ok()


def test_switching_shared_to_isolated_starts_the_campaign_at_zero(owner):
    tree = factories.hierarchy_tree(owner, budget_mode='shared')
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])
    status, body = patch(tree, {'budget_mode': 'isolated'})
    assert status == 200
    assert body == {**tree.campaign, 'budget_mode': 'isolated', 'balance': 0}
    assert factories.balance_cents(tree.client['account_id']) == 10_000
    assert_ledger_ok()


def test_status_and_budget_mode_change_together(owner, tree):
    factories.fund(3_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    status, body = patch(tree, {'status': 'paused', 'budget_mode': 'shared'})
    assert status == 200
    assert (body['status'], body['budget_mode'], body['balance']) == ('paused', 'shared', 0)
    assert campaign_row(owner, tree.campaign['id']) == ('paused', 'manual', 'shared')
    assert factories.balance_cents(tree.client['account_id']) == 3_000
    assert_ledger_ok()


# --- brands --------------------------------------------------------------------------------------------


def test_create_brand_answers_201_with_denominations_and_prices(owner, tree):
    name = factories.unique('Amazon')
    status, _, body = send(
        'POST',
        '/brands',
        tree.platform_admin,
        body={
            'name': f'  {name} ',
            'denominations': [50, 25, 27.5],
            'prices': [
                {'denomination': 25, 'agency_price': 26, 'client_price': 27.5},
                {'denomination': 50, 'client_price': 53.25},
            ],
        },
    )
    assert status == 201
    assert body == {
        'id': body['id'],
        'name': name,
        'denominations': [25, 27.5, 50],
        'prices': [
            {'denomination': 25, 'agency_price': 26, 'client_price': 27.5},
            {'denomination': 50, 'agency_price': None, 'client_price': 53.25},
        ],
        'created_at': body['created_at'],
    }
    assert owner.run(
        'SELECT denomination_cents, agency_price_cents, client_price_cents FROM brand_prices'
        ' WHERE brand_id = CAST(:id AS uuid) ORDER BY 1',
        id=body['id'],
    ) == [[2500, 2600, 2750], [5000, None, 5325]]
    assert [row[:3] for row in audit_rows(owner, body['id'])] == [(tree.platform_admin, 'brand.created', 'brand')]


def test_brand_without_prices_has_an_empty_price_list(tree):
    status, _, body = send(
        'POST', '/brands', tree.platform_admin, body={'name': factories.unique('B'), 'denominations': [10]}
    )
    assert (status, body['denominations'], body['prices']) == (201, [10], [])


def test_brand_names_are_unique_ignoring_case_and_spaces(tree):
    name = factories.unique('Target')
    assert send('POST', '/brands', tree.platform_admin, body={'name': name, 'denominations': [25]})[0] == 201
    status, _, body = send(
        'POST', '/brands', tree.platform_admin, body={'name': f' {name.upper()} ', 'denominations': [50]}
    )
    assert status == 409
    assert body['success'] is False
    assert body['error']['code'] == 'duplicate_brand'


@pytest.mark.parametrize('role', ['platform_admin', 'agency_admin', 'client_admin'])
def test_any_admin_reads_the_catalogue(tree, role):
    created = factories.brand(denominations_cents=(1000, 2000))
    subject = getattr(tree, role)
    status, _, one = send('GET', f'/brands/{created["id"]}', subject)
    assert (status, one) == (200, created)
    brands: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {'limit': '500', **({'cursor': cursor} if cursor else {})}
        status, _, page = send('GET', '/brands', subject, query=query)
        assert status == 200
        brands += page['items']
        cursor = page['next_cursor']
        if cursor is None:
            break
    assert created in brands


def test_an_integration_reads_no_catalogue(tree):
    created = factories.brand()
    assert send('GET', f'/brands/{created["id"]}', tree.integration)[0] == 404
    assert send('GET', '/brands', tree.integration)[2] == {'items': [], 'next_cursor': None}


# --- pagination ----------------------------------------------------------------------------------------


def test_clients_are_paged_in_creation_order(tree):
    created = [tree.client] + [factories.client(tree.agency['id']) for _ in range(6)]
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    for _ in range(3):
        query = {'limit': '3', **({'cursor': cursor} if cursor else {})}
        status, _, body = send('GET', f'/agencies/{tree.agency["id"]}/clients', tree.agency_admin, query=query)
        assert status == 200
        pages.append(body['items'])
        cursor = body['next_cursor']
    assert [len(p) for p in pages] == [3, 3, 1]
    assert cursor is None
    assert [c for p in pages for c in p] == created


def test_the_default_page_holds_fifty(tree):
    for _ in range(50):
        factories.client(tree.agency['id'])
    body = send('GET', f'/agencies/{tree.agency["id"]}/clients', tree.agency_admin)[2]
    assert len(body['items']) == 50
    assert body['next_cursor'] is not None


def forged(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


@pytest.mark.parametrize(
    'cursor',
    [
        'not-a-cursor',
        '!!!',
        forged('2026-01-01T00:00:00+00:00'),
        forged('yesterday', '7b1f4a4e-3c53-4b6b-9a51-2b8e3f0d7c11'),
        forged('2026-01-01T00:00:00+00:00', 'not-a-uuid'),
        forged(1, 2),
    ],
)
def test_a_forged_cursor_is_rejected(tree, cursor):
    status, _, body = send('GET', f'/agencies/{tree.agency["id"]}/clients', tree.agency_admin, query={'cursor': cursor})
    assert status == 422
    assert body['error']['code'] == 'validation_error'


@pytest.mark.parametrize('limit', ['0', '501', '-1', 'ten', '2.5'])
def test_a_limit_outside_1_to_500_is_rejected(tree, limit):
    status, _, body = send('GET', '/agencies', tree.platform_admin, query={'limit': limit})
    assert status == 422
    assert body['error']['code'] == 'validation_error'


@pytest.mark.parametrize('path', ['/agencies', '/brands'])
def test_top_level_lists_page_with_a_cursor(tree, path):
    factories.agency()
    factories.agency()
    factories.brand()
    factories.brand()
    first = send('GET', path, tree.platform_admin, query={'limit': '1'})[2]
    second = send('GET', path, tree.platform_admin, query={'limit': '1', 'cursor': first['next_cursor']})[2]
    assert len(first['items']) == len(second['items']) == 1
    assert first['items'][0]['id'] != second['items'][0]['id']
    assert first['next_cursor'] is not None


def test_campaigns_page_with_a_cursor(tree):
    created = [tree.campaign] + [factories.campaign(tree.client['id']) for _ in range(2)]
    first = send('GET', f'/clients/{tree.client["id"]}/campaigns', tree.client_admin, query={'limit': '2'})[2]
    rest = send(
        'GET',
        f'/clients/{tree.client["id"]}/campaigns',
        tree.client_admin,
        query={'limit': '2', 'cursor': first['next_cursor']},
    )[2]
    assert first['items'] + rest['items'] == created
    assert rest['next_cursor'] is None


def test_ledger_holds_after_the_scenarios(database_url):
    with db.UnitOfWork() as uow:
        report = ledger_checks.check(uow)
    assert report.ok, report.summary()
