"""The Tillo v2 client: signatures, the exact requests it sends, and how it reads answers (shared/vendors/README.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from giftcards.vendors import IssuedCard, VendorOrder, VendorOutcomeUnknown, VendorRefused
from giftcards.vendors.tillo import TilloVendor, signature, transaction_type
from giftcards.vendors.transport import HttpRequest, HttpResponse, NoAnswer, NotSent

BASE = 'https://sandbox.tillo.dev/api/v2'
CREDENTIALS = {'api_key': 'test-api-key', 'api_secret': 'test-secret'}
# README section 4: the published signatures for these inputs.
ISSUE_SIGNATURE = '4c22d22dc128a0a6deb100cb5764f98e2b11e58227bee800b6de589731d79756'
CHECK_FLOATS_SIGNATURE = 'a50da72f414aa5f56001e114c67c61b266af03283d2c87a8c3d98ff13048147f'

FIXTURE_REQUEST = {
    'client_request_id': 'order-000123',
    'brand': 'amazon',
    'face_value': {'amount': '10.00', 'currency': 'GBP'},
    'delivery_method': 'code',
    'fulfilment_by': 'partner',
    'sector': 'gift-card-mall',
}
FIXTURE_200: dict[str, Any] = {
    'code': '000',
    'status': 'success',
    'message': 'Card created successfully',
    'data': {
        'brand': 'amazon',
        'code': '99998888777766665555',
        'pin': '1234',
        'discount': 5,
        'face_value': {'amount': 10, 'currency': 'GBP'},
        'cost_value': {'amount': 9.5, 'currency': 'GBP'},
        'expiration_date': '2027-12-31T23:59:59+00:00',
        'reference': '019ade93-d513-776b-92a2-b6323329b661',
        'float_balance': {'amount': 990.5, 'currency': 'GBP'},
    },
}


class Recorder:
    """A transport that records each request and answers from a script (a reply or an exception)."""

    def __init__(self, *replies: HttpResponse | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest, *, connect_timeout_s: float, read_timeout_s: float) -> HttpResponse:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def answer(status: int, body: Any = None) -> HttpResponse:
    return HttpResponse(status=status, headers={}, body=b'' if body is None else json.dumps(body).encode())


def tillo(transport: Recorder, **overrides: Any) -> TilloVendor:
    options: dict[str, Any] = {
        'base_url': BASE,
        'brands': {'Amazon': 'amazon'},
        'sector': 'gift-card-mall',
        'credentials': lambda: CREDENTIALS,
        'transport': transport,
        'clock': lambda: 1_700_000_000.0,
        **overrides,
    }
    return TilloVendor('tillo', **options)


def fixture_order(**overrides: Any) -> VendorOrder:
    options: dict[str, Any] = {
        'idempotency_key': 'order-000123',
        'brand': 'Amazon',
        'denomination_cents': 1000,
        'currency': 'GBP',
        **overrides,
    }
    return VendorOrder(**options)


def test_issue_signature_matches_the_published_fixture() -> None:
    assert (
        signature('test-api-key', 'test-secret', 'POST', 'digital-issue', ['order-000123', 'amazon'], '1700000000000')
        == ISSUE_SIGNATURE
    )


def test_get_signature_matches_the_published_fixture() -> None:
    assert signature('test-api-key', 'test-secret', 'GET', 'check-floats', [], '1700000000000') == (
        CHECK_FLOATS_SIGNATURE
    )


def test_transaction_type_is_the_path_after_api_v2() -> None:
    assert transaction_type(f'{BASE}/digital/issue') == 'digital-issue'
    assert transaction_type(f'{BASE}/digital/order-status?original_client_request_id=x') == 'digital-order-status'


def test_issue_sends_the_documented_request() -> None:
    transport = Recorder(answer(200, FIXTURE_200))

    tillo(transport).order(fixture_order())

    [request] = transport.requests
    assert request.method == 'POST'
    assert request.url == f'{BASE}/digital/issue'
    assert dict(request.headers) == {
        'API-Key': 'test-api-key',
        'Timestamp': '1700000000000',
        'Signature': ISSUE_SIGNATURE,
        'Accept': 'application/json',
        'Content-Type': 'application/json',
    }
    assert request.body is not None
    assert json.loads(request.body) == FIXTURE_REQUEST


def test_each_request_is_signed_with_its_own_timestamp() -> None:
    ticks = iter([1_700_000_000.0, 1_700_000_001.5])
    transport = Recorder(answer(200, FIXTURE_200), answer(200, FIXTURE_200))
    vendor = tillo(transport, clock=lambda: next(ticks))

    vendor.order(fixture_order())
    vendor.order(fixture_order())

    second = transport.requests[1].headers
    assert second['Timestamp'] == '1700000001500'
    assert second['Signature'] == signature(
        'test-api-key', 'test-secret', 'POST', 'digital-issue', ['order-000123', 'amazon'], '1700000001500'
    )


def test_200_fixture_parses_into_a_card() -> None:
    card = tillo(Recorder(answer(200, FIXTURE_200))).order(fixture_order())

    assert card == IssuedCard(
        card_code='99998888777766665555',
        card_number=None,
        pin='1234',
        expires_on='2027-12-31',
        cost_cents=950,
        vendor_reference='019ade93-d513-776b-92a2-b6323329b661',
        replayed=False,
    )


def test_url_brand_gives_the_url_as_card_code() -> None:
    data = {**FIXTURE_200['data'], 'code': None, 'pin': None, 'url': 'https://tillo.example/c/1'}

    card = tillo(Recorder(answer(200, {**FIXTURE_200, 'data': data}))).order(fixture_order())

    assert (card.card_code, card.pin) == ('https://tillo.example/c/1', None)


def test_cost_in_another_currency_is_not_taken_as_cost() -> None:
    data = {**FIXTURE_200['data'], 'cost_value': {'amount': 11.2, 'currency': 'EUR'}}

    card = tillo(Recorder(answer(200, {**FIXTURE_200, 'data': data}))).order(fixture_order())

    assert card.cost_cents is None


def test_error_fixture_is_a_definite_refusal() -> None:
    body = {'code': '434', 'status': 'error', 'message': 'Authentication failed'}

    with pytest.raises(VendorRefused, match='Authentication failed') as raised:
        tillo(Recorder(answer(401, body))).order(fixture_order())

    assert (raised.value.retryable, raised.value.code, raised.value.status) == (False, '434', 401)


@pytest.mark.parametrize(
    ('status', 'code'),
    [
        (400, '070'),
        (401, '072'),
        (401, '210'),
        (422, '433'),
        (404, '434'),
        (400, '704'),
        (400, '713'),
        (422, '719'),
        (422, '720'),
        (422, '721'),
        (422, '723'),
    ],
)
def test_no_retry_codes_are_refusals(status: int, code: str) -> None:
    body = {'code': code, 'status': 'error', 'message': 'no'}

    with pytest.raises(VendorRefused) as raised:
        tillo(Recorder(answer(status, body))).order(fixture_order())

    assert raised.value.retryable is False
    assert raised.value.code == code


@pytest.mark.parametrize(('status', 'code'), [(403, '610'), (422, '615'), (429, '211')])
def test_funds_and_rate_limit_are_retryable_refusals(status: int, code: str) -> None:
    body = {'code': code, 'status': 'error', 'message': 'later'}

    with pytest.raises(VendorRefused) as raised:
        tillo(Recorder(answer(status, body))).order(fixture_order())

    assert raised.value.retryable is True


@pytest.mark.parametrize(
    ('status', 'code'), [(500, '600'), (500, '602'), (500, '603'), (503, '604'), (503, '715'), (502, None), (504, None)]
)
def test_server_errors_are_unknown(status: int, code: str | None) -> None:
    body = {'code': code, 'status': 'error', 'message': 'oops'} if code else None

    with pytest.raises(VendorOutcomeUnknown) as raised:
        tillo(Recorder(answer(status, body))).order(fixture_order())

    assert raised.value.status == status


def test_no_answer_is_unknown_and_not_reaching_is_a_retryable_refusal() -> None:
    with pytest.raises(VendorOutcomeUnknown):
        tillo(Recorder(NoAnswer('timed out'))).order(fixture_order())
    with pytest.raises(VendorRefused) as raised:
        tillo(Recorder(NotSent('refused'))).order(fixture_order())
    assert raised.value.retryable is True


def test_replayed_sale_for_another_amount_is_refused() -> None:
    data = {**FIXTURE_200['data'], 'face_value': {'amount': 25, 'currency': 'GBP'}}

    with pytest.raises(VendorRefused, match='amount 25') as raised:
        tillo(Recorder(answer(200, {**FIXTURE_200, 'data': data}))).order(fixture_order())

    assert raised.value.code == 'key_reused'


def test_replayed_sale_for_another_brand_is_refused() -> None:
    data = {**FIXTURE_200['data'], 'brand': 'itunes'}

    with pytest.raises(VendorRefused, match='brand itunes'):
        tillo(Recorder(answer(200, {**FIXTURE_200, 'data': data}))).order(fixture_order())


def test_unconfigured_brand_or_currency_is_refused_without_a_request() -> None:
    transport = Recorder()

    with pytest.raises(VendorRefused, match='no Tillo brand'):
        tillo(transport).order(fixture_order(brand='Nope'))
    with pytest.raises(VendorRefused, match='sells in USD'):
        tillo(transport, currency='USD').order(fixture_order())

    assert transport.requests == []


def test_lookup_asks_order_status_by_client_request_id() -> None:
    status = {'code': '000', 'status': 'success', 'data': {'status': 'SUCCESS', **FIXTURE_200['data']}}
    transport = Recorder(answer(200, status))

    card = tillo(transport).lookup(fixture_order())

    [request] = transport.requests
    assert (request.method, request.url, request.body) == (
        'GET',
        f'{BASE}/digital/order-status?original_client_request_id=order-000123',
        None,
    )
    assert request.headers['Signature'] == signature(
        'test-api-key', 'test-secret', 'GET', 'digital-order-status', [], '1700000000000'
    )
    assert card is not None
    assert (card.card_code, card.replayed) == ('99998888777766665555', True)


def test_lookup_of_an_unknown_sale_is_none() -> None:
    not_found = {'code': '433', 'status': 'error', 'message': 'The sale could not be found.'}

    assert tillo(Recorder(answer(422, not_found))).lookup(fixture_order()) is None


@pytest.mark.parametrize('state', ['ERROR', 'CANCELLED'])
def test_lookup_of_a_failed_or_reversed_sale_is_none(state: str) -> None:
    body = {'code': '000', 'status': 'success', 'data': {'status': state}}

    assert tillo(Recorder(answer(200, body))).lookup(fixture_order()) is None


@pytest.mark.parametrize(
    'reply',
    [
        answer(200, {'code': '000', 'status': 'success', 'data': {'status': 'PROCESSING'}}),
        answer(500, {'code': '600', 'status': 'error', 'message': 'x'}),
        answer(401, {'code': '434', 'status': 'error', 'message': 'Authentication failed'}),
        NoAnswer('reset'),
    ],
)
def test_lookup_that_cannot_tell_is_unknown(reply: HttpResponse | Exception) -> None:
    with pytest.raises(VendorOutcomeUnknown):
        tillo(Recorder(reply)).lookup(fixture_order())


def test_credentials_may_sit_under_the_vendor_name_in_a_shared_secret() -> None:
    transport = Recorder(answer(200, FIXTURE_200))

    tillo(transport, credentials=lambda: {'tillo': CREDENTIALS, 'tango': {}}).order(fixture_order())

    assert transport.requests[0].headers['Signature'] == ISSUE_SIGNATURE
