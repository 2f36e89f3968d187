"""What the HTTP benchmarks (`bench.http`, `bench.load`) share: a real `giftcard serve` as a subprocess, one HTTP
request on a fresh connection, and the CPU seconds of a process tree read from /proc.

Not a benchmark itself (the leading underscore keeps `python -m bench` from running it).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

_SERVING = re.compile(r'^serving (http://(\S+):(\d+)) with (\d+) execution environment', re.MULTILINE)
_TICKS = os.sysconf('SC_CLK_TCK')
NO_ANSWER = 0  # the status recorded when the connection broke before an answer


class ServeProcess:
    """`giftcard serve --port 0 [--no-monitor] [--workers N]` as a subprocess of its own session, on the database
    `DATABASE_URL` names and the keys in `GIFTCARD_HOME` (both inherited). Its stdout and stderr go to files in a
    temporary folder, kept after the run (`log_dir`) for whoever wants the server's side of a failure."""

    def __init__(self, *, workers: int | None = None, monitor: bool = False, start_timeout_s: float = 120) -> None:
        self.workers_asked = workers
        self.monitor = monitor
        self.start_timeout_s = start_timeout_s
        self.log_dir = Path(tempfile.mkdtemp(prefix='bench-serve.'))
        self.stdout_path, self.stderr_path = self.log_dir / 'stdout.log', self.log_dir / 'stderr.log'
        self.process: subprocess.Popen[bytes] | None = None
        self.url, self.host, self.port, self.workers = '', '', 0, 0

    def __enter__(self) -> ServeProcess:
        command = [sys.executable, '-m', 'giftcard_local', 'serve', '--port', '0']  # whichever copy PYTHONPATH finds
        if not self.monitor:
            command.append('--no-monitor')
        if self.workers_asked is not None:
            command += ['--workers', str(self.workers_asked)]
        with self.stdout_path.open('wb') as out, self.stderr_path.open('wb') as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        while (found := _SERVING.search(self.stdout_path.read_text(errors='replace'))) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f'giftcard serve did not start; its log:\n{self.log_tail()}')
            time.sleep(0.05)
        self.url, self.host, self.port, self.workers = (
            found.group(1), found.group(2), int(found.group(3)), int(found.group(4)),
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # graceful: requests in progress finish, the vendors stop
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what this started
            process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None, 'use ServeProcess as a context manager'
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        text = self.stderr_path.read_text(errors='replace') if self.stderr_path.exists() else ''
        return '\n'.join(text.splitlines()[-lines:])

    def log_lines(self, pattern: str) -> list[str]:
        """The lines of the server's log (stderr: request lines, tracebacks) that match `pattern`."""
        if not self.stderr_path.exists():
            return []
        wanted = re.compile(pattern)
        return [line for line in self.stderr_path.read_text(errors='replace').splitlines() if wanted.search(line)]

    def vendor_controls(self) -> dict[str, str]:
        """The fake vendors' control URLs, by name, from `$GIFTCARD_HOME/vendors.json` (written by the server)."""
        from giftcard_local import embedded
        from giftcard_local.local_vendors import VENDORS_FILE

        record = json.loads((embedded.home() / VENDORS_FILE).read_text())
        return {name: v['control_url'] for name, v in record['vendors'].items()}


@dataclass(frozen=True)
class Answer:
    status: int  # NO_ANSWER when the connection broke first
    body: Any  # the JSON body, None when there was none or it was not JSON
    headers: dict[str, str]
    seconds: float
    failure: str | None = None  # why there was no answer

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get('error'), dict):
            code = self.body['error'].get('code')
            return str(code) if code is not None else None
        return None


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    timeout_s: float = 60,
) -> Answer:
    """One request on a fresh connection (the local server answers `Connection: close`), its JSON answer and how
    long it took; a broken connection or a timeout is an answer with status NO_ANSWER."""
    data = None if body is None else json.dumps(body).encode()
    sent = {'Content-Type': 'application/json', **(headers or {})} if data is not None else dict(headers or {})
    began = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        raw = response.read()
        status, answered = response.status, {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        return Answer(NO_ANSWER, None, {}, time.perf_counter() - began, f'{type(exc).__name__}: {exc}')
    finally:
        conn.close()
    seconds = time.perf_counter() - began
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return Answer(status, parsed, answered, seconds)


# --- CPU seconds of process trees ----------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its children it has waited for), or None if it is gone.
    Fields after the command name (which may hold spaces and parentheses): state, ppid, ... utime (14),
    stime (15), cutime (16), cstime (17)."""
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    fields = text[text.rindex(')') + 2 :].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICKS


def tree_cpu_s(root: int | None) -> float | None:
    """CPU seconds (user + system) used so far by `root` and every living descendant, plus what the descendants
    that already exited used (their parents' cutime and cstime once reaped: a database backend killed mid-run
    still counts). None when /proc does not show `root` (a server on another machine)."""
    if root is None or _stat(root) is None:
        return None
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for entry in os.scandir('/proc'):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                children.setdefault(found[0], []).append(int(entry.name))
                stats[int(entry.name)] = found[1]
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def postmaster_pid() -> int | None:
    """The pid of the PostgreSQL server `DATABASE_URL` names, when it runs on this machine: the parent of this
    connection's backend (a backend's parent is the postmaster)."""
    from giftcards import db

    with db.owner_connection() as conn:
        found = _stat(int(conn.run('SELECT pg_backend_pid()')[0][0]))  # while the backend lives
    return found[0] if found is not None else None


class CpuProbe:
    """CPU seconds of the server's process tree and of the database's, read before and after a window."""

    def __init__(self, server_pid: int, database_pid: int | None) -> None:
        self.server_pid, self.database_pid = server_pid, database_pid

    def read(self) -> tuple[float | None, float | None]:
        return tree_cpu_s(self.server_pid), tree_cpu_s(self.database_pid)


def per_request_ms(cpu_s: float | None, requests: int) -> str:
    return f'{cpu_s / requests * 1000:.2f}' if cpu_s is not None and requests else 'n/a'


def percentile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float('nan')


def difference(after: float | None, before: float | None) -> float | None:
    return after - before if after is not None and before is not None else None
