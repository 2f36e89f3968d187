"""The vendor HTTP transport on real sockets (127.0.0.1 only): what goes on the wire, and when a failure means
"never sent" versus "sent, no answer"."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from giftcards.vendors.transport import HttpRequest, NoAnswer, NotSent, send


class _Capture(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers['Content-Length']))
        self.seen.append({'line': self.requestline, 'headers': dict(self.headers), 'body': body})
        self.send_response(201)
        self.send_header('Content-Type', 'application/json')
        self.send_header('X-REQUEST-ID', 'req-42')
        self.send_header('Content-Length', '12')
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def capture_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Capture.seen = []
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}', _Capture.seen
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and holds them without a word."""
    listener = socket.create_server(('127.0.0.1', 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], accepted
    listener.close()
    for conn in accepted:
        conn.close()


def test_sends_method_target_headers_and_body_and_returns_the_answer(
    capture_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = capture_server
    request = HttpRequest('POST', f'{url}/raas/v2/orders?x=1', {'Authorization': 'Basic abc'}, b'{"a":1}')

    response = send(request, connect_timeout_s=1, read_timeout_s=1)

    [received] = seen
    assert received['line'] == 'POST /raas/v2/orders?x=1 HTTP/1.1'
    assert received['headers']['Authorization'] == 'Basic abc'
    assert received['body'] == b'{"a":1}'
    assert response.status == 201
    assert response.headers['x-request-id'] == 'req-42'
    assert response.body == b'{"ok": true}'


def test_refused_connection_is_not_sent() -> None:
    probe = socket.create_server(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()

    with pytest.raises(NotSent):
        send(HttpRequest('GET', f'http://127.0.0.1:{port}/', {}), connect_timeout_s=1, read_timeout_s=1)


def test_silence_after_sending_is_no_answer_within_the_read_timeout(
    silent_listener: tuple[int, list[socket.socket]],
) -> None:
    port, _ = silent_listener
    started = time.monotonic()

    with pytest.raises(NoAnswer, match='timed out'):
        send(HttpRequest('POST', f'http://127.0.0.1:{port}/', {}, b'{}'), connect_timeout_s=1, read_timeout_s=0.3)

    assert time.monotonic() - started < 1.5


def test_connection_closed_without_an_answer_is_no_answer() -> None:
    listener = socket.create_server(('127.0.0.1', 0))

    def close_after_reading() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    threading.Thread(target=close_after_reading, daemon=True).start()
    try:
        with pytest.raises(NoAnswer):
            send(
                HttpRequest('POST', f'http://127.0.0.1:{listener.getsockname()[1]}/', {}, b'{}'),
                connect_timeout_s=1,
                read_timeout_s=1,
            )
    finally:
        listener.close()


def test_only_http_urls_are_sent() -> None:
    with pytest.raises(NotSent):
        send(HttpRequest('GET', 'file:///etc/passwd', {}), connect_timeout_s=1, read_timeout_s=1)
