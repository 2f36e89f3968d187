"""Who may see and do what on the hierarchy routes: 404 outside one's scope, 403 for actions one may not take
on what one can see, 401 without a verified subject. An integration sees nothing: it only provisions."""

from __future__ import annotations

from typing import Any

import pytest
from admin_app import lambda_handler
from giftcards import memberships
from provision_app import lambda_handler as provision_handler

from tests import factories
from tests import provisioning_support as ps
from tests.events import call, http_event


def send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, Any]:
    status, _, body = call(lambda_handler, http_event(method, path, subject=subject, **kwargs))
    return status, body


def assert_error(answer: tuple[int, Any], status: int, code: str) -> None:
    assert answer[0] == status, answer
    assert answer[1]['success'] is False
    assert answer[1]['error']['code'] == code
    assert isinstance(answer[1]['error']['message'], str)


@pytest.fixture
def tree(owner: Any) -> factories.Tree:
    return factories.hierarchy_tree(owner)


@pytest.fixture
def other(owner: Any) -> factories.Tree:
    """A second, unrelated branch: agency B with its client and campaign."""
    return factories.hierarchy_tree(owner)


def campaign_status(owner: Any, campaign_id: str) -> str:
    [[status]] = owner.run('SELECT status FROM campaigns WHERE id = CAST(:id AS uuid)', id=campaign_id)
    return str(status)


def count(owner: Any, table: str) -> int:
    [[n]] = owner.run(f'SELECT count(*) FROM {table}')
    return int(n)


# Requests on branch B that a member of branch A may not even see.
def requests_on(b: factories.Tree) -> list[tuple[str, str, dict[str, Any] | None]]:
    agency, client, campaign = b.agency['id'], b.client['id'], b.campaign['id']
    return [
        ('GET', f'/agencies/{agency}', None),
        ('GET', f'/agencies/{agency}/clients', None),
        ('POST', f'/agencies/{agency}/clients', {'name': 'Intruder'}),
        ('GET', f'/clients/{client}', None),
        ('GET', f'/clients/{client}/campaigns', None),
        ('POST', f'/clients/{client}/campaigns', {'name': 'Intruder', 'budget_mode': 'shared'}),
        ('GET', f'/campaigns/{campaign}', None),
        ('PATCH', f'/campaigns/{campaign}', {'status': 'paused'}),
    ]


# --- scope: 404 for what the caller may not see ----------------------------------------------------------


@pytest.mark.parametrize('index', range(8))
def test_agency_admin_of_a_does_not_see_agency_b(owner, tree, other, index):
    method, path, body = requests_on(other)[index]
    assert_error(send(method, path, tree.agency_admin, body=body), 404, 'not_found')
    assert campaign_status(owner, other.campaign['id']) == 'active'


@pytest.mark.parametrize('index', range(3, 8))
def test_client_admin_does_not_see_another_client(tree, other, index):
    method, path, body = requests_on(other)[index]
    assert_error(send(method, path, tree.client_admin, body=body), 404, 'not_found')


@pytest.mark.parametrize('index', range(3, 8))
def test_integration_does_not_see_another_client(tree, other, index):
    method, path, body = requests_on(other)[index]
    assert_error(send(method, path, tree.integration, body=body), 404, 'not_found')


@pytest.mark.parametrize('role', ['client_admin', 'integration'])
@pytest.mark.parametrize('index', range(3))
def test_client_members_do_not_see_their_agency(tree, role, index):
    method, path, body = requests_on(tree)[index]
    assert_error(send(method, path, getattr(tree, role), body=body), 404, 'not_found')


def test_agency_admin_of_a_lists_only_a(tree, other):
    status, body = send('GET', '/agencies', tree.agency_admin, query={'limit': '500'})
    assert status == 200
    assert [a['id'] for a in body['items']] == [tree.agency['id']]


def test_nothing_is_created_in_agency_b_by_agency_a(owner, tree, other):
    before = count(owner, 'clients')
    send('POST', f'/agencies/{other.agency["id"]}/clients', tree.agency_admin, body={'name': 'Intruder'})
    assert count(owner, 'clients') == before


# --- actions: 403 for what the caller may see but not do ------------------------------------------------


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'integration'])
def test_only_a_platform_admin_creates_agencies(owner, tree, role):
    before = count(owner, 'agencies')
    assert_error(send('POST', '/agencies', getattr(tree, role), body={'name': 'Rogue'}), 403, 'forbidden')
    assert count(owner, 'agencies') == before


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'integration'])
def test_only_a_platform_admin_creates_brands(owner, tree, role):
    before = count(owner, 'brands')
    body = {'name': factories.unique('Rogue'), 'denominations': [25]}
    assert_error(send('POST', '/brands', getattr(tree, role), body=body), 403, 'forbidden')
    assert count(owner, 'brands') == before


@pytest.mark.parametrize('role', ['agency_admin', 'client_admin', 'integration'])
def test_only_a_platform_admin_reads_the_platform_account(tree, role):
    assert_error(send('GET', '/platform', getattr(tree, role)), 403, 'forbidden')


def test_integration_cannot_change_a_campaign(owner, tree):
    answer = send('PATCH', f'/campaigns/{tree.campaign["id"]}', tree.integration, body={'status': 'paused'})
    assert_error(answer, 404, 'not_found')
    assert campaign_status(owner, tree.campaign['id']) == 'active'


def test_integration_cannot_switch_the_budget_mode(owner, tree):
    factories.fund(1_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    answer = send('PATCH', f'/campaigns/{tree.campaign["id"]}', tree.integration, body={'budget_mode': 'shared'})
    assert_error(answer, 404, 'not_found')
    assert factories.balance_cents(tree.campaign['account_id']) == 1_000


def test_integration_cannot_create_a_campaign(owner, tree):
    before = count(owner, 'campaigns')
    body = {'name': 'Bot campaign', 'budget_mode': 'shared'}
    answer = send('POST', f'/clients/{tree.client["id"]}/campaigns', tree.integration, body=body)
    assert_error(answer, 404, 'not_found')
    assert count(owner, 'campaigns') == before


@pytest.mark.parametrize('path', ['/clients/{client}', '/clients/{client}/campaigns', '/campaigns/{campaign}'])
def test_integration_does_not_see_even_its_own_client(tree, path):
    answer = send('GET', path.format(client=tree.client['id'], campaign=tree.campaign['id']), tree.integration)
    assert_error(answer, 404, 'not_found')


def test_client_admin_changes_its_own_campaign(tree):
    status, body = send('PATCH', f'/campaigns/{tree.campaign["id"]}', tree.client_admin, body={'status': 'paused'})
    assert (status, body['status']) == (200, 'paused')


def test_agency_admin_changes_a_campaign_of_its_client(tree):
    status, body = send('PATCH', f'/campaigns/{tree.campaign["id"]}', tree.agency_admin, body={'status': 'ended'})
    assert (status, body['status']) == (200, 'ended')


# --- callers without any membership ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ('path', 'body'), [('/agencies', {'name': 'Rogue'}), ('/brands', {'name': 'Rogue', 'denominations': [25]})]
)
def test_a_caller_without_membership_cannot_create_at_top_level(path, body, tree):
    assert_error(send('POST', path, factories.stranger(), body=body), 403, 'forbidden')


@pytest.mark.parametrize('path', ['/agencies', '/brands'])
def test_a_caller_without_membership_lists_nothing(tree, path):
    factories.brand()
    assert send('GET', path, factories.stranger()) == (200, {'items': [], 'next_cursor': None})


@pytest.mark.parametrize('index', range(8))
def test_a_caller_without_membership_sees_no_entity(tree, index):
    method, path, body = requests_on(tree)[index]
    assert_error(send(method, path, factories.stranger(), body=body), 404, 'not_found')


def test_a_caller_without_membership_sees_no_brand(tree):
    brand = factories.brand()
    assert_error(send('GET', f'/brands/{brand["id"]}', factories.stranger()), 404, 'not_found')


# --- identity: 401 without a verified subject ------------------------------------------------------------


def every_route(t: factories.Tree, brand_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ('GET', '/platform', None),
        ('POST', '/agencies', {'name': 'Anonymous'}),
        ('GET', '/agencies', None),
        *requests_on(t),
        ('POST', '/brands', {'name': factories.unique('Anonymous'), 'denominations': [25]}),
        ('GET', '/brands', None),
        ('GET', f'/brands/{brand_id}', None),
    ]


@pytest.mark.parametrize('index', range(14))
def test_no_token_is_401(owner, tree, index):
    method, path, body = every_route(tree, factories.brand()['id'])[index]
    assert_error(send(method, path, None, body=body), 401, 'unauthorized')


@pytest.mark.parametrize('claims', [{'sub': ''}, {'scope': 'admin'}, {'cognito:groups': 'platform_admin'}])
def test_claims_without_a_subject_are_401(tree, claims):
    status, _, body = call(lambda_handler, http_event('GET', '/agencies', claims=claims))
    assert (status, body['error']['code']) == (401, 'unauthorized')


def test_an_app_client_token_is_identified_by_its_client_id(owner):
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    app_client = factories.unique('app-client')
    memberships.grant(owner, app_client, 'client_integration', client_id=s.tree.client['id'])
    body = {'campaignId': s.campaign_id, 'brandId': s.brand['id'], 'denomination': 25, 'redemptionCode': ps.new_code()}
    event = http_event('POST', '/provision-gift-card', body=body, claims={'client_id': app_client})
    status, _, answer = call(provision_handler, event)
    assert (status, answer['redemption']['campaignId']) == (200, s.campaign_id)


# --- malformed ids --------------------------------------------------------------------------------------

BAD_IDS = ['not-a-uuid', '123', '00000000-0000-0000-0000-00000000000g', "x'or'1'='1"]
ID_ROUTES = [
    ('GET', '/agencies/{id}', None),
    ('GET', '/agencies/{id}/clients', None),
    ('POST', '/agencies/{id}/clients', {'name': 'X'}),
    ('GET', '/clients/{id}', None),
    ('GET', '/clients/{id}/campaigns', None),
    ('POST', '/clients/{id}/campaigns', {'name': 'X', 'budget_mode': 'shared'}),
    ('GET', '/campaigns/{id}', None),
    ('PATCH', '/campaigns/{id}', {'status': 'paused'}),
    ('GET', '/brands/{id}', None),
]


@pytest.mark.parametrize('bad_id', BAD_IDS)
@pytest.mark.parametrize(('method', 'path', 'body'), ID_ROUTES)
def test_a_malformed_id_is_404(tree, method, path, body, bad_id):
    assert_error(send(method, path.format(id=bad_id), tree.platform_admin, body=body), 404, 'not_found')


@pytest.mark.parametrize(('method', 'path', 'body'), ID_ROUTES)
def test_an_unknown_id_is_404(tree, method, path, body):
    unknown = '7b1f4a4e-3c53-4b6b-9a51-2b8e3f0d7c11'
    assert_error(send(method, path.format(id=unknown), tree.platform_admin, body=body), 404, 'not_found')
