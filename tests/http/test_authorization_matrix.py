"""The authorization matrix (`authorization_matrix.md`), through a real `giftcard serve`: every route of template.yaml,
called by each role on its own tenant's entities and on another tenant's, answers the status the matrix gives. A
refused call changes nothing (row counts of every table, every balance, the entities it named), no answer to a member
of tenant A names one of tenant B's entities, and the ledger checks clean afterwards.

A route of the template without rows in the matrix, or a row of a route the template no longer has, fails the test.
"""

from __future__ import annotations

import base64
import os
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from giftcard_local import app_clients
from giftcard_local.template import http_routes, load_template
from giftcard_local.tokens import issue_token
from giftcards import alerts, code_administration, codes, db

from tests import delivery_support as ds
from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Answer, Live

ROOT = Path(__file__).resolve().parents[2]
MATRIX = Path(__file__).with_name('authorization_matrix.md')
ROUTES = {(r.method, r.path) for r in http_routes(load_template(ROOT / 'template.yaml'))}
ROLES = ('platform_admin', 'agency_admin', 'client_admin', 'integration', 'anonymous', 'garbage_token')
TENANT_MEMBERS = ('agency_admin', 'client_admin', 'integration')  # members of tenant A
# Calls whose success changes what later calls see (the monitor resolves alerts and pauses campaigns): last.
LAST = {('POST', '/monitor-gift-card-system')}


# --- the matrix ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    tenant: str  # own, foreign or - (the route names no tenant's entity)
    expected: dict[str, int]  # by role


def read_matrix(path: Path) -> list[Row]:
    """The rows of the table whose header is `| route | tenant | <the roles> |`."""
    lines = iter(path.read_text(encoding='utf-8').splitlines())
    header = ['route', 'tenant', *ROLES]
    for line in lines:
        if cells(line) == header:
            break
    else:
        raise AssertionError(f'{path.name}: no table with the header {" | ".join(header)}')
    next(lines)  # |---|---|...
    rows = []
    for line in lines:
        if not line.startswith('|'):
            break
        route, tenant, *statuses = cells(line)
        method, route_path = route.split(' ', 1)
        assert tenant in ('own', 'foreign', '-'), line
        assert len(statuses) == len(ROLES), line
        rows.append(Row(method, route_path, tenant, dict(zip(ROLES, map(int, statuses), strict=True))))
    return rows


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


ROWS = read_matrix(MATRIX)


@dataclass(frozen=True)
class Case:
    row: Row
    role: str

    @property
    def expected(self) -> int:
        return self.row.expected[self.role]

    def __str__(self) -> str:
        return f'{self.row.method} {self.row.path} {self.row.tenant} {self.role}'


CASES = sorted((Case(row, role) for row in ROWS for role in ROLES), key=lambda c: (c.row.method, c.row.path) in LAST)


# --- the world the requests name -------------------------------------------------------------------------


@dataclass
class Tenant:
    agency: dict[str, Any]
    client: dict[str, Any]
    campaign: dict[str, Any]  # isolated and funded: provisioning, allocation, codes
    spare: dict[str, Any]  # another campaign of the client, paused and resumed by PATCH
    void_codes: list[str]  # ids of issued codes, one for each call of the void route
    delivered: list[str]  # redemptions delivered by e-mail, one for each call of the resend route (and one to show)

    def ids(self) -> set[str]:
        entities = (self.agency, self.client, self.campaign, self.spare)
        return {e['id'] for e in entities} | {e['account_id'] for e in entities}


@dataclass
class World:
    own: Tenant
    foreign: Tenant
    brand: dict[str, Any]
    pool_id: str
    redeem_codes: list[str]  # issued for tenant A's campaign, one for each call of POST /redeem
    alert_ids: list[str]  # open alerts about agency A, one for each call of the acknowledge route
    alerts_raised: tuple[str, ...]  # all of them
    tokens: dict[str, str | None]
    source_ip: str  # the loopback address the calls come from: no other test's failed redemptions count against it
    owner: Any = field(repr=False)

    def tenant(self, name: str) -> Tenant:
        return self.foreign if name == 'foreign' else self.own


def forged(token: str) -> str:
    """The token with another signature: well formed, signed by no key the server knows."""
    header, payload, signature = token.split('.')
    fake = base64.urlsafe_b64encode(os.urandom(len(base64.urlsafe_b64decode(signature + '==')))).rstrip(b'=')
    return f'{header}.{payload}.{fake.decode()}'


def new_tenant(owner: Any, brand: dict[str, Any], admin: str) -> tuple[Tenant, factories.Tree]:
    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    factories.fund(100_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    factories.fund(100_000, tree.agency['account_id'], tree.client['account_id'])
    spare = factories.campaign(tree.client['id'], budget_mode='shared')
    issued = code_administration.issue_codes(admin, tree.campaign['id'], brand['id'], 2500, len(ROLES)).codes
    void_ids = [
        row['id']
        for row in ps.query(
            'SELECT id::text FROM redemption_codes WHERE code_hash = ANY (CAST(:h AS bytea[]))',
            h=[codes.code_hash(c) for c in issued],
        )
    ]
    setup = ps.Setup(tree, brand, 2500, admin)
    delivered = [
        setup.provision(delivery_method='email', delivery_address=ds.new_email()).redemption.id
        for _ in range(len(ROLES) + 1)
    ]
    owner.run(
        "UPDATE deliveries SET queued_at = now() - interval '1 hour' WHERE id = ANY (CAST(:ids AS uuid[]))",
        ids=delivered,
    )
    return Tenant(tree.agency, tree.client, tree.campaign, spare, void_ids, delivered), tree


@pytest.fixture(scope='module')
def world(live: Live, database_url: str) -> Iterator[World]:
    with db.owner_connection() as owner:
        admin = factories.platform_admin(owner)
        brand = factories.brand(denominations_cents=(2500,))
        pool_id = ps.pool(admin, brand['id'], 2500, 2350, 60)
        own, a = new_tenant(owner, brand, admin)
        foreign, _ = new_tenant(owner, brand, admin)
        redeem_codes = code_administration.issue_codes(admin, own.campaign['id'], brand['id'], 2500, len(ROLES)).codes
        alert_ids = [
            db.in_transaction(
                lambda uow, i=i: (
                    alerts.raise_alert(
                        uow, f'authorization_matrix_{i}', 'info', 'agency', own.agency['id'], 'raised by a test'
                    ).id
                )
            )
            for i in range(len(ROLES))
        ]
        token = issue_token(admin)
        app_clients.add(a.integration)  # the integration's own app client
        tokens: dict[str, str | None] = {
            'platform_admin': token,
            'agency_admin': issue_token(a.agency_admin),
            'client_admin': issue_token(a.client_admin),
            'integration': issue_token(a.integration, client=True),
            'anonymous': None,
            'garbage_token': forged(token),
        }
        source_ip = f'127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}'
        yield World(own, foreign, brand, pool_id, redeem_codes, alert_ids, tuple(alert_ids), tokens, source_ip, owner)


# --- what changed ----------------------------------------------------------------------------------------


def snapshot(w: World) -> dict[str, Any]:
    """Every table's row count, every account's balance, and the rows of the entities the requests name (a refused
    pause, void or acknowledgement would change them without changing a count)."""
    tables = [t for [t] in w.owner.run("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    campaigns = [t.campaign['id'] for t in (w.own, w.foreign)] + [t.spare['id'] for t in (w.own, w.foreign)]
    counts = ', '.join(f'(SELECT count(*) FROM {t})' for t in tables)
    [row] = w.owner.run(
        f'SELECT {counts},'
        " (SELECT md5(string_agg(id::text || ':' || balance_cents, ',' ORDER BY id)) FROM credit_accounts),"
        " (SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM campaigns c"
        '   WHERE c.id = ANY (CAST(:campaigns AS uuid[]))),'
        " (SELECT md5(string_agg(rc::text, ',' ORDER BY rc.id)) FROM redemption_codes rc"
        '   WHERE rc.campaign_id = ANY (CAST(:campaigns AS uuid[]))),'
        " (SELECT md5(string_agg(a::text, ',' ORDER BY a.id)) FROM system_alerts a"
        '   WHERE a.id = ANY (CAST(:alerts AS uuid[]))),'
        ' (SELECT md5(m::text) FROM monitor_state m)',
        campaigns=campaigns,
        alerts=list(w.alerts_raised),
    )
    names = [*(f'rows of {t}' for t in tables), 'balances', 'campaigns', 'issued codes', 'alerts', 'monitor state']
    return dict(zip(names, row, strict=True))


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before[k], after[k]) for k in before if before[k] != after[k]}


# --- the requests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json_body: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


Build = Callable[[World, Tenant], Request]
REQUESTS: dict[tuple[str, str], Build] = {}


def request(method: str, path: str) -> Callable[[Build], Build]:
    """Register how to call one route of the template on a tenant's entities."""

    def register(build: Build) -> Build:
        REQUESTS[(method, path)] = build
        return build

    return register


def simple(method: str, path: str, fill: Callable[[World, Tenant], dict[str, str]] | None = None) -> None:
    """A route called with no body: its path filled in with the tenant's ids."""
    REQUESTS[(method, path)] = lambda w, t: Request(method, path.format(**(fill(w, t) if fill else {})))


def new_code() -> str:
    return f'MATRIX-{uuid.uuid4().hex[:16].upper()}'


@request('POST', '/provision-gift-card')
def _provision(w: World, t: Tenant) -> Request:
    body = {'campaignId': t.campaign['id'], 'brandId': w.brand['id'], 'denomination': 25, 'redemptionCode': new_code()}
    return Request('POST', '/provision-gift-card', body)


@request('POST', '/allocate-credit')
def _allocate(w: World, t: Tenant) -> Request:
    body = {'fromAccountId': t.client['account_id'], 'toAccountId': t.campaign['account_id'], 'amount': 1}
    # With an Idempotency-Key, whose claim is written before the caller is authorized (and must not outlive a refusal).
    return Request('POST', '/allocate-credit', body, headers={'Idempotency-Key': new_code()})


@request('POST', '/reclaim-credit')
def _reclaim(w: World, t: Tenant) -> Request:
    body = {'fromAccountId': t.campaign['account_id'], 'toAccountId': t.client['account_id'], 'amount': 1}
    return Request('POST', '/reclaim-credit', body)


@request('POST', '/redeem')
def _redeem(w: World, t: Tenant) -> Request:
    return Request('POST', '/redeem', {'code': w.redeem_codes.pop()})


@request('POST', '/agencies')
def _new_agency(w: World, t: Tenant) -> Request:
    return Request('POST', '/agencies', {'name': factories.unique('Matrix agency')})


@request('POST', '/agencies/{agency_id}/clients')
def _new_client(w: World, t: Tenant) -> Request:
    return Request('POST', f'/agencies/{t.agency["id"]}/clients', {'name': factories.unique('Matrix client')})


@request('POST', '/clients/{client_id}/campaigns')
def _new_campaign(w: World, t: Tenant) -> Request:
    body = {'name': factories.unique('Matrix campaign'), 'budget_mode': 'shared'}
    return Request('POST', f'/clients/{t.client["id"]}/campaigns', body)


@request('PATCH', '/campaigns/{campaign_id}')
def _pause_or_resume(w: World, t: Tenant) -> Request:
    [[status]] = w.owner.run('SELECT status FROM campaigns WHERE id = CAST(:id AS uuid)', id=t.spare['id'])
    return Request('PATCH', f'/campaigns/{t.spare["id"]}', {'status': 'paused' if status == 'active' else 'active'})


@request('POST', '/brands')
def _new_brand(w: World, t: Tenant) -> Request:
    return Request('POST', '/brands', {'name': factories.unique('Matrix brand'), 'denominations': [25]})


@request('POST', '/pools')
def _new_pool(w: World, t: Tenant) -> Request:
    return Request('POST', '/pools', {'brand_id': w.brand['id'], 'denomination': 25, 'cost_per_card': 23.5})


@request('POST', '/pools/{pool_id}/cards')
def _import(w: World, t: Tenant) -> Request:
    csv = f'card_code,card_number\nMATRIX-{uuid.uuid4().hex},{uuid.uuid4().int % 10**16:016d}\n'
    return Request('POST', f'/pools/{w.pool_id}/cards', body=csv.encode(), headers={'Content-Type': 'text/csv'})


@request('POST', '/campaigns/{campaign_id}/codes')
def _issue(w: World, t: Tenant) -> Request:
    body = {'brand_id': w.brand['id'], 'denomination': 25, 'count': 1}
    return Request('POST', f'/campaigns/{t.campaign["id"]}/codes', body)


@request('POST', '/codes/{code_id}/void')
def _void(w: World, t: Tenant) -> Request:
    return Request('POST', f'/codes/{t.void_codes.pop()}/void')


@request('POST', '/alerts/{alert_id}/acknowledge')
def _acknowledge(w: World, t: Tenant) -> Request:
    return Request('POST', f'/alerts/{w.alert_ids.pop()}/acknowledge')


@request('GET', '/redemptions')
def _redemptions(w: World, t: Tenant) -> Request:
    return Request('GET', '/redemptions?' + urlencode({'client_id': t.client['id']}))


@request('GET', '/redemptions/{redemption_id}')
def _redemption(w: World, t: Tenant) -> Request:
    return Request('GET', f'/redemptions/{t.delivered[0]}')


@request('POST', '/redemptions/{redemption_id}/resend')
def _resend(w: World, t: Tenant) -> Request:
    return Request('POST', f'/redemptions/{t.delivered.pop()}/resend')


@request('PUT', '/campaigns/{campaign_id}/delivery')
def _campaign_delivery(w: World, t: Tenant) -> Request:
    return Request('PUT', f'/campaigns/{t.campaign["id"]}/delivery', {'content': 'link'})


@request('PUT', '/brands/{brand_id}/message')
def _brand_message(w: World, t: Tenant) -> Request:
    return Request('PUT', f'/brands/{w.brand["id"]}/message', {'instructions': 'Spend it online or in store.'})


@request('POST', '/clients/{client_id}/sms-consents')
def _sms_consent(w: World, t: Tenant) -> Request:
    return Request('POST', f'/clients/{t.client["id"]}/sms-consents', {'phone': ds.new_phone(), 'source': 'matrix'})


for _path in ('/monitor-gift-card-system',):
    simple('POST', _path)
for _path in (
    '/redeem',
    '/platform',
    '/agencies',
    '/brands',
    '/pools',
    '/alerts',
    '/dashboards/admin',
    '/redemption-attempts',
    '/openapi.json',
    '/docs',
    '/me',
):
    simple('GET', _path)
simple('GET', '/docs/{asset}', lambda w, t: {'asset': 'docs.js'})
simple('GET', '/agencies/{agency_id}', lambda w, t: {'agency_id': t.agency['id']})
simple('GET', '/agencies/{agency_id}/clients', lambda w, t: {'agency_id': t.agency['id']})
simple('GET', '/dashboards/agencies/{agency_id}', lambda w, t: {'agency_id': t.agency['id']})
simple('GET', '/clients/{client_id}', lambda w, t: {'client_id': t.client['id']})
simple('GET', '/clients/{client_id}/campaigns', lambda w, t: {'client_id': t.client['id']})
simple('GET', '/dashboards/clients/{client_id}', lambda w, t: {'client_id': t.client['id']})
simple('GET', '/campaigns/{campaign_id}', lambda w, t: {'campaign_id': t.campaign['id']})
simple('GET', '/campaigns/{campaign_id}/codes', lambda w, t: {'campaign_id': t.campaign['id']})
simple('GET', '/accounts/{account_id}', lambda w, t: {'account_id': t.client['account_id']})
simple('GET', '/accounts/{account_id}/transactions', lambda w, t: {'account_id': t.client['account_id']})
simple('GET', '/brands/{brand_id}', lambda w, t: {'brand_id': w.brand['id']})
simple('GET', '/pools/{pool_id}', lambda w, t: {'pool_id': w.pool_id})
simple('GET', '/clients/{client_id}/sms-consents', lambda w, t: {'client_id': t.client['id']})


def send(live: Live, w: World, case: Case) -> Answer:
    build = REQUESTS.get((case.row.method, case.row.path))
    if build is None:
        pytest.fail(f'no request for {case.row.method} {case.row.path}: add one to REQUESTS')
    r = build(w, w.tenant(case.row.tenant))
    return live.call(
        r.method,
        r.path,
        token=w.tokens[case.role],
        json_body=r.json_body,
        body=r.body,
        headers=r.headers,
        source_ip=w.source_ip,
    )


# --- the tests -------------------------------------------------------------------------------------------


def test_every_route_of_the_template_has_rows_and_every_row_a_route() -> None:
    in_matrix = {(r.method, r.path) for r in ROWS}
    assert ROUTES - in_matrix == set(), f'routes of template.yaml without rows in {MATRIX.name}'
    assert in_matrix - ROUTES == set(), f'rows in {MATRIX.name} of routes template.yaml does not declare'
    assert set(REQUESTS) == ROUTES, 'each route needs a request here'
    for route in sorted(in_matrix):
        tenants = sorted(r.tenant for r in ROWS if (r.method, r.path) == route)
        assert tenants in (['foreign', 'own'], ['-']), f'{route}: one row for each of own and foreign, or one for -'


@pytest.mark.parametrize('case', CASES, ids=str)
def test_the_route_answers_as_the_matrix_says(live: Live, world: World, case: Case) -> None:
    refused = case.expected >= 400
    before = snapshot(world) if refused else None

    answer = send(live, world, case)

    assert answer.status == case.expected, answer.text[:500]
    if before is not None:
        assert changes(before, snapshot(world)) == {}, 'a refused call changed something'
        if answer.headers.get('content-type', '').startswith('application/json'):
            assert answer.json()['success'] is False and answer.error_code, answer.text[:500]
    if case.role in TENANT_MEMBERS:
        named = sorted(i for i in world.foreign.ids() if i in answer.text)
        assert named == [], "the answer names another tenant's entities"


def test_the_ledger_checks_clean_after_the_matrix(world: World) -> None:
    report = factories.ledger_check()
    assert report.ok, report.summary()
