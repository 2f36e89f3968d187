"""End-to-end CSV-path provisions per second through HTTP against a real `giftcard serve`, next to pgbench's
`provision_like` and to the same provisions called in-process, all in one run.

For each client count the server is `giftcard serve --port 0 --no-monitor --workers N` started as a subprocess on a
scratch database (DATABASE_URL) with one execution environment per client (a gunicorn sync worker handling one
request at a time), as Lambda runs one environment per concurrent request. Each client is a process of its own
sending `POST /provision-gift-card` with a bearer token of the client's integration and a new redemption code each
time, on a fresh connection per request (the server answers `Connection: close`), for a fixed time; it builds the
request's bytes once and reads the raw answer (`ProvisionRequest`), so that its own CPU, which shares the cores with
the server and the database, stays small. Every provision charges the same shared client budget (funded so that it
never runs out) and claims a card from one big pool, as in `bench.provision`. Each client makes one request before
the clock starts, and the server's every environment has answered a few before the first window.

What it prints per client count: provisions/s, p50 and p99 latency as the client sees it (connect, request,
answer), pgbench's `provision_like` tps at the same client count, measured alternately with ours (`BENCH_ROUNDS`)
so that both meet the same load from other processes, the ratio, and the CPU seconds per request of

- the server: the `giftcard serve` process tree (supervisor with the fake vendors, gunicorn arbiter, workers),
- the database: the PostgreSQL server's process tree (postmaster, backends, background processes; it serves
  only this benchmark when it is the embedded one),
- the load generator: the client processes themselves,

each read from /proc (utime + stime, and what reaped children used) before and after every window.

Beside them, a row "domain path, 1 worker": one process calling `provisioning.provision_gift_card` directly (what
`bench.provision` measures at 1 worker), alternating with the HTTP run at 1 client. Its "server" CPU is that
process's own Python. The difference between the two rows is what the HTTP layer costs per request locally:
gunicorn, the API Gateway event, the JWT check, Powertools' resolver and validation, JSON both ways.

    BENCH_DURATION=12 BENCH_ROUNDS=3 BENCH_CLIENTS="1 8 32" python -m bench http

Knobs: BENCH_DURATION (seconds per side and client count, 12), BENCH_ROUNDS (alternations, 3), BENCH_CLIENTS
("1 8 32"), BENCH_SERVER_WORKERS (the server's execution environments: "clients", the default, one per client;
"cores", the server's own default; or a number), BENCH_CARDS (pool size, enough for every run: 60000).

Targets: p50 under 5 ms at 1 client; at 8 clients at least 40% of pgbench's tps. After the run: the overdraft
check of `bench.provision` (ledger clean, balance = funding - charges, one claimed card per redemption); a
violation, a 500 or a request left without an answer exits 1.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bench
from bench import provision
from bench._serve import NO_ANSWER, CpuProbe, ServeProcess, difference, per_request_ms, percentile_ms, postmaster_pid
from bench.baseline import Baseline

TARGET_P50_MS_AT_1 = 5.0
TARGET_RATIO_AT_8 = 0.4
DOMAIN_ROW = 'domain path, 1 worker'


@dataclass(frozen=True)
class Target:
    """What an HTTP client needs: where the server is, the integration's token and the body's fixed part."""

    host: str
    port: int
    token: str
    body: dict[str, Any]


@dataclass
class Window:
    """One or more measurement windows of one kind at one client count, added up."""

    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = 0.0
    database_cpu_s: float | None = 0.0

    def add(self, other: Window) -> None:
        self.latencies += other.latencies
        self.failures += other.failures
        self.seconds += other.seconds
        self.client_cpu_s += other.client_cpu_s
        self.server_cpu_s = _plus(self.server_cpu_s, other.server_cpu_s)
        self.database_cpu_s = _plus(self.database_cpu_s, other.database_cpu_s)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def _plus(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


# --- clients (each a forked process) -------------------------------------------------------------------------


def _http_client(target: Target, ready: Any, go: Any, stop_at: Any, results: Any) -> None:
    request = ProvisionRequest(target)

    def provision_once() -> tuple[int, str | None, float]:
        began = time.perf_counter()
        status, code = request.send()
        return status, code, time.perf_counter() - began

    provision_once()  # warm, before the clock (see bench.provision)
    _run(provision_once, ready, go, stop_at, results)


class ProvisionRequest:
    """`POST /provision-gift-card` with a new redemption code, sent with as little work of the client's own as a load
    generator can do (its CPU shares the two cores with the server and the database, as pgbench's C client's does):
    the request's bytes are built once but for the code and go out in one write on a fresh connection (the server
    answers `Connection: close`); the answer is read to the end and must be whole (its Content-Length), and its JSON
    is parsed only when it is not a 200, for the error code."""

    CODE = b'BENCH-' + b'0' * 32

    def __init__(self, target: Target) -> None:
        body = json.dumps({**target.body, 'redemptionCode': self.CODE.decode()}).encode()
        head = (
            f'POST /provision-gift-card HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n'
            f'Authorization: Bearer {target.token}\r\nContent-Type: application/json\r\n'
            f'Content-Length: {len(body)}\r\nConnection: close\r\n\r\n'
        ).encode()
        self.before, self.after = (head + body).split(self.CODE)
        self.address = (target.host, target.port)
        self.family = socket.AF_INET6 if ':' in target.host else socket.AF_INET

    def send(self) -> tuple[int, str | None]:
        """(status, error code or why there was no answer); status NO_ANSWER when the answer was not whole."""
        message = self.before + b'BENCH-' + os.urandom(16).hex().encode() + self.after
        chunks = []
        # Blocking: a request the server never answers ends when gunicorn replaces the worker (its timeout).
        with socket.socket(self.family, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(self.address)
                sock.sendall(message)
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError as exc:
                return NO_ANSWER, f'{type(exc).__name__}: {exc}'
        return _answer(b''.join(chunks))


def _answer(raw: bytes) -> tuple[int, str | None]:
    head, blank, body = raw.partition(b'\r\n\r\n')
    lines = head.split(b'\r\n')
    status = lines[0].split(b' ', 2)
    lengths = [line.split(b':', 1)[1] for line in lines[1:] if line.lower().startswith(b'content-length:')]
    if not blank or len(status) < 2 or not status[1].isdigit() or len(lengths) != 1:
        return NO_ANSWER, 'no whole answer'
    if int(lengths[0]) != len(body):
        return NO_ANSWER, 'answer cut short'
    if int(status[1]) == 200:
        return 200, None
    try:
        code = json.loads(body)['error']['code']
    except (ValueError, KeyError, TypeError):
        code = None
    return int(status[1]), code


def _domain_client(fixture: provision.Fixture, ready: Any, go: Any, stop_at: Any, results: Any) -> None:
    from giftcards import errors, provisioning

    def provision_once() -> tuple[int, str | None, float]:
        request = provision.new_request(fixture)
        began = time.perf_counter()
        try:
            provisioning.provision_gift_card(request, subject=fixture.subject)
        except errors.DomainError as exc:
            return exc.status, exc.code, time.perf_counter() - began
        return 200, None, time.perf_counter() - began

    provision_once()
    _run(provision_once, ready, go, stop_at, results)


def _run(once: Callable[[], tuple[int, str | None, float]], ready: Any, go: Any, stop_at: Any, results: Any) -> None:
    """Wait for every client to be warm and for the clock, call `once` until the window closes, report."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    ready.wait()
    go.wait()
    cpu = time.process_time()
    while time.perf_counter() < stop_at.value:
        status, code, seconds = once()
        if status == 200:
            latencies.append(seconds)
        else:
            failures[f'{status} {code}'] += 1
    results.put((latencies, failures, time.perf_counter(), time.process_time() - cpu))


def measure(client: Callable[..., None], subject: Any, clients: int, duration_s: float, probe: CpuProbe) -> Window:
    """`clients` processes running `client` for `duration_s`; CPU of the server's and the database's process trees
    read when every client is warm and once every client has reported."""
    from giftcards import db

    db.reset_connections()  # a forked client must not share the parent's socket
    context = mp.get_context('fork')
    ready, go = context.Barrier(clients + 1), context.Event()
    stop_at, results = context.Value('d', 0.0), context.Queue()
    processes = [context.Process(target=client, args=(subject, ready, go, stop_at, results)) for _ in range(clients)]
    for process in processes:
        process.start()
    ready.wait(timeout=300)
    server_before, database_before = probe.read()
    began = time.perf_counter()
    stop_at.value = began + duration_s
    go.set()
    outcomes = [results.get(timeout=duration_s + 120) for _ in processes]
    server_after, database_after = probe.read()
    for process in processes:
        process.join()
    return Window(
        latencies=[lat for lats, _, _, _ in outcomes for lat in lats],
        failures=sum((f for _, f, _, _ in outcomes), Counter()),
        seconds=max(end for _, _, end, _ in outcomes) - began,
        client_cpu_s=sum(cpu for _, _, _, cpu in outcomes),
        server_cpu_s=difference(server_after, server_before),
        database_cpu_s=difference(database_after, database_before),
    )


def compare(
    target: Target,
    fixture: provision.Fixture,
    baseline: Baseline,
    probe: CpuProbe,
    clients: int,
    duration_s: int,
    rounds: int,
) -> tuple[Window, Window | None, float]:
    """HTTP, (at 1 client) the domain path, and pgbench in alternating rounds; answers the HTTP windows and the
    domain windows added up, and pgbench's mean tps."""
    slice_s = max(1, round(duration_s / rounds))
    ours, domain = Window(), Window() if clients == 1 else None
    pgbench_tps = []
    provision.settle()
    baseline.settle()
    for _ in range(rounds):
        ours.add(measure(_http_client, target, clients, slice_s, probe))
        if domain is not None:
            domain.add(measure(_domain_client, fixture, 1, slice_s, probe))
        pgbench_tps.append(baseline.run('provision_like', clients, slice_s, settle=False).tps)
    return ours, domain, sum(pgbench_tps) / len(pgbench_tps)


def _row(label: Any, environments: Any, window: Window, pgbench: float, *, http: bool) -> tuple[Any, ...]:
    n = len(window.latencies)
    return (
        label,
        environments,
        f'{window.per_second:.0f}',
        f'{percentile_ms(window.latencies, 0.5):.1f}',
        f'{percentile_ms(window.latencies, 0.99):.1f}',
        f'{pgbench:.0f}',
        f'{window.per_second / pgbench:.0%}',
        sum(window.failures.values()),
        per_request_ms(window.server_cpu_s if http else window.client_cpu_s, n),
        per_request_ms(window.database_cpu_s, n),
        per_request_ms(window.client_cpu_s, n) if http else '-',
    )


def environments(clients: int) -> int | None:
    """The server's execution environments for `clients` concurrent clients (None: the server's default, one per
    core). By default one per client, as Lambda runs one environment per concurrent request: with fewer, at most that
    many transactions are in flight where pgbench has one per client, and an environment waiting on the database
    (or on its commit's fsync) leaves its client's request queued behind it."""
    setting = os.environ.get('BENCH_SERVER_WORKERS', 'clients')
    if setting == 'clients':
        return clients
    return None if setting == 'cores' else int(setting)


def main(argv: list[str] | None = None) -> int:
    """Knobs: BENCH_DURATION (12), BENCH_ROUNDS (3), BENCH_CLIENTS ("1 8 32"), BENCH_SERVER_WORKERS ("clients": one
    execution environment per client; "cores": the server's default; or a number), BENCH_CARDS (60000)."""
    from giftcard_local import app_clients, tokens

    # An INFO line per provision would be measured too (as in bench.provision); the server inherits these.
    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    counts = [int(c) for c in os.environ.get('BENCH_CLIENTS', '1 8 32').split()]
    duration, rounds = bench.duration_s(12), int(os.environ.get('BENCH_ROUNDS', '3'))
    rows: list[tuple[Any, ...]] = []
    verdicts, failures, http_at_1, domain_at_1 = [], Counter[str](), None, None
    server_errors: list[str] = []
    server_logs: list[str] = []
    with bench.scratch_database('http') as url:
        fixture = provision.prepare(int(os.environ.get('BENCH_CARDS', '60000')))
        app_clients.add(fixture.subject)  # the integration's own app client
        token = tokens.issue_token(fixture.subject, client=True)
        database_pid = postmaster_pid()
        with Baseline(url, shapes=['provision_like']) as baseline:
            for count in counts:
                with ServeProcess(workers=environments(count)) as server:
                    target = Target(
                        server.host,
                        server.port,
                        token,
                        {'campaignId': fixture.campaign_id, 'brandId': fixture.brand_id, 'denomination': 25},
                    )
                    probe = CpuProbe(server.pid, database_pid)
                    # Every environment warm (connected, statements prepared, the card data key unwrapped) before
                    # any window: one client's requests may all land on the same one.
                    failures += measure(_http_client, target, 2 * server.workers, 2, probe).failures
                    ours, domain, theirs = compare(target, fixture, baseline, probe, count, duration, rounds)
                    server_errors += server.log_lines(r' 5\d\d [\d.]+ms |Traceback|ERROR')
                    server_logs.append(str(server.log_dir))
                failures += ours.failures
                rows.append(_row(count, server.workers, ours, theirs, http=True))
                print(' | '.join(str(cell) for cell in rows[-1]), flush=True)
                if domain is not None:
                    rows.append(_row(DOMAIN_ROW, '-', domain, theirs, http=False))
                    http_at_1, domain_at_1 = ours, domain
                if count == 1:
                    p50 = percentile_ms(ours.latencies, 0.5)
                    met = 'met' if p50 < TARGET_P50_MS_AT_1 else 'NOT met'
                    verdicts.append(f'Target p50 < {TARGET_P50_MS_AT_1:.0f} ms at 1 client: {met} ({p50:.1f} ms).')
                if count == 8:
                    ratio = ours.per_second / theirs
                    met = 'met' if ratio >= TARGET_RATIO_AT_8 else 'NOT met'
                    verdicts.append(f'Target >= {TARGET_RATIO_AT_8:.0%} of pgbench at 8 clients: {met} ({ratio:.0%}).')
            facts = baseline.server_facts()
        problems = provision.overdraft_problems(fixture)
    table = bench.markdown_table(
        (
            'clients', 'environments', 'HTTP provisions/s', 'p50 ms', 'p99 ms', 'pgbench provision_like (tps)', 'ratio',
            'failed', 'server CPU ms/req', 'database CPU ms/req', 'load generator CPU ms/req',
        ),
        rows,
    )  # fmt: skip
    notes = [*verdicts, '', _http_layer(http_at_1, domain_at_1)]
    notes += [
        '',
        'Server: giftcard serve with the execution environments of each row (one gunicorn sync worker each); CPU per '
        'request is the process tree of each side over the windows divided by the provisions answered 200. In the '
        "domain row the 'server' column is the calling process itself.",
    ]
    if failures:
        notes.append(f'Answers other than 200: {dict(failures)}.')
    if server_errors:
        first = server_errors[0]
        notes.append(
            f'Server logs ({", ".join(server_logs)}): {len(server_errors)} lines of 5xx or errors; the first: {first}'
        )
    broken = sum(n for k, n in failures.items() if k.startswith(('500 ', f'{NO_ANSWER} ')))
    overdraft = 'none: ledger ok, balance = funding - charges, one claimed card per redemption'
    notes.append(f'Overdraft check after the run: {overdraft if not problems else "; ".join(problems)}')
    title = (
        f'CSV-path provisions through HTTP (giftcard serve) on one hot shared budget: {duration} s per side in '
        f'{rounds} alternating rounds'
    )
    bench.report('http', title, facts, table, '\n'.join(notes))
    print('\n'.join(notes))
    return 1 if problems or broken else 0


def _http_layer(http: Window | None, domain: Window | None) -> str:
    """What the HTTP layer adds per request at 1 client: latency and CPU, HTTP row minus domain row."""
    if http is None or domain is None or not http.latencies or not domain.latencies:
        return 'HTTP layer cost: not measured (BENCH_CLIENTS has no 1).'
    p50 = percentile_ms(http.latencies, 0.5) - percentile_ms(domain.latencies, 0.5)
    n_http, n_domain = len(http.latencies), len(domain.latencies)
    parts = [f'HTTP layer cost per request at 1 client (HTTP row minus domain row): p50 +{p50:.2f} ms']
    if http.server_cpu_s is not None:
        cpu = http.server_cpu_s / n_http - domain.client_cpu_s / n_domain
        parts.append(f'Python CPU +{cpu * 1000:.2f} ms (server tree against the in-process caller)')
    if http.database_cpu_s is not None and domain.database_cpu_s is not None:
        db_cpu = http.database_cpu_s / n_http - domain.database_cpu_s / n_domain
        parts.append(f'database CPU {db_cpu * 1000:+.2f} ms')
    parts.append(f'load generator {http.client_cpu_s / n_http * 1000:.2f} ms')
    return ', '.join(parts) + '.'


if __name__ == '__main__':
    raise SystemExit(main())
