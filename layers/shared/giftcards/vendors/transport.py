"""One HTTP exchange with a vendor through http.client, with separate connect and read timeouts.

The failure that matters is *when* it happened: before the request left (`NotSent`: nothing can have been sold)
or after (`NoAnswer`: the vendor may have acted on it). The clients turn the first into a retryable refusal and
the second into an unknown outcome.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

from giftcards.records import repr_hiding

MAX_BODY_BYTES = 2 * 1024 * 1024


class HttpRequest(NamedTuple):
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None

    def __repr__(self) -> str:  # bodies carry credentials and cards
        return repr_hiding(self, 'body')


class HttpResponse(NamedTuple):
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    def __repr__(self) -> str:  # bodies carry credentials and cards
        return repr_hiding(self, 'body')


class NotSent(Exception):
    """The request never reached the vendor (name resolution, connect, TLS)."""


class NoAnswer(Exception):
    """The request was sent, but no complete answer came back (timeout, reset, garbled reply)."""


class Transport(Protocol):
    def __call__(self, request: HttpRequest, *, connect_timeout_s: float, read_timeout_s: float) -> HttpResponse: ...


def send(request: HttpRequest, *, connect_timeout_s: float, read_timeout_s: float) -> HttpResponse:
    """Send `request` on a fresh connection: at most `connect_timeout_s` to connect (and the TLS handshake), then at
    most `read_timeout_s` for each read of the answer."""
    parts = urlsplit(request.url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        raise NotSent(f'not an http(s) URL: {request.url}')
    target = parts.path or '/'
    if parts.query:
        target += '?' + parts.query
    conn: http.client.HTTPConnection
    if parts.scheme == 'https':
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=connect_timeout_s, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=connect_timeout_s)
    try:
        try:
            conn.connect()
        except OSError as exc:
            raise NotSent(f'{type(exc).__name__}: {exc}') from exc
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout_s)
        try:
            conn.request(request.method, target, body=request.body, headers=dict(request.headers))
            response = conn.getresponse()
            body = response.read(MAX_BODY_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise NoAnswer(f'{type(exc).__name__}: {exc}') from exc
        if len(body) > MAX_BODY_BYTES:
            raise NoAnswer(f'answer larger than {MAX_BODY_BYTES} bytes')
        headers = {name.lower(): value for name, value in response.getheaders()}
        return HttpResponse(status=response.status, headers=headers, body=body)
    finally:
        conn.close()
