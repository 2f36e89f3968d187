"""What both vendor clients share: the logged HTTP exchange, credentials, money and date conversions."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from giftcards.observability import logger
from giftcards.vendors.base import VendorRefused
from giftcards.vendors.transport import HttpRequest, HttpResponse, NoAnswer, NotSent, Transport

Credentials = Callable[[], Mapping[str, Any]]
_CENT = Decimal('0.01')
_DATE = re.compile(r'\d{4}-\d{2}-\d{2}')


def secret_credentials(arn: str, max_age_s: int) -> Credentials:
    """Credentials read from a JSON Secrets Manager secret, cached by Powertools for `max_age_s`."""

    def fetch() -> Mapping[str, Any]:
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(arn, transform='json', max_age=max_age_s)
        return secret

    return fetch


def credential(vendor: str, credentials: Credentials, *names: str) -> list[str]:
    """The named credential values, from the top level of the secret or from its entry named like the vendor.
    Failing to get them sends nothing, so it is a (retryable) refusal."""
    try:
        values = credentials()
    except Exception as exc:  # Secrets Manager or its transform failed: nothing reached the vendor
        logger.warning('vendor credentials unavailable', extra={'vendor': vendor, 'error': type(exc).__name__})
        raise VendorRefused(f'{vendor}: credentials unavailable', retryable=True, vendor=vendor) from exc
    nested = values.get(vendor)
    if isinstance(nested, Mapping):  # one secret for several vendors: {"tango": {...}, "tillo": {...}}
        values = nested
    missing = [name for name in names if not isinstance(values.get(name), str) or not values.get(name)]
    if missing:
        raise VendorRefused(f'{vendor}: credentials lack {", ".join(missing)}', vendor=vendor)
    return [values[name] for name in names]


def exchange(
    vendor: str,
    transport: Transport,
    request: HttpRequest,
    *,
    connect_timeout_s: float,
    read_timeout_s: float,
    key: str,
) -> HttpResponse:
    """One logged call. The log has the vendor's request id and never a body (bodies hold card codes)."""
    started = time.monotonic()
    where = {'vendor': vendor, 'method': request.method, 'path': urlsplit(request.url).path, 'idempotency_key': key}
    try:
        response = transport(request, connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s)
    except (NotSent, NoAnswer) as exc:
        elapsed_ms = round((time.monotonic() - started) * 1000)
        logger.warning(
            'vendor call failed',
            extra={**where, 'error': str(exc), 'elapsed_ms': elapsed_ms, 'sent': isinstance(exc, NoAnswer)},
        )
        raise
    logger.info(
        'vendor call',
        extra={
            **where,
            'status': response.status,
            'vendor_request_id': response.headers.get('x-request-id'),
            'elapsed_ms': round((time.monotonic() - started) * 1000),
        },
    )
    return response


def json_body(response: HttpResponse) -> Any:
    """The decoded JSON answer (non-integers as Decimal), or None when it is not JSON."""
    try:
        return json.loads(response.body, parse_float=Decimal)
    except ValueError:
        return None


def dollars_number(cents: int) -> Decimal:
    return Decimal(cents) / 100


def to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def to_cents(value: Any) -> int | None:
    """A vendor's decimal dollars (number or string) as whole cents, half a cent rounded up; None if not a number."""
    number = to_decimal(value)
    return None if number is None else int((number * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def same_money(value: Any, cents: int) -> bool:
    number = to_decimal(value)
    return number is not None and number == dollars_number(cents)


def money_in(view: Any, currency: str, *amount_keys: str) -> int | None:
    """Cents from a `{amount|value|total, currency|currencyCode}` object, only when it is in `currency`."""
    if not isinstance(view, Mapping):
        return None
    view_currency = view.get('currency', view.get('currencyCode'))
    if view_currency is not None and view_currency != currency:
        return None
    for name in amount_keys:
        if name in view:
            return to_cents(view[name])
    return None


def date_only(value: Any) -> str | None:
    """'2027-12-31T23:59:59+00:00' -> '2027-12-31'; any other text as it came."""
    if not isinstance(value, str) or not value:
        return None
    return value[:10] if _DATE.match(value) else value


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(',', ':')).encode()


def pick(mapping: Mapping[str, Any] | None, key: str) -> Any:
    """`mapping[key]`, else the entry whose key matches ignoring case, else the `'*'` entry, else None."""
    if not mapping:
        return None
    if key in mapping:
        return mapping[key]
    folded = key.casefold()
    for name, value in mapping.items():
        if name.casefold() == folded:
            return value
    return mapping.get('*')
