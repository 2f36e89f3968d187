"""The redemption code routes and the attempts review through the admin function, with v2 events."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from admin_app import lambda_handler
from giftcards import code_administration, codes, ratelimit, redeeming
from redeem_app import lambda_handler as redeem_handler

from tests import factories
from tests import redeem_support as rs
from tests.events import call, http_event

CODE = re.compile(r'^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$')


def send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event(method, path, subject=subject, **kwargs))


@pytest.fixture
def camp(owner):
    return rs.campaign(owner, cards_in_stock=1)


def issue(camp: rs.Campaign, subject: str | None = None, **body: Any) -> tuple[int, dict[str, str], Any]:
    payload = {'brand_id': camp.brand['id'], 'denomination': 25, 'count': 3, **body}
    return send('POST', f'/campaigns/{camp.id}/codes', subject or camp.tree.client_admin, body=payload)


# --- issuing --------------------------------------------------------------------------------------------


def test_issuing_answers_201_with_the_codes_once(camp):
    status, headers, body = issue(camp)
    assert status == 201
    assert headers['cache-control'] == 'no-store'
    assert len(body['codes']) == len(set(body['codes'])) == 3
    assert all(CODE.match(code) for code in body['codes'])
    assert (body['count'], body['denomination'], body['brand_id'], body['campaign_id']) == (
        3,
        25,
        camp.brand['id'],
        camp.id,
    )
    assert all(rs.code_row(code)['status'] == 'issued' for code in body['codes'])


def test_issuing_as_csv(camp):
    status, headers, body = send(
        'POST',
        f'/campaigns/{camp.id}/codes',
        camp.tree.client_admin,
        body={'brand_id': camp.brand['id'], 'denomination': 50, 'count': 4},
        headers={'accept': 'text/csv, application/json;q=0.5'},
    )
    assert status == 201
    assert headers['content-type'] == 'text/csv; charset=utf-8'
    assert headers['cache-control'] == 'no-store'
    assert re.fullmatch(r'attachment; filename="redemption-codes-[0-9a-f-]{36}\.csv"', headers['content-disposition'])
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 4
    assert all(CODE.match(r['code']) and r['denomination'] == '50' for r in rows)
    assert all(rs.code_row(r['code'])['status'] == 'issued' for r in rows)


@pytest.mark.parametrize(
    ('change', 'field'),
    [
        ({'count': 0}, 'count'),
        ({'count': 10_001}, 'count'),
        ({'count': '5'}, 'count'),
        ({'count': 2.5}, 'count'),
        ({'count': True}, 'count'),
        ({'denomination': 10}, 'denomination'),
        ({'denomination': 25.001}, 'denomination'),
        ({'denomination': -25}, 'denomination'),
        ({'brand_id': '00000000-0000-0000-0000-000000000000'}, 'brand_id'),
        ({'brand_id': 'not-a-brand'}, 'brand_id'),
        ({'extra': 1}, 'extra'),
    ],
)
def test_invalid_requests_are_422_and_issue_nothing(camp, change, field):
    status, _, body = issue(camp, **change)
    assert status == 422
    assert body['error']['code'] == 'validation_error'
    assert field in body['error']['message']
    assert code_administration.list_codes(camp.tree.client_admin, camp.id, 50, None).items == []


@pytest.mark.parametrize('raw', ['{"brand_id": ', '[1]', ''])
def test_malformed_bodies_are_4xx(camp, raw):
    status, _, body = send('POST', f'/campaigns/{camp.id}/codes', camp.tree.client_admin, raw_body=raw)
    assert status in (400, 422) and body['success'] is False


def test_who_may_issue(owner, camp):
    other = factories.hierarchy_tree(owner)
    expected = {
        camp.tree.platform_admin: 201,
        camp.tree.agency_admin: 201,
        camp.tree.client_admin: 201,
        camp.tree.integration: 404,  # an integration only provisions
        other.client_admin: 404,
        other.agency_admin: 404,
        factories.stranger(): 404,
    }
    assert {subject: issue(camp, subject, count=1)[0] for subject in expected} == expected


def test_issuing_without_a_token_is_401(camp):
    status, _, _ = call(
        lambda_handler,
        http_event(
            'POST', f'/campaigns/{camp.id}/codes', body={'brand_id': camp.brand['id'], 'denomination': 25, 'count': 1}
        ),
    )
    assert status == 401


def test_unknown_campaign_is_404(camp):
    status, _, _ = send(
        'POST',
        '/campaigns/00000000-0000-0000-0000-000000000000/codes',
        camp.tree.platform_admin,
        body={'brand_id': camp.brand['id'], 'denomination': 25, 'count': 1},
    )
    assert status == 404


# --- listing and voiding --------------------------------------------------------------------------------


def test_listing_is_masked_with_status_and_paginated(camp):
    issued = issue(camp, count=3)[2]['codes']
    redeemed, voided, kept = issued
    assert (
        call(
            redeem_handler,
            http_event('POST', '/redeem', body={'code': redeemed}, source_ip=rs.unique_ip()),
        )[0]
        == 200
    )
    assert send('POST', f'/codes/{rs.code_row(voided)["id"]}/void', camp.tree.client_admin)[0] == 200
    status, _, first = send('GET', f'/campaigns/{camp.id}/codes', camp.tree.client_admin, query={'limit': '2'})
    assert status == 200 and len(first['items']) == 2 and first['next_cursor']
    _, _, rest = send(
        'GET',
        f'/campaigns/{camp.id}/codes',
        camp.tree.client_admin,
        query={'limit': '2', 'cursor': first['next_cursor']},
    )
    items = first['items'] + rest['items']
    assert rest['next_cursor'] is None
    assert {i['last4']: i['status'] for i in items} == {
        redeemed[-4:]: 'redeemed',
        voided[-4:]: 'void',
        kept[-4:]: 'issued',
    }
    assert all(i['code'] == '****-****-****-' + i['last4'] for i in items)
    listed = repr(items)
    assert not any(code[:-4] in listed for code in issued)
    _, _, only_void = send('GET', f'/campaigns/{camp.id}/codes', camp.tree.client_admin, query={'status': 'void'})
    assert [i['last4'] for i in only_void['items']] == [voided[-4:]]


@pytest.mark.parametrize('query', [{'limit': '0'}, {'limit': '501'}, {'status': 'lost'}, {'cursor': 'garbage'}])
def test_bad_list_parameters_are_422(camp, query):
    assert send('GET', f'/campaigns/{camp.id}/codes', camp.tree.client_admin, query=query)[0] == 422


def test_void_route(camp):
    code = issue(camp, count=1)[2]['codes'][0]
    code_id = rs.code_row(code)['id']
    assert send('POST', f'/codes/{code_id}/void', camp.tree.integration)[0] == 404
    assert send('POST', f'/codes/{code_id}/void', factories.stranger())[0] == 404
    status, _, body = send('POST', f'/codes/{code_id}/void', camp.tree.client_admin)
    assert status == 200 and body['status'] == 'void' and body['code'] == f'****-****-****-{code[-4:]}'
    assert send('POST', '/codes/not-an-id/void', camp.tree.client_admin)[0] == 404


def test_voiding_a_redeemed_code_is_409(camp):
    code = issue(camp, count=1)[2]['codes'][0]
    redeeming.redeem(code, ratelimit.Source.of(rs.unique_ip(), 'pytest'))
    status, _, body = send('POST', f'/codes/{rs.code_row(code)["id"]}/void', camp.tree.client_admin)
    assert status == 409 and body['error']['code'] == 'code_redeemed'


# --- fraud review ---------------------------------------------------------------------------------------


def test_platform_admins_list_attempts_by_ip_and_since(camp):
    ip = rs.unique_ip()
    for typed in ('nope', codes.generate_code()):
        call(redeem_handler, http_event('POST', '/redeem', body={'code': typed}, source_ip=ip, user_agent='probe/1'))
    status, _, body = send('GET', '/redemption-attempts', camp.tree.platform_admin, query={'ip': ip})
    assert status == 200
    assert [(a['ip'], a['outcome'], a['user_agent'], a['code_id']) for a in body['items']] == [
        (ip, 'invalid_code', 'probe/1', None)
    ] * 2
    assert body['next_cursor'] is None
    later = send(
        'GET', '/redemption-attempts', camp.tree.platform_admin, query={'ip': ip, 'since': '2999-01-01T00:00:00'}
    )[2]
    assert later['items'] == []
    paged = send('GET', '/redemption-attempts', camp.tree.platform_admin, query={'ip': ip, 'limit': '1'})[2]
    assert len(paged['items']) == 1 and paged['next_cursor']


@pytest.mark.parametrize('query', [{'ip': 'nope'}, {'since': 'yesterday'}, {'limit': '0'}, {'cursor': 'x'}])
def test_bad_attempt_queries_are_422(camp, query):
    assert send('GET', '/redemption-attempts', camp.tree.platform_admin, query=query)[0] == 422


def test_only_platform_admins_list_attempts(camp):
    for subject in (camp.tree.client_admin, camp.tree.agency_admin, camp.tree.integration):
        assert send('GET', '/redemption-attempts', subject)[0] == 403
