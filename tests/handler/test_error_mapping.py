"""The one mapping from failures to HTTP answers (`giftcards.api.app`), at its last wall: what no use case
handled is a 422 when the database refused a value a caller could have sent, and a 500 without details
otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router
from giftcards.api.app import http_handler, make_app
from pg8000.native import DatabaseError

from tests.events import call, http_event

router = Router()
FAILURES: dict[str, BaseException] = {
    'malformed-uuid': DatabaseError({'S': 'ERROR', 'C': '22P02', 'M': 'invalid input syntax for type uuid: "x"'}),
    'nul-in-text': DatabaseError({'S': 'ERROR', 'C': '22021', 'M': 'invalid byte sequence for encoding "UTF8": 0x00'}),
    'out-of-range': DatabaseError({'S': 'ERROR', 'C': '22003', 'M': 'value out of range'}),
    'division-by-zero': DatabaseError({'S': 'ERROR', 'C': '22012', 'M': 'division by zero'}),
    'bug': RuntimeError('secret detail'),
}


@router.get('/fail/<kind>')
def fail(kind: str) -> dict[str, Any]:
    raise FAILURES[kind]


handler = http_handler(make_app(router))


@pytest.mark.parametrize('kind', ['malformed-uuid', 'nul-in-text', 'out-of-range'])
def test_a_value_the_database_refused_that_no_check_caught_is_a_422(kind: str) -> None:
    status, _, body = call(handler, http_event('GET', f'/fail/{kind}', subject='someone'))

    assert status == 422
    assert body == {
        'success': False,
        'error': {'code': 'invalid_input', 'message': 'A value in the request cannot be stored as given.'},
    }


@pytest.mark.parametrize('kind', ['division-by-zero', 'bug'])
def test_any_other_failure_is_a_500_without_details(kind: str) -> None:
    status, _, body = call(handler, http_event('GET', f'/fail/{kind}', subject='someone'))

    assert status == 500
    assert body == {'success': False, 'error': {'code': 'internal_error', 'message': 'An internal error occurred.'}}
