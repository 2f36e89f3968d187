"""Every route of template.yaml, called through the Lambda handler the template names, answers what
`GET /openapi.json` says it answers: each success body is valid against the schema the document gives for its status
and media type, and each refusal against the error envelope the document declares for its status.

A route of the template without a case here fails the test, so a new route cannot go undescribed.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema_rs
import pytest
from giftcard_local.template import Route, http_routes, load_template
from giftcards import alerts, db

from tests import delivery_support as ds
from tests import factories
from tests import provisioning_support as ps
from tests import redeem_support as rs
from tests.events import call, http_event

ROOT = Path(__file__).resolve().parents[2]
# The document does not describe itself, nor the page that shows it.
UNDESCRIBED = {('GET', '/openapi.json'), ('GET', '/docs'), ('GET', '/docs/{asset}')}
ROUTES = [r for r in http_routes(load_template(ROOT / 'template.yaml')) if (r.method, r.path) not in UNDESCRIBED]
JSON = 'application/json'


@dataclass(frozen=True)
class World:
    """What the cases call the routes about: a funded campaign with a stocked pool and issued codes, one redemption,
    and a platform admin."""

    setup: ps.Setup
    pool_id: str
    codes: list[str]

    @property
    def tree(self) -> factories.Tree:
        return self.setup.tree

    @property
    def admin(self) -> str:
        return self.setup.admin

    @property
    def brand_id(self) -> str:
        return str(self.setup.brand['id'])


@dataclass(frozen=True)
class Call:
    """A request and the status it must be answered with."""

    event: dict[str, Any]
    status: int


def send(method: str, path: str, subject: str | None, status: int, **kwargs: Any) -> Call:
    return Call(http_event(method, path, subject=subject, **kwargs), status)


def unknown() -> str:
    return str(uuid.uuid4())


CASES: dict[tuple[str, str], Callable[[World], list[Call]]] = {}


def case(method: str, path: str) -> Callable[[Callable[[World], list[Call]]], Callable[[World], list[Call]]]:
    """Register the calls of one route: at least one success and, for a public route, a refusal (every route
    behind the authorizer is also called without a token)."""

    def register(calls: Callable[[World], list[Call]]) -> Callable[[World], list[Call]]:
        CASES[(method, path)] = calls
        return calls

    return register


# --- the seed's routes ---------------------------------------------------------------------------------


@case('POST', '/provision-gift-card')
def _provision(w: World) -> list[Call]:
    body = {'campaignId': w.setup.campaign_id, 'brandId': w.brand_id, 'denomination': 25}
    return [
        send('POST', '/provision-gift-card', w.tree.integration, 200, body={**body, 'redemptionCode': ps.new_code()}),
        send('POST', '/provision-gift-card', w.tree.integration, 422, body=body),
        send(
            'POST',
            '/provision-gift-card',
            w.tree.integration,
            404,
            body={**body, 'campaignId': unknown(), 'redemptionCode': ps.new_code()},
        ),
    ]


@case('POST', '/allocate-credit')
def _allocate(w: World) -> list[Call]:
    move = {'fromAccountId': w.tree.agency['account_id'], 'toAccountId': w.tree.client['account_id'], 'amount': 1.5}
    key = {'Idempotency-Key': factories.unique('key')}
    return [
        send('POST', '/allocate-credit', w.tree.agency_admin, 200, body=move, headers=key),
        send('POST', '/allocate-credit', w.tree.agency_admin, 200, body=move, headers=key),  # the replay
        send('POST', '/allocate-credit', w.tree.agency_admin, 409, body={**move, 'amount': 1_000_000}),
        send('POST', '/allocate-credit', w.tree.agency_admin, 422, body={**move, 'amount': 0.001}),
    ]


@case('POST', '/reclaim-credit')
def _reclaim(w: World) -> list[Call]:
    move = {'fromAccountId': w.tree.client['account_id'], 'toAccountId': w.tree.agency['account_id'], 'amount': 1}
    return [
        send('POST', '/reclaim-credit', w.tree.agency_admin, 200, body=move),
        send('POST', '/reclaim-credit', w.tree.agency_admin, 409, body={**move, 'amount': 1_000_000}),
        send('POST', '/reclaim-credit', w.tree.client_admin, 404, body=move),  # the agency's account is not its to see
    ]


@case('POST', '/monitor-gift-card-system')
def _monitor(w: World) -> list[Call]:
    return [
        send('POST', '/monitor-gift-card-system', w.admin, 200),
        send('POST', '/monitor-gift-card-system', w.tree.agency_admin, 403),
    ]


# --- the end customer ----------------------------------------------------------------------------------


@case('GET', '/redeem')
def _redeem_page(w: World) -> list[Call]:
    address = ds.new_email()
    w.setup.provision(delivery_method='email', delivery_address=address)
    token = ds.link_token(ds.messages_to(address)[0])
    return [
        send('GET', '/redeem', None, 200, content_type=None, source_ip=rs.unique_ip()),
        send('GET', '/redeem', None, 200, content_type=None, query={'token': token}, source_ip=rs.unique_ip()),
        send('GET', '/redeem', None, 404, content_type=None, query={'token': 'x' * 43}, source_ip=rs.unique_ip()),
        send(
            'GET',
            '/redeem',
            None,
            404,
            content_type=None,
            query={'token': 'x' * 43},
            headers={'accept': 'application/json'},
            source_ip=rs.unique_ip(),
        ),
        send('GET', '/redeem', None, 422, content_type=None, query={'code': 'A\x00'}, source_ip=rs.unique_ip()),
    ]


@case('POST', '/redeem')
def _redeem(w: World) -> list[Call]:
    form = 'application/x-www-form-urlencoded'
    return [
        send('POST', '/redeem', None, 200, body={'code': w.codes[0]}, source_ip=rs.unique_ip()),
        send(
            'POST',
            '/redeem',
            None,
            200,
            raw_body=urlencode({'code': w.codes[1]}),
            content_type=form,
            source_ip=rs.unique_ip(),
        ),
        send('POST', '/redeem', None, 404, body={'code': 'NOPE-NOPE-NOPE-NOPE'}, source_ip=rs.unique_ip()),
        send('POST', '/redeem', None, 422, body={'code': 7}, source_ip=rs.unique_ip()),
    ]


# --- the credit hierarchy ------------------------------------------------------------------------------


@case('GET', '/platform')
def _platform(w: World) -> list[Call]:
    return [send('GET', '/platform', w.admin, 200), send('GET', '/platform', w.tree.agency_admin, 403)]


@case('GET', '/me')
def _me(w: World) -> list[Call]:
    return [send('GET', '/me', w.tree.client_admin, 200), send('GET', '/me', w.admin, 200)]


@case('POST', '/agencies')
def _new_agency(w: World) -> list[Call]:
    return [
        send('POST', '/agencies', w.admin, 201, body={'name': factories.unique('Agency')}),
        send('POST', '/agencies', w.admin, 422, body={}),
        send('POST', '/agencies', w.tree.agency_admin, 403, body={'name': factories.unique('Agency')}),
    ]


@case('GET', '/agencies')
def _agencies(w: World) -> list[Call]:
    return [
        send('GET', '/agencies', w.tree.agency_admin, 200),
        send('GET', '/agencies', w.admin, 422, query={'limit': '0'}),
    ]


@case('GET', '/agencies/{agency_id}')
def _agency(w: World) -> list[Call]:
    return [
        send('GET', f'/agencies/{w.tree.agency["id"]}', w.tree.agency_admin, 200),
        send('GET', f'/agencies/{unknown()}', w.admin, 404),
    ]


@case('POST', '/agencies/{agency_id}/clients')
def _new_client(w: World) -> list[Call]:
    path = f'/agencies/{w.tree.agency["id"]}/clients'
    return [
        send('POST', path, w.tree.agency_admin, 201, body={'name': factories.unique('Client')}),
        send('POST', path, w.tree.agency_admin, 422, body={'name': ''}),
        send('POST', f'/agencies/{unknown()}/clients', w.admin, 404, body={'name': factories.unique('Client')}),
    ]


@case('GET', '/agencies/{agency_id}/clients')
def _clients(w: World) -> list[Call]:
    return [
        send('GET', f'/agencies/{w.tree.agency["id"]}/clients', w.tree.agency_admin, 200),
        send('GET', f'/agencies/{unknown()}/clients', w.admin, 404),
    ]


@case('GET', '/clients/{client_id}')
def _client(w: World) -> list[Call]:
    return [
        send('GET', f'/clients/{w.tree.client["id"]}', w.tree.client_admin, 200),
        send('GET', f'/clients/{unknown()}', w.admin, 404),
    ]


@case('POST', '/clients/{client_id}/campaigns')
def _new_campaign(w: World) -> list[Call]:
    path = f'/clients/{w.tree.client["id"]}/campaigns'
    return [
        send(
            'POST', path, w.tree.client_admin, 201, body={'name': factories.unique('Campaign'), 'budget_mode': 'shared'}
        ),
        send('POST', path, w.tree.client_admin, 422, body={'name': factories.unique('Campaign'), 'budget_mode': 'x'}),
    ]


@case('GET', '/clients/{client_id}/campaigns')
def _campaigns(w: World) -> list[Call]:
    return [
        send('GET', f'/clients/{w.tree.client["id"]}/campaigns', w.tree.client_admin, 200),
        send('GET', f'/clients/{unknown()}/campaigns', w.admin, 404),
    ]


@case('GET', '/campaigns/{campaign_id}')
def _campaign(w: World) -> list[Call]:
    return [
        send('GET', f'/campaigns/{w.setup.campaign_id}', w.tree.client_admin, 200),
        send('GET', f'/campaigns/{unknown()}', w.admin, 404),
    ]


@case('PATCH', '/campaigns/{campaign_id}')
def _change_campaign(w: World) -> list[Call]:
    campaign = factories.campaign(w.tree.client['id'])
    path = f'/campaigns/{campaign["id"]}'
    return [
        send('PATCH', path, w.tree.client_admin, 200, body={'status': 'paused'}),
        send('PATCH', path, w.tree.client_admin, 422, body={}),
        send('PATCH', path, w.tree.integration, 404, body={'status': 'active'}),
    ]


@case('POST', '/brands')
def _new_brand(w: World) -> list[Call]:
    body = {
        'name': factories.unique('Brand'),
        'denominations': [25, 50],
        'prices': [{'denomination': 25, 'agency_price': 26}],
    }
    return [
        send('POST', '/brands', w.admin, 201, body=body),
        send('POST', '/brands', w.admin, 409, body={**body, 'prices': []}),
        send('POST', '/brands', w.tree.agency_admin, 403, body={**body, 'name': factories.unique('Brand')}),
    ]


@case('GET', '/brands')
def _brands(w: World) -> list[Call]:
    return [
        send('GET', '/brands', w.tree.client_admin, 200),
        send('GET', '/brands', w.admin, 422, query={'limit': '501'}),
    ]


@case('GET', '/brands/{brand_id}')
def _brand(w: World) -> list[Call]:
    return [
        send('GET', f'/brands/{w.brand_id}', w.tree.client_admin, 200),
        send('GET', f'/brands/{unknown()}', w.admin, 404),
    ]


# --- pools and codes -----------------------------------------------------------------------------------


@case('POST', '/pools')
def _new_pool(w: World) -> list[Call]:
    body = {'brand_id': w.brand_id, 'denomination': 50, 'cost_per_card': 47.5}
    return [
        send('POST', '/pools', w.admin, 201, body=body),
        send('POST', '/pools', w.tree.agency_admin, 403, body=body),
        send('POST', '/pools', w.admin, 422, body={**body, 'cost_per_card': -1}),
    ]


@case('GET', '/pools')
def _pools(w: World) -> list[Call]:
    return [
        send('GET', '/pools', w.admin, 200, query={'brand_id': w.brand_id}),
        send('GET', '/pools', w.tree.agency_admin, 403),
    ]


@case('GET', '/pools/{pool_id}')
def _pool(w: World) -> list[Call]:
    return [send('GET', f'/pools/{w.pool_id}', w.admin, 200), send('GET', f'/pools/{unknown()}', w.admin, 404)]


@case('POST', '/pools/{pool_id}/cards')
def _import(w: World) -> list[Call]:
    cards = f'card_code,card_number\nCARD-{uuid.uuid4().hex},6006{uuid.uuid4().int % 10**12:012d}\n'
    path = f'/pools/{w.pool_id}/cards'
    return [
        send('POST', path, w.admin, 201, raw_body=cards, content_type='text/csv'),
        send('POST', path, w.admin, 422, raw_body='card_code\nX\n', content_type='text/csv'),
        send('POST', path, w.admin, 415, raw_body=cards, content_type='text/plain'),
    ]


@case('POST', '/campaigns/{campaign_id}/codes')
def _issue(w: World) -> list[Call]:
    path = f'/campaigns/{w.setup.campaign_id}/codes'
    body = {'brand_id': w.brand_id, 'denomination': 25, 'count': 2}
    return [
        send('POST', path, w.tree.client_admin, 201, body=body),
        send('POST', path, w.tree.client_admin, 201, body=body, headers={'accept': 'text/csv'}),
        send('POST', path, w.tree.client_admin, 422, body={**body, 'count': 0}),
        send('POST', path, w.tree.integration, 404, body=body),
    ]


@case('GET', '/campaigns/{campaign_id}/codes')
def _codes(w: World) -> list[Call]:
    return [
        send('GET', f'/campaigns/{w.setup.campaign_id}/codes', w.tree.client_admin, 200, query={'limit': '2'}),
        send('GET', f'/campaigns/{unknown()}/codes', w.admin, 404),
    ]


@case('POST', '/codes/{code_id}/void')
def _void(w: World) -> list[Call]:
    code_id = rs.code_row(w.codes[2])['id']
    return [
        send('POST', f'/codes/{code_id}/void', w.tree.client_admin, 200),
        send('POST', f'/codes/{unknown()}/void', w.admin, 404),
    ]


@case('GET', '/redemption-attempts')
def _attempts(w: World) -> list[Call]:
    return [
        send('GET', '/redemption-attempts', w.admin, 200, query={'limit': '3'}),
        send('GET', '/redemption-attempts', w.admin, 422, query={'ip': 'not an address'}),
        send('GET', '/redemption-attempts', w.tree.agency_admin, 403),
    ]


@case('GET', '/redemptions')
def _redemptions(w: World) -> list[Call]:
    return [
        send('GET', '/redemptions', w.tree.client_admin, 200, query={'campaign_id': w.setup.campaign_id}),
        send('GET', '/redemptions', w.tree.agency_admin, 200, query={'agency_id': w.tree.agency['id']}),
        send('GET', '/redemptions', w.tree.client_admin, 403),
        send('GET', '/redemptions', w.admin, 422, query={'status': 'lost'}),
    ]


def delivered(w: World) -> str:
    """A new redemption delivered by e-mail, its last send long enough ago to be resent."""
    redemption_id = w.setup.provision(delivery_method='email', delivery_address=ds.new_email()).redemption.id
    with db.owner_connection() as owner:
        ds.age_last_send(redemption_id, owner)
    return redemption_id


@case('GET', '/redemptions/{redemption_id}')
def _redemption(w: World) -> list[Call]:
    return [
        send('GET', f'/redemptions/{delivered(w)}', w.tree.client_admin, 200),
        send('GET', f'/redemptions/{w.setup.provision().redemption.id}', w.tree.agency_admin, 200),
        send('GET', f'/redemptions/{unknown()}', w.admin, 404),
    ]


@case('POST', '/redemptions/{redemption_id}/resend')
def _resend(w: World) -> list[Call]:
    redemption_id = delivered(w)
    return [
        send('POST', f'/redemptions/{redemption_id}/resend', w.tree.client_admin, 202),
        send('POST', f'/redemptions/{redemption_id}/resend', w.tree.client_admin, 429),
        send('POST', f'/redemptions/{w.setup.provision().redemption.id}/resend', w.tree.client_admin, 409),
        send('POST', f'/redemptions/{unknown()}/resend', w.admin, 404),
    ]


# --- deliveries ------------------------------------------------------------------------------------------


@case('PUT', '/campaigns/{campaign_id}/delivery')
def _campaign_delivery(w: World) -> list[Call]:
    path = f'/campaigns/{w.setup.campaign_id}/delivery'
    return [
        send('PUT', path, w.tree.client_admin, 200, body={'content': 'link'}),
        send('PUT', path, w.tree.client_admin, 422, body={'content': 'parcel'}),
        send('PUT', f'/campaigns/{unknown()}/delivery', w.admin, 404, body={'content': 'link'}),
    ]


@case('PUT', '/brands/{brand_id}/message')
def _brand_message(w: World) -> list[Call]:
    path = f'/brands/{w.brand_id}/message'
    return [
        send('PUT', path, w.admin, 200, body={'instructions': 'Spend it at checkout.'}),
        send('PUT', path, w.admin, 422, body={'instructions': '   '}),
        send('PUT', path, w.tree.agency_admin, 403, body={'instructions': 'Spend it at checkout.'}),
    ]


@case('POST', '/clients/{client_id}/sms-consents')
def _record_sms_consent(w: World) -> list[Call]:
    path = f'/clients/{w.tree.client["id"]}/sms-consents'
    return [
        send('POST', path, w.tree.client_admin, 201, body={'phone': ds.new_phone(), 'source': 'signup form'}),
        send('POST', path, w.tree.client_admin, 422, body={'phone': '12345', 'source': 'signup form'}),
        send('POST', path, w.tree.integration, 404, body={'phone': ds.new_phone(), 'source': 'signup form'}),
    ]


@case('GET', '/clients/{client_id}/sms-consents')
def _sms_consents(w: World) -> list[Call]:
    return [
        send('GET', f'/clients/{w.tree.client["id"]}/sms-consents', w.tree.client_admin, 200),
        send('GET', f'/clients/{unknown()}/sms-consents', w.admin, 404),
    ]


# --- accounts, alerts, dashboards ----------------------------------------------------------------------


@case('GET', '/accounts/{account_id}')
def _account(w: World) -> list[Call]:
    return [
        send('GET', f'/accounts/{w.tree.client["account_id"]}', w.tree.client_admin, 200),
        send('GET', f'/accounts/{unknown()}', w.admin, 404),
    ]


@case('GET', '/accounts/{account_id}/transactions')
def _transactions(w: World) -> list[Call]:
    path = f'/accounts/{w.tree.agency["account_id"]}/transactions'
    return [
        send('GET', path, w.tree.agency_admin, 200, query={'limit': '2'}),
        send('GET', path, w.tree.agency_admin, 422, query={'cursor': 'forged'}),
    ]


@case('GET', '/alerts')
def _alerts(w: World) -> list[Call]:
    return [
        send('GET', '/alerts', w.admin, 200, query={'limit': '3'}),
        send('GET', '/alerts', w.admin, 200, query={'status': 'resolved', 'limit': '3'}),
        send('GET', '/alerts', w.tree.agency_admin, 403),
    ]


@case('POST', '/alerts/{alert_id}/acknowledge')
def _acknowledge(w: World) -> list[Call]:
    raised = db.in_transaction(
        lambda uow: alerts.raise_alert(
            uow, 'agency_low_balance', 'warning', 'agency', w.tree.agency['id'], 'low', {'balance': 1}
        )
    )
    return [
        send('POST', f'/alerts/{raised.id}/acknowledge', w.admin, 200),
        send('POST', f'/alerts/{unknown()}/acknowledge', w.admin, 404),
    ]


@case('GET', '/dashboards/admin')
def _admin_dashboard(w: World) -> list[Call]:
    return [send('GET', '/dashboards/admin', w.admin, 200), send('GET', '/dashboards/admin', w.tree.agency_admin, 403)]


@case('GET', '/dashboards/agencies/{agency_id}')
def _agency_dashboard(w: World) -> list[Call]:
    return [
        send('GET', f'/dashboards/agencies/{w.tree.agency["id"]}', w.tree.agency_admin, 200),
        send('GET', f'/dashboards/agencies/{unknown()}', w.admin, 404),
    ]


@case('GET', '/dashboards/clients/{client_id}')
def _client_dashboard(w: World) -> list[Call]:
    return [
        send('GET', f'/dashboards/clients/{w.tree.client["id"]}', w.tree.client_admin, 200),
        send('GET', f'/dashboards/clients/{unknown()}', w.admin, 404),
    ]


# --- the document --------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def document() -> dict[str, Any]:
    import admin_app

    status, _, body = call(admin_app.lambda_handler, http_event('GET', '/openapi.json'))
    assert status == 200
    return dict(body)


@pytest.fixture(scope='module')
def world(database_url: str) -> Iterator[World]:
    with db.owner_connection() as owner:
        s = ps.setup(owner, funds_cents=100_000)
    factories.fund(100_000, s.tree.agency['account_id'], s.tree.client['account_id'])
    factories.fund(100_000, s.tree.agency['account_id'])
    pool_id = ps.pool(s.admin, s.brand['id'], 2500, 2350, 10)
    s.provision()  # a redemption to list
    issued = rs.Campaign(s.tree, s.brand, pool_id).issue(count=3)
    yield World(s, pool_id, issued)


def operation(document: dict[str, Any], route: Route) -> dict[str, Any]:
    described = document['paths'].get(route.path, {}).get(route.method.lower())
    assert described is not None, f'{route.method} {route.path} is not in the document'
    return dict(described)


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A validator of `schema`, whose references point into the document's components."""
    return jsonschema_rs.validator_for({**schema, 'components': document['components']})


def check(document: dict[str, Any], route: Route, sent: Call, answer: tuple[int, dict[str, str], Any]) -> str | None:
    """What is wrong with one answer: a status other than the expected one, a status or media type the document
    does not declare for the route, or a body its schema refuses."""
    status, headers, body = answer
    if status != sent.status:
        return f'{status} where {sent.status} was expected: {body!r:.300}'
    media_type = headers.get('content-type', '').split(';')[0].strip()
    declared = operation(document, route)['responses'].get(str(status))
    if declared is None:
        return f'{status} is not declared'
    content = declared.get('content', {}).get(media_type)
    if content is None:
        return f'{status} {media_type} is not declared (only {sorted(declared.get("content", {}))})'
    errors = [e.message for e in validator(document, content['schema']).iter_errors(body)]
    return f'{status} {media_type} does not match the document: {errors[:3]} in {body!r:.300}' if errors else None


def handler(route: Route) -> Any:
    module, _, name = route.handler.partition('.')
    return getattr(importlib.import_module(module), name)


# --- the tests -----------------------------------------------------------------------------------------


def test_every_route_of_the_template_has_a_case() -> None:
    declared = {(r.method, r.path) for r in ROUTES}
    assert declared - set(CASES) == set(), 'routes without a case'
    assert set(CASES) - declared == set(), 'cases of routes the template does not declare'


@pytest.mark.parametrize('route', ROUTES, ids=[f'{r.method} {r.path}' for r in ROUTES])
def test_answers_match_what_the_document_declares(route: Route, world: World, document: dict[str, Any]) -> None:
    calls = CASES.get((route.method, route.path))
    if calls is None:
        pytest.fail(f'no case for {route.method} {route.path}: add one to CASES')
    sent = calls(world)
    if not route.public:
        anonymous = json.loads(json.dumps(sent[0].event))
        anonymous['requestContext'].pop('authorizer', None)
        sent.append(Call(anonymous, 401))
    assert any(c.status < 300 for c in sent) and any(c.status >= 400 for c in sent), 'a success and a refusal'
    lambda_handler = handler(route)
    answers = [call(lambda_handler, c.event) for c in sent]

    problems = [check(document, route, c, a) for c, a in zip(sent, answers, strict=True)]

    assert [p for p in problems if p] == []


def test_no_json_success_is_a_bare_string_or_an_untyped_object(document: dict[str, Any]) -> None:
    schemas = document['components']['schemas']
    untyped = []
    for path, operations in document['paths'].items():
        for method, described in operations.items():
            for status, response in described['responses'].items():
                schema = response.get('content', {}).get(JSON, {}).get('schema')
                if not status.startswith('2') or schema is None:
                    continue
                resolved = schemas[schema['$ref'].rsplit('/', 1)[1]] if '$ref' in schema else schema
                if resolved.get('type') != 'object' or not resolved.get('properties'):
                    untyped.append(f'{method.upper()} {path} {status}: {schema}')
    assert untyped == []


def test_every_declared_refusal_is_the_error_envelope(document: dict[str, Any]) -> None:
    envelope = {'$ref': '#/components/schemas/ErrorEnvelope'}
    elsewhere = []
    for path, operations in document['paths'].items():
        for method, described in operations.items():
            for status, response in described['responses'].items():
                if int(status) >= 400 and response['content'][JSON]['schema'] != envelope:
                    elsewhere.append(f'{method.upper()} {path} {status}: {response["content"][JSON]["schema"]}')
    assert elsewhere == []
    assert 'HTTPValidationError' not in json.dumps(document)
