"""Every route of template.yaml, through a real `giftcard serve`, fed what a careless or hostile caller can send:
bodies that are not UTF-8, NUL characters and lone surrogates, odd spellings of ids, wrong content types, odd
query strings and headers. No answer is a 5xx; every refusal is in the contract's error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from giftcard_local.template import http_routes, load_template
from giftcard_local.tokens import issue_token

from tests import provisioning_support as ps
from tests.http_support import PROJECT, Answer, Live

ROUTES = http_routes(load_template(PROJECT / 'template.yaml'))

# (id, content type, raw body)
BODIES: list[tuple[str, str | None, bytes]] = [
    ('not-utf8', 'application/json', b'{"name": "\xff\xfe"}'),
    ('not-utf8-no-type', None, b'\xc3\x28'),
    ('nul-escaped', 'application/json', b'{"name": "a\\u0000b", "code": "A\\u0000", "campaignId": "\\u0000"}'),
    ('nul-raw', 'application/json', b'{"name": "a\x00b"}'),
    ('lone-surrogate', 'application/json', b'{"name": "\\ud800", "code": "\\udfff", "notes": "\\ud83d"}'),
    ('surrogate-key', 'application/json', b'{"\\ud800": 1}'),
    ('text-plain', 'text/plain', b'{"name": "A"}'),
    ('xml', 'application/xml', b'<name>A</name>'),
    ('form', 'application/x-www-form-urlencoded', b'name=%00&code=%ff%fe&amount=1e999'),
    (
        'multipart',
        'multipart/form-data; boundary=x',
        b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\n\x00\r\n--x--\r\n',
    ),
    ('multipart-no-boundary', 'multipart/form-data', b'garbage'),
    ('json-utf16', 'application/json; charset=utf-16', '{"name": "A"}'.encode('utf-16')),
    ('csv-nul', 'text/csv', b'card_code,card_number\nA\x00,1\n'),
    ('csv-not-utf8', 'text/csv', b'card_code,card_number\n\xff\xfe,1\n'),
    ('huge-number', 'application/json', b'{"amount": 1e999999, "count": 123456789012345678901234567890}'),
    ('deep', 'application/json', b'[' * 50_000),
]

ODD_IDS = [
    'urn:uuid:{id}',
    '{{{id}}}',
    '{hex}',
    '{upper}',
    '%00',
    '%ED%A0%80',  # a lone surrogate, percent-encoded
    'x' * 3000,
    '..',
    '%E2%82%AC',
]

QUERIES = [
    '?limit=%00',
    '?limit=99999999999999999999999',
    '?cursor=%ED%A0%80',
    '?cursor=%00',
    '?status=%00&brand_id=%00',
]

HEADERS = [
    {'Idempotency-Key': 'k' * 5000},
    {'Idempotency-Key': 'é'.encode().decode('latin-1')},
    {'X-Forwarded-For': '%00'},
]


@pytest.fixture(scope='module')
def world(database_url: str) -> dict[str, Any]:
    from giftcards import db

    with db.owner_connection() as owner:
        s = ps.setup(owner, funds_cents=100_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
    ids = {
        'agency_id': s.tree.agency['id'],
        'client_id': s.tree.client['id'],
        'campaign_id': s.campaign_id,
        'brand_id': s.brand['id'],
        'pool_id': pool,
        'account_id': s.tree.client['account_id'],
        'code_id': s.campaign_id,  # any id: the route must still answer in the contract's shape
        'alert_id': s.campaign_id,
        'asset': 'docs.js',  # the /docs page's own script
        'redemption_id': s.provision().redemption.id,
    }
    return {'admin': s.admin, 'ids': ids, 'agency_account': s.tree.agency['account_id']}


def concrete(path: str, ids: dict[str, str], odd: str | None = None) -> list[str]:
    """The route's path with real ids, or with each path id spelled `odd`."""
    params = [part[1:-1] for part in path.split('/') if part.startswith('{')]
    if odd is None:
        return [path.format(**ids)] if params else [path]
    spelled = []
    for param in params:
        real = ids[param]
        value = odd.format(id=real, hex=real.replace('-', ''), upper=real.upper())
        spelled.append(path.format(**{**ids, param: value}))
    return spelled


def refusal_problems(answer: Answer, route: str) -> str | None:
    """What is wrong with an answer: a 5xx, or a refusal outside the contract's error shape."""
    if answer.status >= 500:
        return f'{answer.status}: {answer.text[:300]}'
    if answer.status < 400:
        return None
    if route.endswith(' /redeem') and answer.headers.get('content-type', '').startswith('text/html'):
        return None  # the end customer's form gets its page back, with the error on it
    try:
        body = answer.json()
    except ValueError:
        return f'{answer.status} is not JSON: {answer.text[:200]}'
    error = body.get('error') if isinstance(body, dict) else None
    if body.get('success') is not False or not isinstance(error, dict):
        return f'{answer.status} outside the error shape: {answer.text[:200]}'
    if not isinstance(error.get('code'), str) or not isinstance(error.get('message'), str):
        return f'{answer.status} error without code and message: {answer.text[:200]}'
    return None


def check_all(live: Live, token: str, requests: list[tuple[str, str, str, dict[str, str], bytes | None]]) -> list[str]:
    problems = []
    for route, method, path, headers, body in requests:
        answer = live.call(method, path, token=token, headers=headers, body=body, timeout_s=20)
        problem = refusal_problems(answer, route)
        if problem:
            problems.append(f'{method} {path[:80]} {headers} {body[:60] if body else b""!r}: {problem}')
    return problems


def test_bodies_no_route_takes_are_refused_in_the_error_shape_on_every_route(live: Live, world: dict[str, Any]) -> None:
    token = issue_token(world['admin'])
    requests = []
    for route in ROUTES:
        for path in concrete(route.path, world['ids']):
            for _, content_type, body in BODIES:
                headers = {'Content-Type': content_type} if content_type else {}
                requests.append((f'{route.method} {route.path}', route.method, path, headers, body))

    problems = check_all(live, token, requests)
    assert not problems, '\n'.join(problems)


def test_odd_spellings_of_ids_are_refused_in_the_error_shape_on_every_route(live: Live, world: dict[str, Any]) -> None:
    token = issue_token(world['admin'])
    requests = []
    for route in ROUTES:
        for odd in ODD_IDS:
            for path in concrete(route.path, world['ids'], odd):
                body = b'{}' if route.method in ('POST', 'PATCH') else None
                headers = {'Content-Type': 'application/json'} if body else {}
                requests.append((f'{route.method} {route.path}', route.method, path, headers, body))

    problems = check_all(live, token, requests)
    assert not problems, '\n'.join(problems)


def test_a_request_that_is_not_valid_http_is_refused_before_any_function_runs(live: Live) -> None:
    # A control character in a header value: the HTTP server refuses it itself, as API Gateway would.
    answer = live.call('POST', '/agencies', headers={'Content-Type': '\x7f/\x7f'}, body=b'{}')

    assert answer.status == 400


def test_odd_queries_and_headers_are_refused_in_the_error_shape_on_every_route(
    live: Live, world: dict[str, Any]
) -> None:
    token = issue_token(world['admin'])
    requests = []
    for route in ROUTES:
        for path in concrete(route.path, world['ids']):
            for query in QUERIES:
                requests.append((f'{route.method} {route.path}', route.method, path + query, {}, None))
            for headers in HEADERS:
                body = json.dumps({'x': 1}).encode() if route.method in ('POST', 'PATCH') else None
                requests.append((f'{route.method} {route.path}', route.method, path, headers, body))

    problems = check_all(live, token, requests)
    assert not problems, '\n'.join(problems)


def valid_bodies(world: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A body each JSON route would accept, keyed by (method, path)."""
    ids = world['ids']
    return {
        ('POST', '/provision-gift-card'): {
            'campaignId': ids['campaign_id'],
            'brandId': ids['brand_id'],
            'denomination': 25,
            'redemptionCode': 'EDGE-0001',
            'recipientId': 'r-1',
            'deliveryMethod': 'email',
            'deliveryAddress': 'a@example.com',
        },
        ('POST', '/allocate-credit'): {
            'fromAccountId': world['agency_account'],
            'toAccountId': ids['account_id'],
            'amount': 1,
            'notes': 'edge',
        },
        ('POST', '/reclaim-credit'): {
            'fromAccountId': ids['account_id'],
            'toAccountId': world['agency_account'],
            'amount': 1,
            'notes': 'edge',
        },
        ('POST', '/redeem'): {'code': 'ABCD-EFGH-JKLM-NPQR'},
        ('POST', '/agencies'): {'name': 'Edge agency'},
        ('POST', f'/agencies/{ids["agency_id"]}/clients'): {'name': 'Edge client'},
        ('POST', f'/clients/{ids["client_id"]}/campaigns'): {'name': 'Edge campaign', 'budget_mode': 'shared'},
        ('PATCH', f'/campaigns/{ids["campaign_id"]}'): {'status': 'active'},
        ('POST', '/brands'): {'name': 'Edge brand', 'denominations': [25], 'prices': []},
        ('POST', '/pools'): {'brand_id': ids['brand_id'], 'denomination': 25, 'cost_per_card': 23.5},
        ('POST', f'/campaigns/{ids["campaign_id"]}/codes'): {
            'brand_id': ids['brand_id'],
            'denomination': 25,
            'count': 1,
        },
        ('PUT', f'/campaigns/{ids["campaign_id"]}/delivery'): {'content': 'link'},
        ('PUT', f'/brands/{ids["brand_id"]}/message'): {'instructions': 'Spend it online.'},
        ('POST', f'/clients/{ids["client_id"]}/sms-consents'): {'phone': '+14155550100', 'source': 'edge'},
    }


def string_fields(body: dict[str, Any]) -> list[str]:
    return [name for name, value in body.items() if isinstance(value, str)]


@pytest.mark.parametrize(
    'bad',
    ['\x00', '\ud800', 'x' * 100_000, ' ', '\u202e\u0301'],
    ids=['nul', 'surrogate', 'huge', 'space', 'combining'],
)
def test_each_string_field_of_each_route_refuses_text_it_cannot_store(
    live: Live, world: dict[str, Any], bad: str
) -> None:
    token = issue_token(world['admin'])
    problems = []
    for (method, path), body in valid_bodies(world).items():
        for name in string_fields(body):
            for value in (bad, body[name] + bad):
                raw = json.dumps({**body, name: value}).encode()
                answer = live.call(method, path, token=token, body=raw, headers={'Content-Type': 'application/json'})
                problem = refusal_problems(answer, f'{method} {path}')
                if problem:
                    problems.append(f'{method} {path} {name}={value[:20]!r}: {problem}')

    assert not problems, '\n'.join(problems)
