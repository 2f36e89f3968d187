"""A fake gift card vendor over real HTTP on 127.0.0.1, for tests and the local server: local tooling, never deployed.

It speaks enough of both real contracts for the real clients to talk to it:

- Tango RaaS v2 under `/raas/v2`: `POST /orders` (HTTP Basic; `externalRefID` deduplicated per account: a repeat
  answers 200 with the original order), `GET /orders?externalRefID=`, `GET /orders/{referenceOrderID}`.
- Tillo v2 under `/api/v2`: `POST /digital/issue` (signature checked; `client_request_id` replays the original
  answer), `GET /digital/order-status?original_client_request_id=`.

Any utid, brand slug, customer and account is accepted. Every sale is kept (`orders`, `sold_count`), so a test can
assert that each key was sold at most once; `GET /__control/state` lists them too (`sales`: each one's key and
reference), for a process that does not hold the fake, such as a benchmark driving a local server.

Faults, per server, apply to every vendor request (orders and lookups; `set_mode`, or `POST /__control/mode` with
`{"mode": ..., "count": N}` from another process; with `count` only the next N requests, then the standing mode):

- `ok`: answer normally.
- `refuse`: a definite refusal (Tango 403, Tillo 400/704); nothing sold.
- `error`: HTTP 500 (Tango, Tillo code 600); nothing sold.
- `timeout`: nothing sold and no answer: the connection is held until the client gives up (or `hang_s` passes),
  then closed. So after a timeout the key is still free, and a retry sells it once.
- `slow`: answers normally after `slow_s`, well within the clients' timeout.
- `drop_response`: processes the request (an order is sold), then closes the connection without answering.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import select
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from giftcards.money import to_dollars
from giftcards.vendors.base import DEFAULT_TIMEOUT_S

MODES = ('ok', 'refuse', 'error', 'timeout', 'slow', 'drop_response')
TANGO_PREFIX = '/raas/v2'
TILLO_PREFIX = '/api/v2'
CONTROL_PREFIX = '/__control'
FAKE_UTID = 'UFAKE00001'
FAKE_BRAND = 'fake-brand'
_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'
_TILLO_ID = re.compile(r'[A-Za-z0-9_-]{5,50}')
_SLUG = re.compile(r'[a-z0-9-]+')
# Tango-style order numbers, counted for the whole process: every fake in it (one per test) sells under its own
# numbers, so no two fakes hand out the same reference.
_ORDER_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class FakeOrder:
    """One sale the fake made."""

    api: str  # 'tango' or 'tillo'
    account: str  # Tango accountIdentifier / Tillo API key: the scope of key deduplication
    key: str | None
    reference: str
    item: str  # Tango utid / Tillo brand slug
    amount_cents: int
    currency: str
    cost_cents: int
    card_code: str
    card_number: str
    pin: str
    expires_on: str
    created_at: str


class _Reply(Exception):
    """Ends a request with this status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakeVendor:
    def __init__(
        self,
        name: str = 'fake',
        *,
        client_timeout_s: float = DEFAULT_TIMEOUT_S,
        host: str = '127.0.0.1',
        port: int = 0,
        platform_name: str = 'fake-platform',
        platform_key: str = 'fake-platform-key',
        api_key: str = 'fake-api-key',
        api_secret: str = 'fake-api-secret',  # noqa: S107 - the fake's own, published credentials
        discount_percent: int = 2,
    ) -> None:
        self.name = name
        self.client_timeout_s = client_timeout_s
        self.slow_s = client_timeout_s / 4
        self.hang_s = client_timeout_s * 3 + 1
        self.platform_name, self.platform_key = platform_name, platform_key
        self.api_key, self.api_secret = api_key, api_secret
        self.discount_percent = discount_percent
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._mode = 'ok'
        self._burst_mode, self._burst_left = 'ok', 0
        self._orders: list[FakeOrder] = []
        self._by_key: dict[tuple[str, str, str], FakeOrder] = {}
        self._by_reference: dict[str, FakeOrder] = {}
        self._attempts: dict[str, int] = {}
        self._server = _Server((host, port), self)
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f'fake-vendor-{name}', daemon=True
        )

    # --- lifecycle and inspection ------------------------------------------------------------------------------
    def start(self) -> FakeVendor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeVendor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        return f'http://{self.host}:{self.port}'

    @property
    def base_url(self) -> str:
        """The Tango RaaS v2 base URL."""
        return self.root_url + TANGO_PREFIX

    @property
    def tillo_base_url(self) -> str:
        return self.root_url + TILLO_PREFIX

    @property
    def control_url(self) -> str:
        return self.root_url + CONTROL_PREFIX

    @property
    def mode(self) -> str:
        """The standing mode (a pending `count` burst is not shown here)."""
        return self._mode

    @property
    def orders(self) -> list[FakeOrder]:
        with self._lock:
            return list(self._orders)

    def sold_count(self, key: str) -> int:
        """How many cards were sold under this idempotency key (across both APIs and all accounts)."""
        with self._lock:
            return sum(1 for order in self._orders if order.key == key)

    def attempts(self, key: str) -> int:
        """How many order requests arrived for this key, faulted ones included."""
        with self._lock:
            return self._attempts.get(key, 0)

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Switch the fault: for good, or (with `count`) for the next `count` vendor requests only."""
        if mode not in MODES:
            raise ValueError(f'mode must be one of {", ".join(MODES)}')
        if count is not None and count < 0:
            raise ValueError('count must be at least 0')
        with self._lock:
            if count is None:
                self._mode, self._burst_left = mode, 0
            else:
                self._burst_mode, self._burst_left = mode, count

    def tango_config(self, name: str | None = None, *, timeout_s: float | None = None) -> dict[str, Any]:
        """A VENDORS entry that points the real Tango client at this fake, for any brand and denomination."""
        return {
            'name': name or self.name,
            'kind': 'tango',
            'base_url': self.base_url,
            'credentials': {'platform_name': self.platform_name, 'platform_key': self.platform_key},
            'customer_identifier': 'fake-customer',
            'account_identifier': 'fake-account',
            'catalog': {'*': {'*': FAKE_UTID}},
            'timeout_s': timeout_s or self.client_timeout_s,
        }

    def tillo_config(self, name: str | None = None, *, timeout_s: float | None = None) -> dict[str, Any]:
        """A VENDORS entry that points the real Tillo client at this fake, for any brand."""
        return {
            'name': name or self.name,
            'kind': 'tillo',
            'base_url': self.tillo_base_url,
            'credentials': {'api_key': self.api_key, 'api_secret': self.api_secret},
            'brands': {'*': FAKE_BRAND},
            'sector': 'gift-card-mall',
            'timeout_s': timeout_s or self.client_timeout_s,
        }

    # --- request handling --------------------------------------------------------------------------------------
    def handle(self, handler: _Handler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get('Content-Length') or 0)
        raw = handler.rfile.read(length) if length else b''
        if url.path.startswith(CONTROL_PREFIX):
            status, body = self._control(method, url.path, raw)
            handler.reply(status, body)
            return
        self._count_attempt(method, raw)
        mode = self._take_mode()
        if mode == 'timeout':
            self._hold_until_client_leaves(handler.connection)
            return
        if mode == 'slow':
            self._stopping.wait(self.slow_s)
        api = 'tillo' if url.path.startswith(TILLO_PREFIX) else 'tango'
        try:
            if mode == 'refuse':
                raise self._refusal(api, url.path)
            if mode == 'error':
                raise self._server_error(api, url.path)
            if api == 'tillo':
                status, body = self._tillo(
                    method, url.path.removeprefix(TILLO_PREFIX), parse_qs(url.query), handler, raw
                )
            else:
                status, body = self._tango(method, url.path, parse_qs(url.query), handler, raw)
        except _Reply as reply:
            status, body = reply.status, reply.body
        if mode == 'drop_response':
            handler.close_connection = True
            return
        handler.reply(status, body, request_id=api == 'tango')

    def _take_mode(self) -> str:
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return self._burst_mode
            return self._mode

    def _count_attempt(self, method: str, raw: bytes) -> None:
        if method != 'POST':
            return
        try:
            body = json.loads(raw)
        except ValueError:
            return
        key = (body.get('externalRefID') or body.get('client_request_id')) if isinstance(body, dict) else None
        if isinstance(key, str):
            with self._lock:
                self._attempts[key] = self._attempts.get(key, 0) + 1

    def _hold_until_client_leaves(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.hang_s
        while not self._stopping.is_set() and (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([conn], [], [], min(remaining, 0.05))
            if readable:  # the client closed its end (or sent more): stop holding it
                return

    def _control(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if method == 'POST' and path == CONTROL_PREFIX + '/mode':
            try:
                body = json.loads(raw or b'{}')
                self.set_mode(str(body.get('mode')), body.get('count'))
            except (ValueError, TypeError, AttributeError) as exc:
                return 400, {'error': str(exc)}
        elif not (method == 'GET' and path == CONTROL_PREFIX + '/state'):
            return 404, {'error': 'no such control route'}
        with self._lock:
            state: dict[str, Any] = {
                'name': self.name,
                'mode': self._mode,
                'burst': {'mode': self._burst_mode, 'count': self._burst_left},
                'orders': len(self._orders),
            }
            if method == 'GET':
                state['sales'] = [{'key': o.key, 'reference': o.reference} for o in self._orders]
            return 200, state

    def _refusal(self, api: str, path: str) -> _Reply:
        if api == 'tillo':
            return _Reply(400, _tillo_error('704', 'Invalid value (fake vendor set to refuse)'))
        return _Reply(403, _tango_error(403, path, '403.020', 'Platform is not active (fake vendor set to refuse)'))

    def _server_error(self, api: str, path: str) -> _Reply:
        if api == 'tillo':
            return _Reply(500, _tillo_error('600', 'Internal error (fake vendor set to error)'))
        return _Reply(500, _tango_error(500, path, '500.000', 'Internal error (fake vendor set to error)'))

    # --- Tango -------------------------------------------------------------------------------------------------
    def _tango(
        self, method: str, path: str, query: dict[str, list[str]], handler: _Handler, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(f'{self.platform_name}:{self.platform_key}'.encode()).decode()
        if not hmac.compare_digest(handler.headers.get('Authorization', ''), f'Basic {expected}'):
            raise _Reply(401, _tango_error(401, path, '401.001', 'Unauthorized'))
        if method == 'POST' and path == TANGO_PREFIX + '/orders':
            return self._tango_create(path, raw)
        if method == 'GET' and path == TANGO_PREFIX + '/orders':
            return 200, self._tango_list(query)
        if method == 'GET' and path.startswith(TANGO_PREFIX + '/orders/'):
            with self._lock:
                order = self._by_reference.get(unquote(path.rsplit('/', 1)[1]))
            if order is None or order.api != 'tango':
                raise _Reply(404, _tango_error(404, path, '404.005', 'Order not found'))
            return 200, _tango_view(order, reward=True)
        raise _Reply(404, _tango_error(404, path, '404.000', 'No such resource'))

    def _tango_create(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        body = _json_object(raw, lambda: _Reply(400, _tango_error(400, path, '400.000', 'Malformed JSON')))
        for field in ('customerIdentifier', 'accountIdentifier', 'utid'):
            if not isinstance(body.get(field), str) or not body[field]:
                raise _Reply(400, _tango_error(400, path, '400.001', f'{field} is required', field=field))
        cents = _cents(body.get('amount'))
        if cents is None:
            raise _Reply(
                400,
                _tango_error(400, path, '422.025', 'amount must be a number with at most 2 decimals', field='amount'),
            )
        if not isinstance(body.get('sendEmail'), bool):
            raise _Reply(400, _tango_error(400, path, '400.001', 'sendEmail is required', field='sendEmail'))
        key = body.get('externalRefID')
        if key is not None and (not isinstance(key, str) or len(key) > 100):
            raise _Reply(
                400,
                _tango_error(
                    400, path, '400.001', 'externalRefID must be a string of at most 100', field='externalRefID'
                ),
            )
        account = body['accountIdentifier']
        with self._lock:
            existing = self._by_key.get(('tango', account, key)) if key else None
            if existing is not None:
                return 200, _tango_view(existing, reward=True)
            order = self._sell('tango', account, key, body['utid'], cents, 'USD')
        return 201, _tango_view(order, reward=True)

    def _tango_list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        filters = {name: values[0] for name, values in query.items() if values}
        with self._lock:
            found = [
                o
                for o in self._orders
                if o.api == 'tango'
                and filters.get('externalRefID', o.key) == o.key
                and filters.get('accountIdentifier', o.account) == o.account
            ]
        return {
            'orders': [_tango_view(o, reward=False) for o in found],
            'page': {'elementsPerBlock': 100, 'number': 0, 'resultCount': len(found), 'totalCount': len(found)},
        }

    # --- Tillo -------------------------------------------------------------------------------------------------
    def _tillo(
        self, method: str, path: str, query: dict[str, list[str]], handler: _Handler, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        if method == 'POST' and path == '/digital/issue':
            body = _json_object(raw, lambda: _Reply(400, _tillo_error('070', 'Malformed JSON')))
            self._tillo_authenticate(
                handler, 'POST', 'digital-issue', [str(body.get('client_request_id', '')), str(body.get('brand', ''))]
            )
            return self._tillo_issue(body)
        if method == 'GET' and path == '/digital/order-status':
            self._tillo_authenticate(handler, 'GET', 'digital-order-status', [])
            return self._tillo_status(query)
        raise _Reply(404, _tillo_error('404', 'No such resource'))

    def _tillo_authenticate(self, handler: _Handler, method: str, kind: str, params: list[str]) -> None:
        timestamp = handler.headers.get('Timestamp', '')
        message = '-'.join([self.api_key, method, kind, *[p for p in params if p], timestamp])
        expected = hmac.new(self.api_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
        if (
            handler.headers.get('API-Key') != self.api_key
            or not timestamp.isdigit()
            or not hmac.compare_digest(handler.headers.get('Signature', ''), expected)
        ):
            raise _Reply(401, _tillo_error('434', 'Authentication failed'))

    def _tillo_issue(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for field in ('client_request_id', 'brand', 'face_value', 'delivery_method', 'fulfilment_by', 'sector'):
            if field not in body:
                raise _Reply(400, _tillo_error('070', f'Missing parameter {field}', field=field))
        key, brand, face = body['client_request_id'], body['brand'], body['face_value']
        if not isinstance(key, str) or not _TILLO_ID.fullmatch(key):
            raise _Reply(422, _tillo_error('433', 'client_request_id is invalid', field='client_request_id'))
        if not isinstance(brand, str) or not _SLUG.fullmatch(brand):
            raise _Reply(400, _tillo_error('072', 'Brand not available', field='brand'))
        cents = _cents(face.get('amount')) if isinstance(face, dict) else None
        currency = face.get('currency') if isinstance(face, dict) else None
        if cents is None or not isinstance(currency, str) or not re.fullmatch(r'[A-Z]{3}', currency):
            raise _Reply(400, _tillo_error('704', 'Invalid face value', field='face_value'))
        if body['delivery_method'] not in ('code', 'url', 'email', 'wrapped'):
            raise _Reply(400, _tillo_error('713', 'Delivery method not allowed', field='delivery_method'))
        with self._lock:
            order = self._by_key.get(('tillo', self.api_key, key))
            if order is None:
                order = self._sell('tillo', self.api_key, key, brand, cents, currency)
        return 200, {
            'code': '000',
            'status': 'success',
            'message': 'Card created successfully',
            'data': _tillo_card(order, self.discount_percent),
        }

    def _tillo_status(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        by_id, by_reference = query.get('original_client_request_id'), query.get('reference')
        if (by_id is None) == (by_reference is None):
            raise _Reply(422, _tillo_error('433', 'Send exactly one of original_client_request_id and reference'))
        with self._lock:
            if by_id:
                order = self._by_key.get(('tillo', self.api_key, by_id[0]))
            else:
                order = self._by_reference.get(by_reference[0]) if by_reference else None
        if order is None or order.api != 'tillo':
            raise _Reply(422, _tillo_error('433', 'The sale could not be found.'))
        return 200, {
            'code': '000',
            'status': 'success',
            'message': 'Order status',
            'data': {'status': 'SUCCESS', **_tillo_card(order, self.discount_percent)},
        }

    # --- selling -----------------------------------------------------------------------------------------------
    def _sell(self, api: str, account: str, key: str | None, item: str, cents: int, currency: str) -> FakeOrder:
        """Record a sale; the caller holds the lock."""
        now = datetime.now(UTC)
        number = f'{next(_ORDER_NUMBERS):04d}-{secrets.randbelow(100):02d}'
        reference = f'RA{now:%y%m%d}-{number}' if api == 'tango' else str(uuid.uuid4())
        order = FakeOrder(
            api=api,
            account=account,
            key=key,
            reference=reference,
            item=item,
            amount_cents=cents,
            currency=currency,
            cost_cents=cents * (100 - self.discount_percent) // 100,
            card_code='-'.join(''.join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4)),
            card_number='6' + ''.join(secrets.choice('0123456789') for _ in range(15)),
            pin=''.join(secrets.choice('0123456789') for _ in range(4)),
            expires_on=f'{now.year + 5}-12-31',
            created_at=now.isoformat(timespec='milliseconds'),
        )
        self._orders.append(order)
        self._by_reference[reference] = order
        if key is not None:
            self._by_key[(api, account, key)] = order
        return order


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeVendor) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.fake.handle(self, 'GET')

    def do_POST(self) -> None:
        self.server.fake.handle(self, 'POST')

    def reply(self, status: int, body: Mapping[str, Any], *, request_id: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        if request_id:
            self.send_header('X-REQUEST-ID', str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and the local server log through their own loggers."""


def start_fake_vendor(name: str = 'fake', **options: Any) -> FakeVendor:
    """A running fake vendor on an ephemeral port of 127.0.0.1; `stop()` it when done."""
    return FakeVendor(name, **options).start()


def _json_object(raw: bytes, error: Any) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_float=Decimal)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise error()
    return body


def _cents(value: Any) -> int | None:
    """Dollars (number or string, at most 2 decimals, > 0) -> cents."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal('0.01')):
        return None
    return int(amount * 100)


def _tango_error(status: int, path: str, i18n_key: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        'timestamp': datetime.now(UTC).isoformat(timespec='milliseconds'),
        'requestId': str(uuid.uuid4()),
        'path': path,
        'httpCode': status,
        'httpPhrase': HTTPStatus(status).phrase,
        'i18nKey': i18n_key,
        'message': message,
        'errors': [],
    }
    if field:
        body['errors'] = [{'path': field, 'i18nKey': i18n_key, 'message': message}]
    return body


def _tango_view(order: FakeOrder, *, reward: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        'referenceOrderID': order.reference,
        'externalRefID': order.key,
        'customerIdentifier': 'fake-customer',
        'accountIdentifier': order.account,
        'accountNumber': 'A00000001',
        'utid': order.item,
        'rewardName': f'Fake reward {order.item}',
        'amountCharged': {
            'value': to_dollars(order.cost_cents),
            'currencyCode': order.currency,
            'total': to_dollars(order.cost_cents),
        },
        'denomination': {'value': to_dollars(order.amount_cents), 'currencyCode': order.currency},
        'sendEmail': False,
        'status': 'COMPLETE',
        'createdAt': order.created_at,
    }
    if reward:
        view['reward'] = {
            'credentialList': [
                {'label': 'Card Number', 'value': order.card_number, 'type': 'text', 'credentialType': 'cardNumber'},
                {'label': 'Card Code', 'value': order.card_code, 'type': 'text', 'credentialType': 'cardCode'},
                {'label': 'Expiration', 'value': order.expires_on, 'type': 'date', 'credentialType': 'expirationDate'},
            ],
            'redemptionInstructions': '<p>Fake card: redeem nowhere.</p>',
        }
    return view


def _tillo_error(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {'status': 'error', 'code': code, 'message': message}
    if field:
        body['data'] = {field: message}
    return body


def _tillo_card(order: FakeOrder, discount_percent: int) -> dict[str, Any]:
    return {
        'brand': order.item,
        'code': order.card_code,
        'pin': order.pin,
        'discount': discount_percent,
        'face_value': {'amount': to_dollars(order.amount_cents), 'currency': order.currency},
        'cost_value': {'amount': to_dollars(order.cost_cents), 'currency': order.currency},
        'expiration_date': f'{order.expires_on}T23:59:59+00:00',
        'reference': order.reference,
        'float_balance': {'amount': 100000, 'currency': order.currency},
    }
