"""A real `giftcard serve` for tests that prove a property where people meet it: over HTTP, through the execution
environments, the v2 events, the JWT check and the handlers of template.yaml.

    def test_something(live: Live) -> None:
        answer = live.call('POST', '/allocate-credit', token=issue_token(admin), json={...})
        assert answer.status == 200, answer.text
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

PROJECT = Path(__file__).resolve().parents[1]
T = TypeVar('T')


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode('utf-8', 'replace')

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        try:
            return str(self.json()['error']['code'])
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class Live:
    """A running `giftcard serve`: its URL, what it printed on stdout (read as it comes, so that the server
    never blocks on a full pipe), and where its stderr goes."""

    port: int
    log: Path
    process: subprocess.Popen[str] = field(repr=False)
    printed: list[str] = field(default_factory=list, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60,
        source_ip: str | None = None,
    ) -> Answer:
        """One request on a new connection (the server closes each after its answer). `source_ip`: a loopback
        address (127.0.0.0/8) to send from, the caller's source IP as the server sees it (rate limits count by it)."""
        all_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault('Content-Type', 'application/json')
        if token is not None:
            all_headers['Authorization'] = f'Bearer {token}'
        source = (source_ip, 0) if source_ip is not None else None
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout_s, source_address=source)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in all_headers.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader('Content-Length', str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()

    def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 30) -> str:
        """Send `signum` and wait for the process to end; answers everything it printed on stdout."""
        self.process.send_signal(signum)
        self.process.wait(timeout=timeout_s)
        if self.reader is not None:
            self.reader.join(timeout=10)
        return ''.join(self.printed)


@contextmanager
def serving(
    env: Mapping[str, str],
    log: Path,
    *args: str,
    cwd: Path = PROJECT,
    ignore_sigint: bool = False,
) -> Iterator[Live]:
    """`giftcard serve --port 0 --no-monitor ARGS`, stopped with SIGTERM afterwards if still running.
    `ignore_sigint`: started as a background job of a non-interactive shell is, with SIGINT ignored."""
    command = [str(Path(sys.executable).parent / 'giftcard'), 'serve', '--port', '0', '--no-monitor', *args]
    if ignore_sigint:
        command = ['sh', '-c', 'trap "" INT; exec "$@"', 'sh', *command]
    with open(log, 'w') as err:
        proc = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    printed: list[str] = []
    serving_line = threading.Event()

    def read(stream: Any) -> None:
        for line in stream:
            printed.append(line)
            if line.startswith('serving'):
                serving_line.set()
        serving_line.set()  # the process ended before serving

    reader = threading.Thread(target=read, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        serving_line.wait(timeout=120)
        line = next((p for p in printed if p.startswith('serving')), '')
        assert line.startswith('serving http://127.0.0.1:'), (printed, log.read_text())
        yield Live(int(line.split()[1].rsplit(':', 1)[1]), log, proc, printed, reader)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def server_env(database_url: str) -> dict[str, str]:
    """The test session's database and GIFTCARD_HOME (so the server accepts the tokens the tests sign)."""
    return {**os.environ, 'DATABASE_URL': database_url, 'PYTHONUNBUFFERED': '1'}


def together(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Each call on its own thread, released at once; the results (or what each raised), in order."""
    results: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
