"""The vendor interface's value types and the VENDORS configuration: order, clients, timeouts and credentials."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from giftcards.config import Settings
from giftcards.vendors import (
    DEFAULT_TIMEOUT_S,
    IssuedCard,
    VendorConfigError,
    VendorOrder,
    VendorRefused,
    idempotency_key_for,
    load_vendors,
    vendor_timeout_s,
)
from giftcards.vendors.tango import TangoVendor
from giftcards.vendors.tillo import TilloVendor
from giftcards.vendors.transport import HttpRequest, HttpResponse

TANGO: dict[str, Any] = {
    'name': 'tango',
    'kind': 'tango',
    'base_url': 'https://integration-api.tangocard.com/raas/v2',
    'credentials': {'platform_name': 'p', 'platform_key': 'inline-secret-key'},
    'customer_identifier': 'cust-1',
    'account_identifier': 'acct-1',
    'catalog': {'Amazon': {'2500': 'U561593'}},
}
TILLO: dict[str, Any] = {
    'name': 'tillo',
    'kind': 'tillo',
    'base_url': 'https://sandbox.tillo.dev/api/v2',
    'credentials': {'api_key': 'k', 'api_secret': 's'},
    'brands': {'Amazon': 'amazon'},
    'sector': 'gift-card-mall',
    'currency': 'USD',
}


def env(*vendors: dict[str, Any], **extra: str) -> dict[str, str]:
    return {'VENDORS': json.dumps(list(vendors)), **extra}


@pytest.mark.parametrize('key', ['abcd', 'x' * 51, 'has space', 'semi;colon'])
def test_order_rejects_keys_neither_vendor_accepts(key: str) -> None:
    with pytest.raises(ValueError, match='idempotency_key'):
        VendorOrder(key, 'Amazon', 2500)


@pytest.mark.parametrize(('cents', 'currency'), [(0, 'USD'), (-100, 'USD'), (2500, 'usd'), (2500, 'US')])
def test_order_rejects_bad_amounts_and_currencies(cents: int, currency: str) -> None:
    with pytest.raises(ValueError):
        VendorOrder('gc-12345', 'Amazon', cents, currency)


def test_key_for_a_redemption_is_stable_and_valid() -> None:
    redemption = uuid.uuid4()

    key = idempotency_key_for(redemption)

    assert key == f'gc-{redemption.hex}' == idempotency_key_for(str(redemption))
    assert VendorOrder(key, 'Amazon', 2500).idempotency_key == key


def test_issued_card_repr_shows_no_code_number_or_pin() -> None:
    card = IssuedCard('CODE-SECRET', 'NUMBER-SECRET', 'PIN-SECRET', '2030-01-01', 2450, 'RA-1', False)

    assert 'SECRET' not in repr(card)
    assert 'RA-1' in repr(card)


def test_vendors_load_in_configured_order() -> None:
    vendors = load_vendors(env(TILLO, TANGO))

    assert [(v.name, type(v)) for v in vendors] == [('tillo', TilloVendor), ('tango', TangoVendor)]


def test_settings_carry_vendors() -> None:
    settings = Settings.model_validate(env(TANGO))

    [vendor] = load_vendors(settings)

    assert isinstance(vendor, TangoVendor)
    assert vendor.utid('amazon', 2500) == 'U561593'


def test_no_vendors_configured_is_an_empty_list() -> None:
    assert load_vendors({}) == []
    assert load_vendors({'VENDORS': ' '}) == []


@pytest.mark.parametrize(
    ('vendors', 'message'),
    [
        ('[{"kind": "tango"', 'not JSON'),
        (json.dumps([{**TANGO, 'kind': 'acme'}]), 'kind'),
        (json.dumps([{k: v for k, v in TANGO.items() if k != 'catalog'}]), 'catalog'),
        (json.dumps([{**TANGO, 'base_url': 'http://api.tangocard.com/raas/v2'}]), 'https'),
        (json.dumps([{**TANGO, 'secret_arn': 'arn:aws:secretsmanager:us-east-1:1:secret:x'}]), 'exactly one'),
        (json.dumps([TANGO, TANGO]), 'more than once'),
        (json.dumps([{**TANGO, 'timeout_s': 0}]), 'timeout_s'),
    ],
)
def test_invalid_configuration_is_rejected(vendors: str, message: str) -> None:
    with pytest.raises(VendorConfigError, match=message):
        load_vendors({'VENDORS': vendors})


def test_configuration_errors_never_repeat_credentials() -> None:
    broken = {**TANGO, 'credentials': {'platform_name': 'p', 'platform_key': 12345678}}

    with pytest.raises(VendorConfigError) as raised:
        load_vendors(env(broken))

    assert '12345678' not in str(raised.value)


def test_inline_credentials_are_for_local_use_only() -> None:
    with pytest.raises(VendorConfigError, match='local'):
        load_vendors(env(TANGO, ENVIRONMENT='production'))


def test_vendor_timeout_is_the_longest_connect_plus_read() -> None:
    source = env({**TANGO, 'timeout_s': 3}, {**TILLO, 'timeout_s': 6, 'connect_timeout_s': 1.5})

    assert vendor_timeout_s(source) == 7.5


def test_a_changed_vendor_list_is_read_anew_and_a_refused_one_is_refused_every_time() -> None:
    assert vendor_timeout_s(env({**TANGO, 'timeout_s': 3})) == 6
    assert vendor_timeout_s(env({**TANGO, 'timeout_s': 4})) == 8
    assert vendor_timeout_s(env({**TANGO, 'timeout_s': 3})) == 6
    for _ in range(2):
        with pytest.raises(VendorConfigError, match='timeout_s'):
            vendor_timeout_s(env({**TANGO, 'timeout_s': -1}))


def test_vendor_timeout_defaults_to_twice_the_default_timeout() -> None:
    assert vendor_timeout_s({}) == 2 * DEFAULT_TIMEOUT_S
    assert vendor_timeout_s(env(TANGO)) == 2 * DEFAULT_TIMEOUT_S


class Recorder:
    def __init__(self, reply: HttpResponse) -> None:
        self.reply = reply
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest, *, connect_timeout_s: float, read_timeout_s: float) -> HttpResponse:
        self.requests.append(request)
        return self.reply


@pytest.fixture
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv('AWS_ACCESS_KEY_ID', 'testing')
    monkeypatch.setenv('AWS_SECRET_ACCESS_KEY', 'testing')
    monkeypatch.setenv('AWS_DEFAULT_REGION', 'us-east-1')
    with mock_aws():
        yield boto3.client('secretsmanager', region_name='us-east-1')


def _tango_answer() -> HttpResponse:
    order = {
        'referenceOrderID': 'RA-1',
        'utid': 'U561593',
        'status': 'COMPLETE',
        'reward': {'credentialList': [{'credentialType': 'cardCode', 'value': 'C-1'}]},
    }
    return HttpResponse(status=201, headers={}, body=json.dumps(order).encode())


@pytest.mark.parametrize(
    'secret',
    [
        {'platform_name': 'from-sm', 'platform_key': 'sm-key'},
        {'tango': {'platform_name': 'from-sm', 'platform_key': 'sm-key'}, 'tillo': {'api_key': 'x'}},
    ],
)
def test_credentials_come_from_secrets_manager(secrets_manager: Any, secret: dict[str, Any]) -> None:
    arn = secrets_manager.create_secret(Name=f'vendors-{uuid.uuid4().hex}', SecretString=json.dumps(secret))['ARN']
    config = {k: v for k, v in TANGO.items() if k != 'credentials'} | {'secret_arn': arn}
    transport = Recorder(_tango_answer())
    [vendor] = load_vendors(env(config, ENVIRONMENT='production'), transport=transport)

    vendor.order(VendorOrder('gc-12345', 'Amazon', 2500))

    assert transport.requests[0].headers['Authorization'] == 'Basic ' + base64.b64encode(b'from-sm:sm-key').decode()


def test_unavailable_secret_is_a_retryable_refusal_and_nothing_is_sent(secrets_manager: Any) -> None:
    missing = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf'
    config = {k: v for k, v in TANGO.items() if k != 'credentials'} | {'secret_arn': missing}
    transport = Recorder(_tango_answer())
    [vendor] = load_vendors(env(config), transport=transport)

    with pytest.raises(VendorRefused, match='credentials unavailable') as raised:
        vendor.order(VendorOrder('gc-12345', 'Amazon', 2500))

    assert raised.value.retryable is True
    assert transport.requests == []
