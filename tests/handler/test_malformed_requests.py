"""Every hierarchy route that takes a body, fed bodies a caller could send by mistake or on purpose: each
answer is a 400 or 422 in the contract's error shape, never a 5xx, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from admin_app import lambda_handler
from giftcards import db

from tests import factories
from tests.events import call, http_event

HUGE = 'x' * 100_000

# Bodies no route accepts: (id, raw JSON text, expected status).
COMMON: list[tuple[str, str, int]] = [
    ('not-json', '{"name": ', 400),
    ('not-json-text', 'name=Acme', 400),
    ('trailing-garbage', '{"name": "A"} x', 400),
    ('too-deeply-nested', '[' * 100_000, 400),
    ('integer-over-digit-limit', '{"name": ' + '9' * 5_000 + '}', 400),
    ('empty-body', '', 422),
    ('null', 'null', 422),
    ('array', '[{"name": "A"}]', 422),
    ('number', '42', 422),
    ('string', '"Acme"', 422),
    ('empty-object', '{}', 422),
    ('unknown-field', '{"name": "A", "budget_mode": "shared", "status": "active", "denominations": [25], "x": 1}', 422),
]

# Route-specific bodies, all 422: (id, body as a Python value or raw text).
NAME_ONLY: list[tuple[str, Any]] = [
    ('name-missing', {}),
    ('name-null', {'name': None}),
    ('name-number', {'name': 12}),
    ('name-bool', {'name': True}),
    ('name-list', {'name': ['A']}),
    ('name-object', {'name': {'first': 'A'}}),
    ('name-empty', {'name': ''}),
    ('name-spaces', {'name': '    '}),
    ('name-whitespace', {'name': ' \t\n '}),
    ('name-huge', {'name': HUGE}),
    ('name-201', {'name': 'n' * 201}),
    ('extra-field', {'name': 'A', 'id': '7b1f4a4e-3c53-4b6b-9a51-2b8e3f0d7c11'}),
]

CAMPAIGN: list[tuple[str, Any]] = [
    *[(i, {**b, 'budget_mode': 'shared'}) for i, b in NAME_ONLY if i not in ('name-missing',)],
    ('name-missing', {'budget_mode': 'shared'}),
    ('mode-missing', {'name': 'A'}),
    ('mode-unknown', {'name': 'A', 'budget_mode': 'pooled'}),
    ('mode-case', {'name': 'A', 'budget_mode': 'Shared'}),
    ('mode-number', {'name': 'A', 'budget_mode': 1}),
    ('mode-null', {'name': 'A', 'budget_mode': None}),
    ('status-given', {'name': 'A', 'budget_mode': 'shared', 'status': 'active'}),
]

PATCH: list[tuple[str, Any]] = [
    ('nothing', {}),
    ('both-null', {'status': None, 'budget_mode': None}),
    ('status-unknown', {'status': 'deleted'}),
    ('status-number', {'status': 1}),
    ('status-list', {'status': ['paused']}),
    ('mode-unknown', {'budget_mode': 'pooled'}),
    ('mode-bool', {'budget_mode': False}),
    ('name-given', {'name': 'Renamed'}),
    ('huge-status', {'status': HUGE}),
    ('extra-field', {'status': 'paused', 'paused_reason': 'depleted'}),
]

BRAND_AMOUNTS: list[tuple[str, Any]] = [
    ('three-decimals', 25.001),
    ('zero', 0),
    ('negative', -25),
    ('nan', 'NaN-literal'),
    ('infinity', 'Infinity-literal'),
    ('string', '25'),
    ('over-a-billion', 1_000_000_000.01),
    ('way-over', 10**30),
    ('bool', True),
    ('null', None),
    ('object', {'amount': 25}),
]


def brand_body(**fields: Any) -> dict[str, Any]:
    return {'name': 'Brand', 'denominations': [25, 50], **fields}


def raw(body: Any) -> str:
    """JSON text for a body; the markers stand for the bare NaN / Infinity literals JSON parsers accept."""
    return json.dumps(body).replace('"NaN-literal"', 'NaN').replace('"Infinity-literal"', 'Infinity')


BRAND: list[tuple[str, Any]] = [
    *[(i, {**b, 'denominations': [25]}) for i, b in NAME_ONLY if i != 'name-missing'],
    ('name-missing', {'denominations': [25]}),
    ('denominations-missing', {'name': 'Brand'}),
    ('denominations-empty', brand_body(denominations=[])),
    ('denominations-not-a-list', brand_body(denominations=25)),
    ('denominations-string', brand_body(denominations='25,50')),
    ('denominations-51', brand_body(denominations=list(range(1, 52)))),
    ('denominations-duplicate', brand_body(denominations=[25, 25.0])),
    *[(f'denomination-{i}', brand_body(denominations=[25, v])) for i, v in BRAND_AMOUNTS],
    ('prices-not-a-list', brand_body(prices={'denomination': 25})),
    ('price-for-unknown-denomination', brand_body(prices=[{'denomination': 30, 'agency_price': 31}])),
    (
        'price-twice',
        brand_body(prices=[{'denomination': 25, 'agency_price': 26}, {'denomination': 25, 'client_price': 27}]),
    ),
    ('price-without-prices', brand_body(prices=[{'denomination': 25}])),
    ('price-without-denomination', brand_body(prices=[{'agency_price': 26}])),
    ('price-unknown-field', brand_body(prices=[{'denomination': 25, 'agency_price': 26, 'cost': 20}])),
    *[
        (f'agency-price-{i}', brand_body(prices=[{'denomination': 25, 'agency_price': v}]))
        for i, v in BRAND_AMOUNTS
        if i != 'null'
    ],
    *[
        (f'client-price-{i}', brand_body(prices=[{'denomination': 25, 'client_price': v}]))
        for i, v in BRAND_AMOUNTS
        if i != 'null'
    ],
    *[
        (f'price-denomination-{i}', brand_body(prices=[{'denomination': v, 'agency_price': 26}]))
        for i, v in BRAND_AMOUNTS
    ],
]


@pytest.fixture(scope='module')
def tree(database_url: str) -> Iterator[factories.Tree]:
    with db.owner_connection() as owner:
        yield factories.hierarchy_tree(owner)


def routes(t: factories.Tree) -> dict[str, tuple[str, str]]:
    return {
        'create-agency': ('POST', '/agencies'),
        'create-client': ('POST', f'/agencies/{t.agency["id"]}/clients'),
        'create-campaign': ('POST', f'/clients/{t.client["id"]}/campaigns'),
        'change-campaign': ('PATCH', f'/campaigns/{t.campaign["id"]}'),
        'create-brand': ('POST', '/brands'),
    }


CASES: list[tuple[str, str, str, int]] = [
    *[
        (route, case, text, status)
        for route in ('create-agency', 'create-client', 'create-campaign', 'change-campaign', 'create-brand')
        for case, text, status in COMMON
    ],
    *[(route, case, raw(body), 422) for route in ('create-agency', 'create-client') for case, body in NAME_ONLY],
    *[('create-campaign', case, raw(body), 422) for case, body in CAMPAIGN],
    *[('change-campaign', case, raw(body), 422) for case, body in PATCH],
    *[('create-brand', case, raw(body), 422) for case, body in BRAND],
]


def counts(owner: Any) -> list[Any]:
    [row] = owner.run(
        'SELECT (SELECT count(*) FROM agencies), (SELECT count(*) FROM clients), (SELECT count(*) FROM campaigns),'
        ' (SELECT count(*) FROM brands), (SELECT count(*) FROM brand_prices), (SELECT count(*) FROM audit_events)'
    )
    return list(row)


@pytest.mark.parametrize(('route', 'case', 'text', 'status'), CASES, ids=[f'{r}:{c}' for r, c, _, _ in CASES])
def test_a_bad_body_is_refused_with_the_contract_error_shape(owner, tree, route, case, text, status):
    method, path = routes(tree)[route]
    before = counts(owner)

    answer_status, headers, body = call(
        lambda_handler, http_event(method, path, raw_body=text, subject=tree.platform_admin)
    )

    assert answer_status == status, body
    assert headers['content-type'] == 'application/json'
    assert set(body) == {'success', 'error'}
    assert body['success'] is False
    assert body['error']['code'] == ('malformed_json' if status == 400 else 'validation_error')
    assert isinstance(body['error']['message'], str)
    assert body['error']['message']
    assert counts(owner) == before


def test_the_campaign_is_unchanged_by_refused_patches(owner, tree):
    for _, body in PATCH:
        call(
            lambda_handler,
            http_event('PATCH', f'/campaigns/{tree.campaign["id"]}', raw_body=raw(body), subject=tree.client_admin),
        )
    [[status, mode]] = owner.run(
        'SELECT status, budget_mode FROM campaigns WHERE id = CAST(:id AS uuid)', id=tree.campaign['id']
    )
    assert (status, mode) == ('active', 'isolated')


def test_validation_errors_name_the_field(tree):
    _, _, body = call(
        lambda_handler,
        http_event('POST', '/brands', body=brand_body(denominations=[25, 25.001]), subject=tree.platform_admin),
    )
    assert body['error']['details'] == [
        {'field': 'denominations.1', 'message': 'Value error, must have at most 2 decimal places'}
    ]


@pytest.mark.parametrize('amount', [25, 27.5, 1000.25, 0.01, 1_000_000_000])
def test_valid_amounts_are_accepted(tree, amount):
    body = {'name': factories.unique('Brand'), 'denominations': [amount]}
    status, _, answer = call(lambda_handler, http_event('POST', '/brands', body=body, subject=tree.platform_admin))
    assert (status, answer['denominations']) == (201, [amount])
