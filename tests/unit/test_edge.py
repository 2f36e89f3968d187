"""`giftcards.api.edge.refusal`: what no route may receive, refused before routing, in the contract's shape."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from giftcards.api.edge import refusal


def event(
    body: str | bytes | None = None, content_type: str | None = 'application/json', **extra: Any
) -> dict[str, Any]:
    e: dict[str, Any] = {'headers': {'content-type': content_type} if content_type else {}, **extra}
    if isinstance(body, bytes):
        e['body'], e['isBase64Encoded'] = base64.b64encode(body).decode(), True
    elif body is not None:
        e['body'] = body
        e.setdefault('isBase64Encoded', False)
    return e


@pytest.mark.parametrize(
    'ok',
    [
        event('{"name": "Acme"}'),
        event('{"note": "a\\\\u0000b"}'),  # an escaped backslash, then the letters u0000: no NUL
        event('{"name": "\\ud83d\\ude00 caf\\u00e9"}'),  # a surrogate pair is one character
        event(b'{"name": "caf\xc3\xa9"}'),  # base64-encoded UTF-8
        event('not json at all'),  # malformed: the route's validation answers 400
        event('[' * 5000 + ']' * 5000),
        event('card_code\nA\x00', content_type='text/csv'),  # the CSV import reads its own bytes
        event(None, pathParameters={'id': 'x'}, queryStringParameters={'limit': '5'}),
    ],
)
def test_usable_requests_pass(ok: dict[str, Any]) -> None:
    assert refusal(ok) is None


@pytest.mark.parametrize(
    ('bad', 'status', 'code', 'field'),
    [
        (event(b'{"name": "\xff"}'), 400, 'malformed_body', None),
        (event(b'\xc3(', content_type=None), 400, 'malformed_body', None),
        (event('{"name": "A"}'.encode('utf-16')), 400, 'malformed_body', None),
        (event('not base64!', isBase64Encoded=True), 400, 'malformed_body', None),
        (event('{"a": {"b": ["x", "y\\u0000"]}}'), 422, 'invalid_text', 'a.b[1]'),
        (event('{"a\\u0000": 1}'), 422, 'invalid_text', None),
        (event('{"name": "\\ud800"}'), 422, 'invalid_text', 'name'),
        (event('{"name": "\\udfff\\ud800"}'), 422, 'invalid_text', 'name'),
        (event('["\\u0000"]'), 422, 'invalid_text', '[0]'),
        (event('name=a%00', content_type='application/x-www-form-urlencoded'), 422, 'invalid_text', 'body.name'),
        (event(None, pathParameters={'campaign_id': 'a\x00'}), 422, 'invalid_text', 'path.campaign_id'),
        (event(None, queryStringParameters={'cursor': '\ud800'}), 422, 'invalid_text', 'query.cursor'),
        (event('x', content_type='multipart/form-data; boundary=x'), 415, 'unsupported_media_type', None),
        (event('[{"name": "A"}]'), 422, 'validation_error', None),
        (event('"a string"', content_type='application/problem+json'), 422, 'validation_error', None),
        (event(' 25 ', content_type=None), 422, 'validation_error', None),
        (event('null'), 422, 'validation_error', None),
    ],
)
def test_unusable_requests_are_refused(bad: dict[str, Any], status: int, code: str, field: str | None) -> None:
    error = refusal(bad)

    assert error is not None
    assert (error.status, error.code) == (status, code)
    body = error.body()
    assert body['success'] is False
    assert json.dumps(body)  # the answer itself is serialisable, whatever the input held
    if field is not None:
        assert body['error']['details'][0]['field'] == field
