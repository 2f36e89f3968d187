"""The pool routes through the admin function with API Gateway v2 events: answers, errors, and no 5xx for any body."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from admin_app import lambda_handler

from tests import factories
from tests.events import call, http_event


def send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event(method, path, subject=subject, **kwargs))


def upload(subject: str | None, pool_id: str, text: str | bytes, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    kwargs.setdefault('content_type', 'text/csv')
    return send('POST', f'/pools/{pool_id}/cards', subject, raw_body=text, **kwargs)


def new_code() -> str:
    return 'ZQ' + uuid.uuid4().hex[:14].upper()


def good_file(count: int = 2) -> str:
    return 'card_code,card_number\n' + ''.join(f'{new_code()},6006{i:012d}\n' for i in range(count))


@pytest.fixture
def admin(owner: Any) -> str:
    return factories.platform_admin(owner)


@pytest.fixture
def brand(database_url: str) -> dict[str, Any]:
    return factories.brand(denominations_cents=(2500, 5000))


@pytest.fixture
def pool(admin: str, brand: dict[str, Any]) -> dict[str, Any]:
    status, _, body = send(
        'POST', '/pools', admin, body={'brand_id': brand['id'], 'denomination': 25, 'cost_per_card': 23.5}
    )
    assert status == 201, body
    return body


# --- POST /pools ---------------------------------------------------------------------------------------


def test_a_platform_admin_creates_a_pool(admin, brand):
    body = {'brand_id': brand['id'], 'denomination': 50, 'cost_per_card': 47.25, 'low_stock_threshold': 20}

    status, _, created = send('POST', '/pools', admin, body=body)

    assert status == 201
    assert uuid.UUID(created.pop('id'))
    assert created.pop('created_at')
    assert created == {
        'brand_id': brand['id'],
        'denomination': 50,
        'cost_per_card': 47.25,
        'low_stock_threshold': 20,
        'available': 0,
        'claimed': 0,
    }


def test_the_low_stock_threshold_defaults_to_50(pool):
    assert pool['low_stock_threshold'] == 50


def test_creating_a_pool_is_audited(owner, admin, pool):
    rows = owner.run('SELECT actor, action FROM audit_events WHERE entity_id = CAST(:id AS uuid)', id=pool['id'])
    assert rows == [[admin, 'pool.created']]


@pytest.mark.parametrize(
    ('fields', 'code'),
    [
        ({'denomination': 30}, 'denomination_not_offered'),
        ({'brand_id': str(uuid.uuid4())}, 'unknown_brand'),
        ({'brand_id': 'not-a-uuid'}, 'validation_error'),
        ({'cost_per_card': 0}, 'validation_error'),
        ({'cost_per_card': -1}, 'validation_error'),
        ({'cost_per_card': 23.505}, 'validation_error'),
        ({'cost_per_card': '23.50'}, 'validation_error'),
        ({'denomination': None}, 'validation_error'),
        ({'low_stock_threshold': -1}, 'validation_error'),
        ({'low_stock_threshold': 2.5}, 'validation_error'),
        ({'low_stock_threshold': True}, 'validation_error'),
        ({'low_stock_threshold': '10'}, 'validation_error'),
        ({'available': 10}, 'validation_error'),
    ],
)
def test_an_invalid_pool_is_refused(owner, admin, brand, fields, code):
    before = owner.run('SELECT count(*) FROM card_pools')
    body = {'brand_id': brand['id'], 'denomination': 25, 'cost_per_card': 23.5, **fields}

    status, _, answer = send('POST', '/pools', admin, body=body)

    assert (status, answer['success'], answer['error']['code']) == (422, False, code)
    assert owner.run('SELECT count(*) FROM card_pools') == before


@pytest.mark.parametrize('raw', ['{"brand_id": ', 'brand_id=1', '', 'null', '[]', '"x"', '{}'])
def test_a_malformed_pool_body_is_a_client_error(admin, raw):
    status, _, answer = send('POST', '/pools', admin, raw_body=raw)
    assert status in (400, 422)
    assert answer['success'] is False


def test_only_a_platform_admin_creates_pools(owner, brand):
    tree = factories.hierarchy_tree(owner)
    body = {'brand_id': brand['id'], 'denomination': 25, 'cost_per_card': 23.5}
    for subject in (tree.agency_admin, tree.client_admin, tree.integration, factories.stranger()):
        status, _, answer = send('POST', '/pools', subject, body=body)
        assert (status, answer['error']['code']) == (403, 'forbidden')
    assert send('POST', '/pools', None, body=body)[0] == 401


# --- GET /pools, GET /pools/{id} -----------------------------------------------------------------------


def test_a_pool_is_read_with_its_stock(admin, pool):
    upload(admin, pool['id'], good_file(3))

    status, _, body = send('GET', f'/pools/{pool["id"]}', admin)

    assert status == 200
    assert (body['id'], body['available'], body['claimed']) == (pool['id'], 3, 0)


@pytest.mark.parametrize('pool_id', [str(uuid.uuid4()), 'not-a-uuid'])
def test_an_unknown_pool_is_not_found(admin, pool_id):
    status, _, body = send('GET', f'/pools/{pool_id}', admin)
    assert (status, body['error']['code']) == (404, 'not_found')


def test_pools_are_listed_by_brand_a_page_at_a_time(admin, brand):
    created = [
        send('POST', '/pools', admin, body={'brand_id': brand['id'], 'denomination': d, 'cost_per_card': c})[2]
        for d, c in ((25, 23), (25, 24), (50, 47))
    ]
    send('POST', '/pools', admin, body={'brand_id': factories.brand()['id'], 'denomination': 25, 'cost_per_card': 1})

    seen, cursor = [], None
    while True:
        query = {'brand_id': brand['id'], 'limit': '2', **({'cursor': cursor} if cursor else {})}
        status, _, page = send('GET', '/pools', admin, query=query)
        assert status == 200
        seen += page['items']
        cursor = page['next_cursor']
        if cursor is None:
            break

    assert seen == created


@pytest.mark.parametrize(
    'query', [{'brand_id': 'nope'}, {'limit': '0'}, {'limit': '501'}, {'limit': 'x'}, {'cursor': 'garbage!'}]
)
def test_a_bad_listing_query_is_refused(admin, query):
    status, _, body = send('GET', '/pools', admin, query=query)
    assert (status, body['success']) == (422, False)


def test_a_forged_cursor_is_refused(admin):
    forged = base64.urlsafe_b64encode(b'["yesterday","not-a-uuid"]').decode().rstrip('=')
    status, _, body = send('GET', '/pools', admin, query={'cursor': forged})
    assert (status, body['error']['code']) == (422, 'validation_error')


def test_only_a_platform_admin_reads_pools(owner, pool):
    tree = factories.hierarchy_tree(owner)
    for path in ('/pools', f'/pools/{pool["id"]}'):
        status, _, body = send('GET', path, tree.client_admin)
        assert (status, body['error']['code']) == (403, 'forbidden')


# --- POST /pools/{id}/cards ----------------------------------------------------------------------------


def test_a_csv_file_is_imported(admin, pool):
    status, _, body = upload(admin, pool['id'], good_file(4))

    assert (status, body) == (201, {'imported': 4})
    assert send('GET', f'/pools/{pool["id"]}', admin)[2]['available'] == 4


def test_a_base64_encoded_file_with_charset_and_bom_is_imported(admin, pool):
    raw = b'\xef\xbb\xbf' + good_file(2).replace('\n', '\r\n').encode()
    status, _, body = upload(admin, pool['id'], raw, content_type='text/csv; charset=utf-8')
    assert (status, body) == (201, {'imported': 2})


def test_a_bad_file_answers_422_with_line_numbers_and_imports_nothing(admin, pool):
    code = new_code()
    text = f'card_code,card_number\n{code},1\n{new_code()},2\n,3\n{code},4\n'

    status, _, body = upload(admin, pool['id'], text)

    assert status == 422
    assert body['error']['code'] == 'invalid_file'
    assert body['error']['details'] == [
        {'line': 4, 'message': 'card_code is empty'},
        {'line': 5, 'message': 'card_code duplicates the code on line 2'},
    ]
    assert code not in str(body)
    assert send('GET', f'/pools/{pool["id"]}', admin)[2]['available'] == 0


@pytest.mark.parametrize(
    'content_type',
    ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'text/csv; charset=latin-1', None],
)
def test_a_file_that_is_not_utf8_csv_is_unsupported(admin, pool, content_type):
    status, _, body = upload(admin, pool['id'], good_file(1), content_type=content_type)
    assert (status, body['error']['code']) == (415, 'unsupported_media_type')


def test_an_empty_upload_is_refused(admin, pool):
    status, _, body = upload(admin, pool['id'], '')
    assert (status, body['error']['details']) == (422, [{'line': 1, 'message': body['error']['details'][0]['message']}])
    assert 'empty' in body['error']['details'][0]['message']


def test_a_file_for_an_unknown_pool_is_not_found(admin):
    status, _, body = upload(admin, str(uuid.uuid4()), good_file(1))
    assert (status, body['error']['code']) == (404, 'not_found')


def test_only_a_platform_admin_imports_cards(owner, pool):
    tree = factories.hierarchy_tree(owner)
    status, _, body = upload(tree.agency_admin, pool['id'], good_file(1))
    assert (status, body['error']['code']) == (403, 'forbidden')
    assert upload(None, pool['id'], good_file(1))[0] == 401


def test_a_body_flagged_base64_that_is_not_base64_is_a_bad_request(admin, pool):
    event = http_event(
        'POST', f'/pools/{pool["id"]}/cards', subject=admin, raw_body='not base64!', content_type='text/csv'
    )
    event['isBase64Encoded'] = True
    status, _, body = call(lambda_handler, event)
    assert (status, body['error']['code']) == (400, 'bad_request')


@pytest.mark.parametrize(
    'raw',
    [
        b'\x00\x01\x02\x03',
        b'\xff\xfe\xfd',
        b'card_code,card_number\n\x00,1\n',
        b'card_code,card_number\n"unterminated',
        b'"card_code,card_number\n',
        b'card_code;card_number\nA;1\n',
        b'card_code,card_number' + b',x' * 2_000 + b'\n',
        b'card_code,card_number\n' + b'A' * 100_000 + b',1\n',
        b'card_code,card_number\n\\.\nA,1\n',
        b'card_code,card_number\r\nA,1\nB,2\r\n',
        b'\r\n\r\n',
        b'card_code,card_number\n,\n,\n',
        'card_code,card_number\n\u2028\u0085,1\n'.encode(),
    ],
)
def test_no_upload_is_answered_with_a_server_error(admin, pool, raw):
    status, _, body = upload(admin, pool['id'], raw)
    assert 400 <= status < 500, body
    assert body['success'] is False
    assert send('GET', f'/pools/{pool["id"]}', admin)[2]['available'] == 0
