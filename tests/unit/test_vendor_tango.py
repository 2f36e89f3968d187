"""The Tango RaaS v2 client: the exact requests it sends and how it reads answers (shared/vendors/README.md)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from giftcards.vendors import IssuedCard, VendorOrder, VendorOutcomeUnknown, VendorRefused
from giftcards.vendors.tango import TangoVendor
from giftcards.vendors.transport import HttpRequest, HttpResponse, NoAnswer, NotSent

BASE = 'https://integration-api.tangocard.com/raas/v2'
CREDENTIALS = {'platform_name': 'ExamplePlatform', 'platform_key': 'example-key'}
BASIC = 'Basic ' + base64.b64encode(b'ExamplePlatform:example-key').decode()

# README section 4, "Tango response, 201".
FIXTURE_201: dict[str, Any] = {
    'referenceOrderID': 'RA240101-0001-01',
    'externalRefID': 'order-000123',
    'customerIdentifier': 'cust-example-01',
    'accountIdentifier': 'acct-example-01',
    'accountNumber': 'A00000001',
    'utid': 'U561593',
    'rewardName': 'Reward Link',
    'amountCharged': {'value': 10, 'currencyCode': 'USD', 'total': 10},
    'denomination': {'value': 10, 'currencyCode': 'USD'},
    'sender': {'firstName': 'Example', 'lastName': 'Co', 'email': 'rewards@example.com'},
    'recipient': {'email': 'recipient@example.com', 'firstName': 'Ada', 'lastName': 'Lovelace'},
    'sendEmail': False,
    'status': 'COMPLETE',
    'createdAt': '2024-01-01T12:00:00.000Z',
    'reward': {
        'credentials': {'Redemption Link': 'https://sandbox.rewardlink.io/r/1/EXAMPLE'},
        'credentialList': [
            {
                'label': 'Redemption Link',
                'value': 'https://sandbox.rewardlink.io/r/1/EXAMPLE',
                'type': 'url',
                'credentialType': 'redemptionUrl',
            }
        ],
        'redemptionInstructions': '<p>Open the link to redeem.</p>',
    },
}


class Recorder:
    """A transport that records each request and answers from a script (a reply or an exception)."""

    def __init__(self, *replies: HttpResponse | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[HttpRequest] = []
        self.timeouts: list[tuple[float, float]] = []

    def __call__(self, request: HttpRequest, *, connect_timeout_s: float, read_timeout_s: float) -> HttpResponse:
        self.requests.append(request)
        self.timeouts.append((connect_timeout_s, read_timeout_s))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    raw = b'' if body is None else json.dumps(body).encode()
    return HttpResponse(status=status, headers={'content-type': 'application/json', **(headers or {})}, body=raw)


def tango(transport: Recorder, **overrides: Any) -> TangoVendor:
    options: dict[str, Any] = {
        'base_url': BASE,
        'customer_identifier': 'cust-example-01',
        'account_identifier': 'acct-example-01',
        'catalog': {'Reward Link': {'1000': 'U561593', '1025': 'U000VAR'}},
        'credentials': lambda: CREDENTIALS,
        'timeout_s': 5.0,
        'connect_timeout_s': 2.0,
        'transport': transport,
        **overrides,
    }
    return TangoVendor('tango', **options)


def fixture_order(**overrides: Any) -> VendorOrder:
    options: dict[str, Any] = {
        'idempotency_key': 'order-000123',
        'brand': 'Reward Link',
        'denomination_cents': 1000,
        'recipient_email': 'recipient@example.com',
        **overrides,
    }
    return VendorOrder(**options)


def test_order_sends_the_documented_request() -> None:
    transport = Recorder(answer(201, FIXTURE_201))

    tango(transport).order(fixture_order())

    [request] = transport.requests
    assert request.method == 'POST'
    assert request.url == f'{BASE}/orders'
    assert dict(request.headers) == {
        'Authorization': BASIC,
        'Accept': 'application/json',
        'Content-Type': 'application/json',
    }
    assert request.body is not None
    assert json.loads(request.body) == {
        'customerIdentifier': 'cust-example-01',
        'accountIdentifier': 'acct-example-01',
        'amount': 10,
        'utid': 'U561593',
        'externalRefID': 'order-000123',
        'sendEmail': False,
        'recipient': {'email': 'recipient@example.com'},
    }
    assert transport.timeouts == [(2.0, 5.0)]


def test_order_amount_is_exact_dollars_from_cents() -> None:
    transport = Recorder(answer(201, {**FIXTURE_201, 'utid': 'U000VAR', 'denomination': {'value': 10.25}}))

    tango(transport).order(fixture_order(denomination_cents=1025))

    assert transport.requests[0].body is not None
    body = json.loads(transport.requests[0].body, parse_float=Decimal)
    assert body['amount'] == Decimal('10.25')
    assert body['utid'] == 'U000VAR'


def test_order_without_recipient_sends_no_recipient() -> None:
    transport = Recorder(answer(201, FIXTURE_201))

    tango(transport).order(fixture_order(recipient_email=None))

    assert transport.requests[0].body is not None
    assert 'recipient' not in json.loads(transport.requests[0].body)


def test_configured_delivery_method_is_sent() -> None:
    transport = Recorder(answer(201, FIXTURE_201))

    tango(transport, delivery_method='EMBEDDED').order(fixture_order())

    assert transport.requests[0].body is not None
    assert json.loads(transport.requests[0].body)['deliveryMethod'] == 'EMBEDDED'


def test_201_fixture_parses_into_a_new_card() -> None:
    card = tango(Recorder(answer(201, FIXTURE_201))).order(fixture_order())

    assert card == IssuedCard(
        card_code='https://sandbox.rewardlink.io/r/1/EXAMPLE',
        card_number=None,
        pin=None,
        expires_on=None,
        cost_cents=1000,
        vendor_reference='RA240101-0001-01',
        replayed=False,
    )


def test_200_is_a_replay_of_the_original_order() -> None:
    card = tango(Recorder(answer(200, FIXTURE_201))).order(fixture_order())

    assert card.replayed is True
    assert card.vendor_reference == 'RA240101-0001-01'


def test_credentials_are_chosen_by_credential_type_not_label() -> None:
    reward = {
        'credentialList': [
            {'label': 'PIN', 'value': 'https://example.test/r', 'type': 'url', 'credentialType': 'redemptionUrl'},
            {'label': 'Number', 'value': '6000111122223333', 'type': 'text', 'credentialType': 'cardNumber'},
            {'label': 'Code', 'value': 'CODE-1234', 'type': 'text', 'credentialType': 'cardCode'},
            {'label': 'Security', 'value': '4321', 'type': 'text', 'credentialType': 'pin'},
            {'label': 'Expiration', 'value': '2027-12-31', 'type': 'date', 'credentialType': 'expirationDate'},
        ]
    }

    card = tango(Recorder(answer(201, {**FIXTURE_201, 'reward': reward}))).order(fixture_order())

    assert (card.card_code, card.card_number, card.pin, card.expires_on) == (
        'CODE-1234',
        '6000111122223333',
        '4321',
        '2027-12-31',
    )


def test_claim_code_is_the_card_code() -> None:
    reward = {'credentialList': [{'label': 'x', 'value': 'CLAIM-9', 'type': 'text', 'credentialType': 'claimCode'}]}

    card = tango(Recorder(answer(201, {**FIXTURE_201, 'reward': reward}))).order(fixture_order())

    assert card.card_code == 'CLAIM-9'


def test_cost_is_the_total_charged_in_the_order_currency() -> None:
    charged = {'value': 24.5, 'currencyCode': 'USD', 'fee': 0.25, 'total': 24.75}
    payload = {**FIXTURE_201, 'utid': 'U25', 'amountCharged': charged, 'denomination': {'value': 25}}

    card = tango(Recorder(answer(201, payload)), catalog={'*': {'2500': 'U25'}}).order(
        fixture_order(denomination_cents=2500)
    )

    assert card.cost_cents == 2475


def test_replayed_order_for_another_utid_is_refused_and_its_card_not_used() -> None:
    with pytest.raises(VendorRefused, match='utid U999') as raised:
        tango(Recorder(answer(200, {**FIXTURE_201, 'utid': 'U999'}))).order(fixture_order())

    assert raised.value.retryable is False
    assert raised.value.code == 'key_reused'


def test_replayed_order_for_another_amount_is_refused() -> None:
    payload = {**FIXTURE_201, 'denomination': {'value': 25, 'currencyCode': 'USD'}}

    with pytest.raises(VendorRefused, match='amount 25'):
        tango(Recorder(answer(200, payload))).order(fixture_order())


def test_failed_order_is_refused() -> None:
    with pytest.raises(VendorRefused, match='failed'):
        tango(Recorder(answer(201, {**FIXTURE_201, 'status': 'FAILED', 'reward': {}}))).order(fixture_order())


def test_pending_order_without_credentials_is_unknown() -> None:
    with pytest.raises(VendorOutcomeUnknown, match='no card yet'):
        tango(Recorder(answer(201, {**FIXTURE_201, 'status': 'PENDING', 'reward': {}}))).order(fixture_order())


def test_answer_without_reward_fetches_the_order_for_its_credentials() -> None:
    summary = {k: v for k, v in FIXTURE_201.items() if k != 'reward'}
    transport = Recorder(answer(200, summary), answer(200, FIXTURE_201))

    card = tango(transport).order(fixture_order())

    assert transport.requests[1].method == 'GET'
    assert transport.requests[1].url == f'{BASE}/orders/RA240101-0001-01'
    assert card.card_code == 'https://sandbox.rewardlink.io/r/1/EXAMPLE'


def _error(status: int, i18n_key: str) -> dict[str, Any]:
    return {
        'timestamp': '2024-01-01T12:00:00.000Z',
        'requestId': 'req-1',
        'path': '/raas/v2/orders',
        'httpCode': status,
        'httpPhrase': 'x',
        'message': f'message for {i18n_key}',
        'i18nKey': i18n_key,
        'errors': [],
    }


@pytest.mark.parametrize(
    ('status', 'i18n_key', 'retryable'),
    [
        (400, '422.024', False),
        (401, '401.001', False),
        (402, '402.001', True),
        (403, '403.016', False),
        (404, '404.005', False),
        (422, '422.025', False),
        (429, '429.008', True),
    ],
)
def test_definite_errors_are_refusals(status: int, i18n_key: str, retryable: bool) -> None:
    with pytest.raises(VendorRefused) as raised:
        tango(Recorder(answer(status, _error(status, i18n_key)))).order(fixture_order())

    assert raised.value.retryable is retryable
    assert raised.value.code == i18n_key
    assert raised.value.status == status


@pytest.mark.parametrize(
    ('status', 'i18n_key'), [(409, '409.002'), (500, '500.000'), (502, None), (503, '503.002'), (504, None)]
)
def test_in_flight_and_server_errors_are_unknown(status: int, i18n_key: str | None) -> None:
    body = _error(status, i18n_key) if i18n_key else None

    with pytest.raises(VendorOutcomeUnknown) as raised:
        tango(Recorder(answer(status, body))).order(fixture_order())

    assert raised.value.status == status


def test_i18n_key_is_read_from_the_errors_list_too() -> None:
    body = {'httpCode': 400, 'errors': [{'path': 'utid', 'i18nKey': '422.024', 'message': 'bad utid'}]}

    with pytest.raises(VendorRefused, match='bad utid') as raised:
        tango(Recorder(answer(400, body))).order(fixture_order())

    assert raised.value.code == '422.024'


def test_already_exists_is_resolved_by_looking_the_order_up() -> None:
    listing = {'orders': [{k: v for k, v in FIXTURE_201.items() if k != 'reward'}], 'page': {'number': 0}}
    transport = Recorder(answer(409, _error(409, '409.024')), answer(200, listing), answer(200, FIXTURE_201))

    card = tango(transport).order(fixture_order())

    assert card.vendor_reference == 'RA240101-0001-01'
    assert card.replayed is True


def test_no_answer_after_sending_is_unknown() -> None:
    with pytest.raises(VendorOutcomeUnknown):
        tango(Recorder(NoAnswer('timed out'))).order(fixture_order())


def test_not_reaching_the_vendor_is_a_retryable_refusal() -> None:
    with pytest.raises(VendorRefused) as raised:
        tango(Recorder(NotSent('connection refused'))).order(fixture_order())

    assert raised.value.retryable is True


def test_2xx_that_is_not_json_is_unknown() -> None:
    garbled = HttpResponse(status=201, headers={}, body=b'<html>')

    with pytest.raises(VendorOutcomeUnknown):
        tango(Recorder(garbled)).order(fixture_order())


def test_brand_outside_the_catalog_is_refused_without_a_request() -> None:
    transport = Recorder()

    with pytest.raises(VendorRefused, match='no utid') as raised:
        tango(transport).order(fixture_order(brand='Unknown Brand'))

    assert raised.value.retryable is False
    assert transport.requests == []


def test_catalog_matches_brand_ignoring_case_and_by_wildcard() -> None:
    vendor = tango(Recorder(), catalog={'reward link': {'1000': 'U1'}, '*': {'*': 'UANY'}})

    assert vendor.utid('Reward Link', 1000) == 'U1'
    assert vendor.utid('Other', 5000) == 'UANY'


def test_missing_credentials_are_refused_without_a_request() -> None:
    transport = Recorder()

    with pytest.raises(VendorRefused, match='platform_key'):
        tango(transport, credentials=lambda: {'platform_name': 'x'}).order(fixture_order())

    assert transport.requests == []


def test_lookup_lists_by_external_ref_id_then_reads_the_order() -> None:
    listing = {'orders': [{k: v for k, v in FIXTURE_201.items() if k != 'reward'}], 'page': {'number': 0}}
    transport = Recorder(answer(200, listing), answer(200, FIXTURE_201))

    card = tango(transport).lookup(fixture_order())

    assert [(r.method, r.url, r.body) for r in transport.requests] == [
        ('GET', f'{BASE}/orders?externalRefID=order-000123&accountIdentifier=acct-example-01', None),
        ('GET', f'{BASE}/orders/RA240101-0001-01', None),
    ]
    assert transport.requests[0].headers['Authorization'] == BASIC
    assert card is not None
    assert card.card_code == 'https://sandbox.rewardlink.io/r/1/EXAMPLE'
    assert card.replayed is True


def test_lookup_of_an_unknown_key_is_none() -> None:
    empty = {'orders': [], 'page': {'number': 0, 'resultCount': 0, 'totalCount': 0}}

    assert tango(Recorder(answer(200, empty))).lookup(fixture_order()) is None
    assert tango(Recorder(answer(404, _error(404, '404.110')))).lookup(fixture_order()) is None


@pytest.mark.parametrize('failure', [answer(500, _error(500, '500.000')), answer(401, None), NoAnswer('reset')])
def test_lookup_that_cannot_tell_is_unknown(failure: HttpResponse | Exception) -> None:
    with pytest.raises(VendorOutcomeUnknown):
        tango(Recorder(failure)).lookup(fixture_order())


def test_lookup_of_a_failed_order_is_none() -> None:
    listing = {'orders': [{'referenceOrderID': 'RA240101-0001-01'}]}
    transport = Recorder(answer(200, listing), answer(200, {**FIXTURE_201, 'status': 'FAILED'}))

    assert tango(transport).lookup(fixture_order()) is None


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    captured: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    handler = Capture()
    logging.getLogger('giftcards').addHandler(handler)
    yield captured
    logging.getLogger('giftcards').removeHandler(handler)


def test_logs_the_request_id_and_never_the_card_or_credentials(records: list[logging.LogRecord]) -> None:
    reward = {'credentialList': [{'value': 'SECRET-CODE-777', 'type': 'text', 'credentialType': 'cardCode'}]}

    tango(Recorder(answer(201, {**FIXTURE_201, 'reward': reward}, {'x-request-id': 'req-abc'}))).order(fixture_order())

    logged = [str(vars(r)) for r in records]
    assert any("'vendor_request_id': 'req-abc'" in line for line in logged)
    assert not any('SECRET-CODE-777' in line or 'example-key' in line or BASIC in line for line in logged)


def test_card_repr_hides_the_secrets() -> None:
    card = tango(Recorder(answer(201, FIXTURE_201))).order(fixture_order())

    assert 'rewardlink' not in repr(card)
