"""Tango Card RaaS v2 (see shared/vendors/README.md section 1).

- `POST {base}/orders`, HTTP Basic with the platform name and key; `externalRefID` is our idempotency key. A new
  order answers 201, a repeat of the key answers 200 with the *original* order, even one for a different item, so
  the utid and amount of every answer are compared with ours before its card is used.
- Credentials come from `reward.credentialList`, chosen by `credentialType` (labels are not stable).
- Recovery: `GET {base}/orders?externalRefID=` (the list has no credentials), then `GET {base}/orders/{id}`.
- Credentials (inline or the Secrets Manager secret): `{"platform_name": ..., "platform_key": ...}`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from giftcards.money import dollars_text, to_dollars
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

IN_FLIGHT = '409.002'  # the same externalRefID is still being processed
ALREADY_EXISTS = '409.024'  # an order with this externalRefID exists: look it up
# Which credentialType becomes which field, best first. A PIN's credentialType name is unconfirmed (README 1.2):
# any type whose name contains "pin" is taken as the PIN.
_CODE_TYPES = ('cardCode', 'claimCode', 'redemptionUrl', 'cardNumber')
_FAILED = 'FAILED'


class TangoVendor:
    kind = 'tango'

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        customer_identifier: str,
        account_identifier: str,
        catalog: Mapping[str, Mapping[str, str]],
        credentials: Credentials,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float | None = None,
        delivery_method: str | None = None,
        transport: Transport = send,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip('/')
        self.customer_identifier = customer_identifier
        self.account_identifier = account_identifier
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s or timeout_s
        self.delivery_method = delivery_method
        self._credentials = credentials
        self._transport = transport

    def __repr__(self) -> str:
        return f'TangoVendor(name={self.name!r}, base_url={self.base_url!r})'

    def utid(self, brand: str, denomination_cents: int) -> str | None:
        """The catalog item for a brand and denomination (catalog keys: brand, then cents; `'*'` matches any)."""
        utid = pick(pick(self.catalog, brand), str(denomination_cents))
        return utid if isinstance(utid, str) and utid else None

    def order(self, order: VendorOrder) -> IssuedCard:
        utid = self.utid(order.brand, order.denomination_cents)
        if utid is None:
            raise VendorRefused(
                f'{self.name}: no utid configured for {order.brand} {dollars_text(order.denomination_cents)}',
                vendor=self.name,
                code='not_in_catalog',
            )
        auth = self._authorization(VendorRefused)
        body: dict[str, Any] = {
            'customerIdentifier': self.customer_identifier,
            'accountIdentifier': self.account_identifier,
            'amount': to_dollars(order.denomination_cents),
            'utid': utid,
            'externalRefID': order.idempotency_key,
            'sendEmail': False,
        }
        if self.delivery_method:
            body['deliveryMethod'] = self.delivery_method
        if order.recipient_email:
            body['recipient'] = {'email': order.recipient_email}
        try:
            response = self._call('POST', '/orders', order, auth, body)
        except NotSent as exc:
            raise VendorRefused(
                f'{self.name}: could not reach the vendor ({exc})', retryable=True, vendor=self.name
            ) from exc
        except NoAnswer as exc:
            raise VendorOutcomeUnknown(f'{self.name}: no answer to the order ({exc})', vendor=self.name) from exc
        payload = json_body(response)
        if response.status in (200, 201):
            if not isinstance(payload, dict):
                raise VendorOutcomeUnknown(
                    f'{self.name}: the order answer is not JSON', vendor=self.name, status=response.status
                )
            return self._card(order, utid, payload, auth, replayed=response.status == 200)
        i18n_key, message = _error_details(payload)
        if response.status == 409 and i18n_key == ALREADY_EXISTS:
            found = self.lookup(order)
            if found is not None:
                return found
        raise self._failure(response, i18n_key, message)

    def lookup(self, order: VendorOrder) -> IssuedCard | None:
        auth = self._authorization(VendorOutcomeUnknown)
        query = urlencode({'externalRefID': order.idempotency_key, 'accountIdentifier': self.account_identifier})
        listing = self._lookup_call(f'/orders?{query}', order, auth)
        if listing.status == 404:
            return None
        payload = json_body(listing)
        if listing.status != 200 or not isinstance(payload, dict) or not isinstance(payload.get('orders'), list):
            raise self._unknown(listing, 'could not list orders by externalRefID')
        matches = [
            o
            for o in payload['orders']
            if isinstance(o, dict) and o.get('externalRefID', order.idempotency_key) == order.idempotency_key
        ]
        if not matches:
            return None
        reference = matches[0].get('referenceOrderID')
        if not isinstance(reference, str) or not reference:
            raise self._unknown(listing, 'the order listing has no referenceOrderID')
        detail = self._lookup_call(f'/orders/{quote(reference, safe="")}', order, auth)
        verbose = json_body(detail)
        if detail.status != 200 or not isinstance(verbose, dict):
            raise self._unknown(detail, f'could not read order {reference}')
        try:
            return self._card(order, self.utid(order.brand, order.denomination_cents), verbose, auth, replayed=True)
        except VendorRefused as exc:
            # The key holds an order that can never give this card (failed, or another item): re-ordering with
            # the key replays that order and is refused again, so there is no card to recover.
            logger.warning(
                'vendor order under key gives no card',
                extra={'vendor': self.name, 'idempotency_key': order.idempotency_key, 'reason': exc.code},
            )
            return None

    def _card(
        self, order: VendorOrder, utid: str | None, payload: Mapping[str, Any], auth: str, *, replayed: bool
    ) -> IssuedCard:
        reference = payload.get('referenceOrderID')
        if not isinstance(reference, str) or not reference:
            raise VendorOutcomeUnknown(f'{self.name}: the order answer has no referenceOrderID', vendor=self.name)
        mismatch = _mismatch(order, utid, payload)
        if mismatch:
            raise VendorRefused(
                f'{self.name}: order {reference} under key {order.idempotency_key} is for {mismatch}; '
                'its card is not used',
                vendor=self.name,
                code='key_reused',
            )
        status = str(payload.get('status') or '').upper()
        if status == _FAILED:
            raise VendorRefused(
                f'{self.name}: order {reference} failed (the account was refunded)',
                vendor=self.name,
                code='order_failed',
            )
        credentials = _credential_values(payload.get('reward'))
        if not credentials and 'reward' not in payload:
            detail = self._lookup_call(f'/orders/{quote(reference, safe="")}', order, auth)
            verbose = json_body(detail)
            if detail.status == 200 and isinstance(verbose, dict):
                credentials = _credential_values(verbose.get('reward'))
        card_code = next((credentials[t] for t in _CODE_TYPES if credentials.get(t)), None)
        if card_code is None:
            raise VendorOutcomeUnknown(
                f'{self.name}: order {reference} ({status or "no status"}) has no card yet',
                vendor=self.name,
                code='no_credentials',
            )
        pin = next((value for ctype, value in credentials.items() if 'pin' in ctype.lower()), None)
        return IssuedCard(
            card_code=card_code,
            card_number=credentials.get('cardNumber'),
            pin=pin,
            expires_on=date_only(credentials.get('expirationDate')),
            cost_cents=money_in(payload.get('amountCharged'), order.currency, 'total', 'value'),
            vendor_reference=reference,
            replayed=replayed,
        )

    def _authorization(self, failure: type[VendorRefused] | type[VendorOutcomeUnknown]) -> str:
        try:
            platform_name, platform_key = credential(self.name, self._credentials, 'platform_name', 'platform_key')
        except VendorRefused as exc:
            if failure is VendorRefused:
                raise
            raise VendorOutcomeUnknown(exc.message, vendor=self.name) from exc
        token = base64.b64encode(f'{platform_name}:{platform_key}'.encode()).decode()
        return f'Basic {token}'

    def _call(
        self, method: str, path: str, order: VendorOrder, auth: str, body: Mapping[str, Any] | None = None
    ) -> HttpResponse:
        headers = {'Authorization': auth, 'Accept': 'application/json'}
        if body is not None:
            headers['Content-Type'] = 'application/json'
        request = HttpRequest(method, self.base_url + path, headers, json_bytes(body) if body is not None else None)
        return exchange(
            self.name,
            self._transport,
            request,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.timeout_s,
            key=order.idempotency_key,
        )

    def _lookup_call(self, path: str, order: VendorOrder, auth: str) -> HttpResponse:
        try:
            return self._call('GET', path, order, auth)
        except (NotSent, NoAnswer) as exc:
            raise VendorOutcomeUnknown(f'{self.name}: lookup failed ({exc})', vendor=self.name) from exc

    def _failure(
        self, response: HttpResponse, i18n_key: str | None, message: str
    ) -> VendorRefused | VendorOutcomeUnknown:
        status = response.status
        text = f'{self.name}: HTTP {status}{" " + i18n_key if i18n_key else ""}: {message}'
        if status in (402, 429):  # insufficient funds / rate limit: nothing sold, the same key may work later
            return VendorRefused(text, retryable=True, vendor=self.name, code=i18n_key, status=status)
        if 400 <= status < 500 and status not in (408, 409, 425):
            return VendorRefused(text, vendor=self.name, code=i18n_key, status=status)
        return VendorOutcomeUnknown(text, vendor=self.name, code=i18n_key, status=status)

    def _unknown(self, response: HttpResponse, what: str) -> VendorOutcomeUnknown:
        i18n_key, message = _error_details(json_body(response))
        return VendorOutcomeUnknown(
            f'{self.name}: {what}: HTTP {response.status} {message}'.rstrip(),
            vendor=self.name,
            code=i18n_key,
            status=response.status,
        )


def _error_details(payload: Any) -> tuple[str | None, str]:
    """(i18nKey, message) of a Tango error body; the top level first, then the first of `errors`."""
    if not isinstance(payload, dict):
        return None, 'no error body'
    first = next((e for e in payload.get('errors') or [] if isinstance(e, dict)), {})
    i18n_key = payload.get('i18nKey') or first.get('i18nKey')
    message = payload.get('message') or first.get('message') or payload.get('httpPhrase') or 'no message'
    return (str(i18n_key) if i18n_key else None), str(message)


def _credential_values(reward: Any) -> dict[str, str]:
    """credentialType -> value from `reward.credentialList` (the first of each type)."""
    values: dict[str, str] = {}
    if not isinstance(reward, dict) or not isinstance(reward.get('credentialList'), list):
        return values
    for item in reward['credentialList']:
        ctype, value = (item.get('credentialType'), item.get('value')) if isinstance(item, dict) else (None, None)
        if isinstance(ctype, str) and isinstance(value, str):
            values.setdefault(ctype, value)
    return values


def _mismatch(order: VendorOrder, utid: str | None, payload: Mapping[str, Any]) -> str | None:
    """How an answered order differs from ours (a reused key returns the original order whatever we sent)."""
    if payload.get('externalRefID') not in (None, order.idempotency_key):
        return f'externalRefID {payload.get("externalRefID")}'
    if utid is not None and payload.get('utid') not in (None, utid):
        return f'utid {payload.get("utid")}, not {utid}'
    face = payload.get('denomination')  # the face value; amountCharged is what the account paid, not comparable
    if isinstance(face, dict):
        if face.get('currencyCode', order.currency) != order.currency:
            return f'currency {face["currencyCode"]}, not {order.currency}'
        if 'value' in face and not same_money(face['value'], order.denomination_cents):
            return f'amount {face["value"]}, not {dollars_text(order.denomination_cents)}'
    return None
