"""Tillo API v2 (see shared/vendors/README.md section 2).

- `POST {base}/digital/issue` (synchronous); `client_request_id` is our idempotency key and a repeat replays the
  original answer, so its brand and face value are compared with ours before the card is used. A replay looks
  like the first answer, so `IssuedCard.replayed` is False for every issue answer (True only from `lookup`).
- Every request carries `API-Key`, `Timestamp` (epoch milliseconds) and `Signature`: the hex HMAC-SHA256, keyed
  with the secret, of `{key}-{METHOD}-{type}[-{params}]-{timestamp}`; for an issue the simplified form with
  `{client_request_id}-{brand}`, for a GET only a `brand` query parameter would count.
- Recovery: `GET {base}/digital/order-status?original_client_request_id=`. Tillo documents it for async orders;
  whether it finds synchronous issues is unconfirmed, so a vendor that cannot tell answers "unknown".
- Credentials (inline or the Secrets Manager secret): `{"api_key": ..., "api_secret": ...}`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from giftcards.money import dollars_text
from giftcards.observability import logger
from giftcards.vendors.base import DEFAULT_TIMEOUT_S, IssuedCard, VendorOrder, VendorOutcomeUnknown, VendorRefused
from giftcards.vendors.support import (
    Credentials,
    credential,
    date_only,
    exchange,
    json_body,
    json_bytes,
    money_in,
    pick,
    same_money,
)
from giftcards.vendors.transport import HttpRequest, HttpResponse, NoAnswer, NotSent, Transport, send

SUCCESS = '000'
NOT_FOUND = '433'  # validation error, or (for order-status) "The sale could not be found."
# README section 2.4. Codes not listed fall back to the HTTP status: other 4xx refused, 5xx unknown.
_REFUSED = {'070', '072', '210', '433', '434', '704', '713', '719', '720', '721', '723'}
_REFUSED_RETRYABLE = {'610', '615', '211'}  # float / credit exhausted, rate limit: nothing sold, try later
_UNKNOWN = {'600', '602', '603', '604', '715'}
_NO_CARD_STATUSES = {'ERROR', 'CANCELLED'}


def signature(
    api_key: str, secret: str, method: str, transaction_type: str, params: Sequence[str], timestamp: str
) -> str:
    """Tillo's request signature: hex HMAC-SHA256 of the parts joined with '-' (absent parts left out)."""
    message = '-'.join([api_key, method, transaction_type, *params, timestamp])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def transaction_type(path: str) -> str:
    """'/api/v2/digital/issue' -> 'digital-issue'."""
    tail = urlsplit(path).path.split('/api/v2/', 1)[-1]
    return tail.strip('/').replace('/', '-')


class TilloVendor:
    kind = 'tillo'

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        brands: Mapping[str, str],
        sector: str,
        credentials: Credentials,
        currency: str | None = None,
        delivery_method: str = 'code',
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float | None = None,
        transport: Transport = send,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip('/')
        self.brands = brands
        self.sector = sector
        self.currency = currency
        self.delivery_method = delivery_method
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s or timeout_s
        self._credentials = credentials
        self._transport = transport
        self._clock = clock

    def __repr__(self) -> str:
        return f'TilloVendor(name={self.name!r}, base_url={self.base_url!r})'

    def brand_slug(self, brand: str) -> str | None:
        slug = pick(self.brands, brand)
        return slug if isinstance(slug, str) and slug else None

    def order(self, order: VendorOrder) -> IssuedCard:
        slug = self.brand_slug(order.brand)
        if slug is None:
            raise VendorRefused(
                f'{self.name}: no Tillo brand configured for {order.brand}', vendor=self.name, code='not_in_catalog'
            )
        if self.currency and order.currency != self.currency:
            raise VendorRefused(
                f'{self.name}: sells in {self.currency}, not {order.currency}', vendor=self.name, code='currency'
            )
        api_key, secret = credential(self.name, self._credentials, 'api_key', 'api_secret')
        body = {
            'client_request_id': order.idempotency_key,
            'brand': slug,
            'face_value': {'amount': dollars_text(order.denomination_cents), 'currency': order.currency},
            'delivery_method': self.delivery_method,
            'fulfilment_by': 'partner',
            'sector': self.sector,
        }
        try:
            response = self._call(
                'POST', '/digital/issue', order, api_key, secret, params=[order.idempotency_key, slug], body=body
            )
        except NotSent as exc:
            raise VendorRefused(
                f'{self.name}: could not reach the vendor ({exc})', retryable=True, vendor=self.name
            ) from exc
        except NoAnswer as exc:
            raise VendorOutcomeUnknown(f'{self.name}: no answer to the order ({exc})', vendor=self.name) from exc
        payload = json_body(response)
        if response.status == 200 and isinstance(payload, dict) and payload.get('code') == SUCCESS:
            return self._card(order, slug, payload.get('data'), replayed=False)
        raise self._failure(response, payload)

    def lookup(self, order: VendorOrder) -> IssuedCard | None:
        try:
            api_key, secret = credential(self.name, self._credentials, 'api_key', 'api_secret')
        except VendorRefused as exc:
            raise VendorOutcomeUnknown(exc.message, vendor=self.name) from exc
        query = urlencode({'original_client_request_id': order.idempotency_key})
        try:
            response = self._call('GET', f'/digital/order-status?{query}', order, api_key, secret, params=[])
        except (NotSent, NoAnswer) as exc:
            raise VendorOutcomeUnknown(f'{self.name}: lookup failed ({exc})', vendor=self.name) from exc
        payload = json_body(response)
        code = payload.get('code') if isinstance(payload, dict) else None
        if code == NOT_FOUND and 400 <= response.status < 500:
            return None
        data = payload.get('data') if isinstance(payload, dict) else None
        if response.status != 200 or code != SUCCESS or not isinstance(data, dict):
            raise VendorOutcomeUnknown(
                f'{self.name}: order-status answered HTTP {response.status} code {code}',
                vendor=self.name,
                code=code,
                status=response.status,
            )
        status = str(data.get('status') or '').upper()
        if status in _NO_CARD_STATUSES:
            # The sale failed or was reversed: no card exists under the key.
            logger.warning(
                'vendor order under key gives no card',
                extra={'vendor': self.name, 'idempotency_key': order.idempotency_key, 'reason': status},
            )
            return None
        if status != 'SUCCESS':
            raise VendorOutcomeUnknown(
                f'{self.name}: order {order.idempotency_key} is {status or "without status"}',
                vendor=self.name,
                code=status or None,
            )
        try:
            return self._card(order, self.brand_slug(order.brand), data, replayed=True)
        except VendorRefused as exc:
            logger.warning(
                'vendor order under key gives no card',
                extra={'vendor': self.name, 'idempotency_key': order.idempotency_key, 'reason': exc.code},
            )
            return None

    def _card(self, order: VendorOrder, slug: str | None, data: Any, *, replayed: bool) -> IssuedCard:
        if not isinstance(data, dict):
            raise VendorOutcomeUnknown(f'{self.name}: the answer has no data', vendor=self.name)
        mismatch = _mismatch(order, slug, data)
        if mismatch:
            raise VendorRefused(
                f'{self.name}: the sale under key {order.idempotency_key} is for {mismatch}; its card is not used',
                vendor=self.name,
                code='key_reused',
            )
        card_code = _text(data.get('code')) or _text(data.get('url'))
        if card_code is None:
            raise VendorOutcomeUnknown(
                f'{self.name}: the sale under key {order.idempotency_key} has no code or url',
                vendor=self.name,
                code='no_credentials',
            )
        return IssuedCard(
            card_code=card_code,
            card_number=_text(data.get('serial_number')),
            pin=_text(data.get('pin')),
            expires_on=date_only(data.get('expiration_date')),
            cost_cents=money_in(data.get('cost_value'), order.currency, 'amount'),
            vendor_reference=_text(data.get('reference')) or order.idempotency_key,
            replayed=replayed,
        )

    def _call(
        self,
        method: str,
        path: str,
        order: VendorOrder,
        api_key: str,
        secret: str,
        *,
        params: Sequence[str],
        body: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        url = self.base_url + path
        timestamp = str(int(self._clock() * 1000))
        headers = {
            'API-Key': api_key,
            'Timestamp': timestamp,
            'Signature': signature(api_key, secret, method, transaction_type(url), params, timestamp),
            'Accept': 'application/json',
        }
        if body is not None:
            headers['Content-Type'] = 'application/json'
        request = HttpRequest(method, url, headers, json_bytes(body) if body is not None else None)
        return exchange(
            self.name,
            self._transport,
            request,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            key=order.idempotency_key,
        )

    def _failure(self, response: HttpResponse, payload: Any) -> VendorRefused | VendorOutcomeUnknown:
        status = response.status
        code = str(payload.get('code')) if isinstance(payload, dict) and payload.get('code') is not None else None
        message = payload.get('message') if isinstance(payload, dict) else None
        text = f'{self.name}: HTTP {status}{" code " + code if code else ""}: {message or "no error body"}'
        if code in _REFUSED_RETRYABLE or status == 429:
            return VendorRefused(text, retryable=True, vendor=self.name, code=code, status=status)
        if code in _UNKNOWN or status >= 500 or 200 <= status < 300:
            return VendorOutcomeUnknown(text, vendor=self.name, code=code, status=status)
        if code in _REFUSED or (400 <= status < 500 and status not in (408, 409, 425)):
            return VendorRefused(text, vendor=self.name, code=code, status=status)
        return VendorOutcomeUnknown(text, vendor=self.name, code=code, status=status)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mismatch(order: VendorOrder, slug: str | None, data: Mapping[str, Any]) -> str | None:
    """How a (replayed) sale differs from ours: Tillo's answer to a differing body under one id is unconfirmed."""
    if slug is not None and data.get('brand') not in (None, slug):
        return f'brand {data.get("brand")}, not {slug}'
    face = data.get('face_value')
    if isinstance(face, dict):
        if face.get('currency', order.currency) != order.currency:
            return f'currency {face["currency"]}, not {order.currency}'
        if 'amount' in face and not same_money(face['amount'], order.denomination_cents):
            return f'amount {face["amount"]}, not {dollars_text(order.denomination_cents)}'
    return None
