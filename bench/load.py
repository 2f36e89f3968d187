"""Load with faults against a real `giftcard serve` on loopback, for a bounded time, then the invariants.

`giftcard serve --port 0 --no-monitor --workers 8` runs as a subprocess on a scratch database (DATABASE_URL). 16
client processes send a realistic mix for `BENCH_DURATION` seconds, each request on a fresh connection:

- provisions (`POST /provision-gift-card`, the client's integration): external codes on a brand with a big CSV
  pool; external codes on a brand whose small pool runs out in the first seconds, so that the vendor path (the
  fake Tango, then the fake Tillo) is taken; codes the system issued; on the shared campaign and on an isolated one;
- public redemptions (`POST /redeem`) of codes issued during the run by `POST /campaigns/{id}/codes`;
- replays: a code this client sent before, sent again the same way;
- reads: the admin, agency and client dashboards, an account, an account's ledger entries;
- allocations and reclaims (agency <-> client, client <-> isolated campaign), half with an `Idempotency-Key`; a
  keyed one is retried with its key after a 5xx or a lost answer, and one in five answered 200 is sent again.

Meanwhile a fault thread, at random intervals, terminates random backends of the application role
(`pg_terminate_backend` on an owner connection) and switches the fake vendors to `timeout`, `drop_response` or, less
often, `refuse` (for a few seconds, or for the next few requests) and back to `ok`, through their control URLs.

Afterwards the vendors answer again, and `POST /monitor-gift-card-system` (platform admin) runs until no redemption
is pending (bounded by BENCH_RECOVERY_S); then every check is a row of the report:

- ledger: every balance equals its entries, every transfer balanced, the sum of balances zero (`ledger_checks.check`);
- cards: each claimed card belongs to exactly one redemption, each fulfilled redemption has its card, the stock
  bookkeeping agrees (`pools.check_inventory`);
- redemptions: none left pending after the recovery;
- vendor orders: no idempotency key sold twice (across both fakes, from their `GET /__control/state`), and every
  card a vendor sold is the card of the fulfilled redemption its key belongs to;
- codes: every 200 for a code shows the same redemption and card, the card its redemption holds (by the keyed hash
  of the card code), and no card was shown for two codes;
- money: each allocation or reclaim (one note per operation, its retries included) has at most one transfer, the
  one every 200 answer named, with the amount and accounts asked; none without a 200 unless an answer was
  `503 outcome_unknown` (or never came); no keyed retry conflicted;
- statuses: no 500, no lost answer, no 5xx other than the documented ones (503 `service_unavailable`, `busy`,
  `fulfilment_unavailable`, `fulfilment_pending`, `outcome_unknown`; 502 `vendor_error`), and no 401, 403 or 404:
  every request of the mix is one its caller may make, on something that exists.

Then the totals: requests per kind with p50/p99 and their answers, and every status and error code. Any failed check
exits 1; the requests that broke one are listed with the server's log lines for them (by `apigw-requestid`).

    BENCH_DURATION=30 BENCH_CLIENTS=16 python -m bench load

Knobs: BENCH_DURATION (seconds of load, 30), BENCH_CLIENTS (client processes, 16), BENCH_SERVER_WORKERS (execution
environments, 8: more than the cores, as Lambda runs one per concurrent request; with 2, two vendor calls held by a
`timeout` fault would stall every other request), BENCH_RECOVERY_S (longest wait for the recovery, 120),
BENCH_FAULT_PAUSE_S (the pause between faults is drawn between these two: "0.3 2.5"), BENCH_SEED (random seed of
the mix and the faults; default: a new one, printed).
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import bench
from bench._serve import NO_ANSWER, Answer, ServeProcess, percentile_ms, postmaster_pid, request

PRICE_CENTS = 2_500
AGENCY_FUNDS_CENTS = 10**13
CLIENT_FUNDS_CENTS = 10**12
CAMPAIGN_FUNDS_CENTS = 10**9
VENDOR_POOL_CARDS = 30  # gone within seconds: the vendor brand's later provisions take the vendor path
DOCUMENTED_5XX = {
    (503, 'service_unavailable'),
    (503, 'busy'),
    (503, 'fulfilment_unavailable'),
    (503, 'fulfilment_pending'),
    (503, 'outcome_unknown'),
    (502, 'vendor_error'),
}
MIX = (  # what a client does next, and how often
    ('provision csv', 22),
    ('provision vendor', 8),
    ('provision issued', 6),
    ('redeem', 12),
    ('replay', 8),
    ('read', 24),
    ('allocation', 10),
    ('reclaim', 10),
)
READS = (  # (kind, role, path template)
    ('read dashboard admin', 'platform', '/dashboards/admin'),
    ('read dashboard agency', 'agency', '/dashboards/agencies/{agency_id}'),
    ('read dashboard client', 'client', '/dashboards/clients/{client_id}'),
    ('read account', 'client', '/accounts/{client_account}'),
    ('read transactions', 'client', '/accounts/{isolated_account}/transactions?limit=20'),
)


@dataclass(frozen=True)
class Fixture:
    agency_id: str
    client_id: str
    agency_account: str
    client_account: str
    isolated_account: str
    shared_campaign: str
    isolated_campaign: str
    stocked_brand: str
    vendor_brand: str
    tokens: dict[str, str]  # role -> bearer token: platform, agency, client (admins), integration

    def path(self, template: str) -> str:
        return template.format(**{k: v for k, v in vars(self).items() if isinstance(v, str)})


@dataclass
class CodeLog:
    """A redemption code a client used, and what each request for it answered."""

    via: str  # 'provision' or 'redeem'
    body: dict[str, Any]
    answers: list[tuple[int, str | None, str | None, str | None]] = field(default_factory=list)
    # (status, error code, redemption id, card code)


@dataclass
class MoveLog:
    """One allocation or reclaim as asked (its retries with the same key included), and its answers."""

    op: str
    direction: str
    from_account: str
    to_account: str
    amount_cents: int
    keyed: bool
    answers: list[tuple[int, str | None, str | None]] = field(default_factory=list)  # (status, code, transfer id)
    request_ids: list[str | None] = field(default_factory=list)  # the server's apigw-requestid of each answer


@dataclass
class Outcome:
    """What one client process reports."""

    records: list[tuple[str, int, str | None, float]] = field(default_factory=list)  # kind, status, code, seconds
    unexpected: list[dict[str, Any]] = field(default_factory=list)  # 500s, undocumented 5xx, lost answers
    codes: dict[str, CodeLog] = field(default_factory=dict)
    moves: list[MoveLog] = field(default_factory=list)


# --- the fixture -----------------------------------------------------------------------------------------------


def prepare(cards: int) -> Fixture:
    """Agency -> client -> a shared and an isolated campaign, all funded; a brand with a pool of `cards` cards and
    one whose pool holds VENDOR_POOL_CARDS; a platform, agency and client admin and the client's integration."""
    from giftcard_local import app_clients, tokens
    from giftcards import card_import, db, hierarchy, ledger, memberships, pools

    def branch(uow: db.UnitOfWork) -> dict[str, Any]:
        agency = hierarchy.add_agency(uow, 'Load agency', actor='bench')
        client = hierarchy.add_client(uow, agency.id, 'Load client', actor='bench')
        shared = hierarchy.add_campaign(uow, client.id, 'Load shared', 'shared', actor='bench')
        isolated = hierarchy.add_campaign(uow, client.id, 'Load isolated', 'isolated', actor='bench')
        stocked = hierarchy.add_brand(uow, 'Load stocked brand', [PRICE_CENTS], [], actor='bench')
        vendor = hierarchy.add_brand(uow, 'Load vendor brand', [PRICE_CENTS], [], actor='bench')
        for source, target, cents in (
            (ledger.platform_account(uow), agency.account_id, AGENCY_FUNDS_CENTS),
            (agency.account_id, client.account_id, CLIENT_FUNDS_CENTS),
            (client.account_id, isolated.account_id, CAMPAIGN_FUNDS_CENTS),
        ):
            ledger.transfer_credit(uow, source, target, cents, 'allocation', initiator='bench')
        return {
            'agency': agency, 'client': client, 'shared': shared, 'isolated': isolated,
            'stocked': stocked, 'vendor': vendor,
        }  # fmt: skip

    made = db.in_transaction(branch)
    subjects = {
        'platform': 'load-platform-admin',
        'agency': 'load-agency-admin',
        'client': 'load-client-admin',
        'integration': 'load-integration',
    }
    with db.owner_connection() as conn:
        memberships.grant(conn, subjects['platform'], 'platform_admin')
        memberships.grant(conn, subjects['agency'], 'agency_admin', agency_id=made['agency'].id)
        memberships.grant(conn, subjects['client'], 'client_admin', client_id=made['client'].id)
        memberships.grant(conn, subjects['integration'], 'client_integration', client_id=made['client'].id)
    app_clients.add(subjects['integration'])  # an integration signs in as its own app client

    def add_pool(brand_id: str) -> Callable[[db.UnitOfWork], pools.Pool]:
        body = pools.PoolRequest.model_validate({'brand_id': brand_id, 'denomination': 25, 'cost_per_card': 23.5})
        return lambda uow: pools.create_pool(uow, subjects['platform'], body)

    for brand, count in ((made['stocked'], cards), (made['vendor'], VENDOR_POOL_CARDS)):
        pool = db.in_transaction(add_pool(brand.id))
        rows = ''.join(f'LOAD-{uuid.uuid4().hex},{n:016d}\n' for n in range(count))
        card_import.import_cards(subjects['platform'], pool.id, io.BytesIO(f'card_code,card_number\n{rows}'.encode()))
    return Fixture(
        agency_id=made['agency'].id,
        client_id=made['client'].id,
        agency_account=made['agency'].account_id,
        client_account=made['client'].account_id,
        isolated_account=made['isolated'].account_id,
        shared_campaign=made['shared'].id,
        isolated_campaign=made['isolated'].id,
        stocked_brand=made['stocked'].id,
        vendor_brand=made['vendor'].id,
        tokens={role: tokens.issue_token(subject, client=role == 'integration') for role, subject in subjects.items()},
    )


# --- a client (a forked process) --------------------------------------------------------------------------------


class Client:
    """One client's loop: a request of the mix after another until the window closes."""

    def __init__(self, index: int, fixture: Fixture, host: str, port: int, seed: int) -> None:
        self.index, self.fixture, self.host, self.port = index, fixture, host, port
        self.rng = random.Random(seed)
        self.out = Outcome()
        self.stash: list[tuple[str, str, str]] = []  # issued codes not used yet: (code, campaign, brand)
        self.ops = 0
        kinds, weights = zip(*MIX, strict=True)
        self.kinds, self.weights = list(kinds), list(weights)

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        role: str | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if role is not None:
            sent['Authorization'] = f'Bearer {self.fixture.tokens[role]}'
        answer = request(self.host, self.port, method, path, body, sent)
        code = answer.error_code
        self.out.records.append((kind, answer.status, code, answer.seconds))
        if (
            answer.status == NO_ANSWER
            or answer.status in REFUSED
            or (answer.status >= 500 and (answer.status, code) not in DOCUMENTED_5XX)
        ):
            message = answer.body['error'].get('message') if code is not None else None
            self.out.unexpected.append({
                'kind': kind, 'request': f'{method} {path}', 'body': _shown(body), 'headers': headers or {},
                'status': answer.status, 'code': code, 'message': message, 'failure': answer.failure,
                'request_id': answer.headers.get('apigw-requestid'), 'at': time.time(),
            })  # fmt: skip
        return answer

    def run(self, stop_at: Any) -> Outcome:
        actions: dict[str, Callable[[], None]] = {
            'provision csv': self.provision_csv,
            'provision vendor': self.provision_vendor,
            'provision issued': self.provision_issued,
            'redeem': self.redeem,
            'replay': self.replay,
            'read': self.read,
            'allocation': lambda: self.move('allocation'),
            'reclaim': lambda: self.move('reclaim'),
        }
        while time.perf_counter() < stop_at.value:
            actions[self.rng.choices(self.kinds, self.weights)[0]]()
        return self.out

    # --- provisions and redemptions ---
    def provision(self, kind: str, campaign: str, brand: str, code: str) -> None:
        body = {'campaignId': campaign, 'brandId': brand, 'denomination': 25, 'redemptionCode': code}
        log = self.out.codes.setdefault(code, CodeLog('provision', body))
        self._answered(log, self.call(kind, 'POST', '/provision-gift-card', 'integration', body))

    def provision_csv(self) -> None:
        campaign = self.rng.choice((self.fixture.shared_campaign,) * 4 + (self.fixture.isolated_campaign,))
        self.provision('provision csv', campaign, self.fixture.stocked_brand, f'LOAD-{uuid.uuid4().hex}')

    def provision_vendor(self) -> None:
        self.provision(
            'provision vendor', self.fixture.shared_campaign, self.fixture.vendor_brand, f'LOAD-{uuid.uuid4().hex}'
        )

    def provision_issued(self) -> None:
        issued = self.issued()
        if issued is not None:
            self.provision('provision issued', issued[1], issued[2], issued[0])

    def redeem(self) -> None:
        issued = self.issued()
        if issued is None:
            return
        body = {'code': issued[0]}
        log = self.out.codes.setdefault(issued[0], CodeLog('redeem', body))
        self._answered(log, self.call('redeem', 'POST', '/redeem', None, body))

    def replay(self) -> None:
        if not self.out.codes:
            return
        code = self.rng.choice(list(self.out.codes))
        log = self.out.codes[code]
        if log.via == 'redeem':
            self._answered(log, self.call('replay redeem', 'POST', '/redeem', None, log.body))
        else:
            self._answered(log, self.call('replay provision', 'POST', '/provision-gift-card', 'integration', log.body))

    def issued(self) -> tuple[str, str, str] | None:
        """A code the system issued and this client has not used; a new batch of ten when none is left."""
        if not self.stash:
            f = self.fixture
            campaign, brand = self.rng.choice(
                ((f.shared_campaign, f.stocked_brand), (f.shared_campaign, f.vendor_brand),
                 (f.isolated_campaign, f.stocked_brand)),
            )  # fmt: skip
            body = {'brand_id': brand, 'denomination': 25, 'count': 10}
            answer = self.call('issue codes', 'POST', f'/campaigns/{campaign}/codes', 'client', body)
            if answer.status != 201:
                return None
            self.stash = [(code, campaign, brand) for code in answer.body['codes']]
        return self.stash.pop()

    @staticmethod
    def _answered(log: CodeLog, answer: Answer) -> None:
        redemption = card = None
        if answer.status == 200:
            redemption = answer.body['redemption']['id']
            card = answer.body['card'].get('cardCode') or answer.body['card'].get('card_code')
        log.answers.append((answer.status, answer.error_code, redemption, card))

    # --- reads ---
    def read(self) -> None:
        kind, role, template = self.rng.choice(READS)
        self.call(kind, 'GET', self.fixture.path(template), role)

    # --- moving credit ---
    def move(self, direction: str) -> None:
        f = self.fixture
        parent, child, role = self.rng.choice(
            ((f.agency_account, f.client_account, 'agency'), (f.client_account, f.isolated_account, 'client'))
        )
        if self.rng.random() < 0.1:
            role = 'platform'
        source, destination = (parent, child) if direction == 'allocation' else (child, parent)
        self.ops += 1
        log = MoveLog(
            f'{self.index}-{self.ops}', direction, source, destination, self.rng.randint(1, 20) * 100,
            keyed=self.rng.random() < 0.5,
        )  # fmt: skip
        self.out.moves.append(log)
        body = {
            'fromAccountId': source,
            'toAccountId': destination,
            'amount': log.amount_cents // 100,
            'notes': f'load-op {log.op}',
        }
        headers = {'Idempotency-Key': f'load-{log.op}'} if log.keyed else {}
        path = '/allocate-credit' if direction == 'allocation' else '/reclaim-credit'
        kind = f'{direction} keyed' if log.keyed else direction
        answer = self._moved(log, self.call(kind, 'POST', path, role, body, headers))
        if not log.keyed:
            return  # without a key no retry is safe: an outcome_unknown stays unknown
        for attempt in range(3):
            if answer.status != NO_ANSWER and answer.status < 500:
                break
            time.sleep(0.1 * 2**attempt)
            answer = self._moved(log, self.call(f'{kind} retry', 'POST', path, role, body, headers))
        if answer.status == 200 and self.rng.random() < 0.2:
            self._moved(log, self.call(f'{kind} replay', 'POST', path, role, body, headers))

    @staticmethod
    def _moved(log: MoveLog, answer: Answer) -> Answer:
        transfer = answer.body['outTransaction']['transfer_id'] if answer.status == 200 else None
        log.answers.append((answer.status, answer.error_code, transfer))
        log.request_ids.append(answer.headers.get('apigw-requestid'))
        return answer


def _shown(body: Any) -> Any:
    """A request body for the report: codes shortened (they are bearer secrets of a sort, even in a benchmark)."""
    if not isinstance(body, dict):
        return body
    return {
        k: (f'...{v[-4:]}' if k in ('code', 'redemptionCode') and isinstance(v, str) else v) for k, v in body.items()
    }


def _client(index: int, fixture: Fixture, host: str, port: int, seed: int, ready: Any, stop_at: Any, q: Any) -> None:
    client = Client(index, fixture, host, port, seed)
    ready.wait()
    q.put(client.run(stop_at))


# --- faults -----------------------------------------------------------------------------------------------------


class Faults(threading.Thread):
    """Until stopped, every 0.3-2.5 s: terminate random backends of the application role, or switch one or both
    fake vendors to `timeout`, `drop_response` or (less often) `refuse` (for 1-4 s, or for their next 1-5 requests),
    then back. A refusal from Tango after an unknown outcome there is what sends a key to Tillo: the case in which a
    key could be sold twice. Backends keep being terminated while a vendor is faulted."""

    def __init__(self, controls: dict[str, str], seed: int, pause_s: tuple[float, float] = (0.3, 2.5)) -> None:
        super().__init__(name='bench-faults', daemon=True)
        self.controls, self.pause_s = controls, pause_s
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.events: Counter[str] = Counter()
        self.killed = 0
        self.errors: list[str] = []
        self.restore_at: dict[str, float] = {}  # vendor -> when its standing fault ends

    def run(self) -> None:
        from giftcards import db

        with db.owner_connection() as conn:
            while not self.stopping.wait(self.rng.uniform(*self.pause_s)):
                try:
                    self.restore(time.monotonic())
                    if self.rng.random() < 0.5:
                        self.kill_backends(conn)
                    else:
                        self.vendor_fault()
                except Exception as exc:  # a fault that could not be caused is reported, not fatal
                    self.errors.append(f'{type(exc).__name__}: {exc}')
        set_vendor_mode(self.controls, 'ok')

    def kill_backends(self, conn: Any) -> None:
        share = self.rng.uniform(0.1, 1)
        [[killed]] = conn.run(
            'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity'
            " WHERE usename = 'giftcard_app' AND datname = current_database() AND random() < :share",
            share=share,
        )
        self.killed += int(killed)
        self.events['backends terminated'] += 1

    def vendor_fault(self) -> None:
        names = self.rng.choice([[name] for name in self.controls] + [list(self.controls)])
        mode = self.rng.choices(('timeout', 'drop_response', 'refuse'), (2, 2, 1))[0]
        targets = {name: self.controls[name] for name in names}
        if self.rng.random() < 0.5:
            set_vendor_mode(targets, mode, count=self.rng.randint(1, 5))
            self.events[f'vendor {mode} for the next requests'] += 1
        else:
            set_vendor_mode(targets, mode)
            self.events[f'vendor {mode} for a while'] += 1
            until = time.monotonic() + self.rng.uniform(1, 4)
            self.restore_at.update(dict.fromkeys(names, until))

    def restore(self, now: float) -> None:
        """Back to ok: the vendors whose standing fault has lasted its time."""
        due = [name for name, until in self.restore_at.items() if until <= now]
        if due:
            set_vendor_mode({name: self.controls[name] for name in due}, 'ok')
            for name in due:
                del self.restore_at[name]


def set_vendor_mode(controls: dict[str, str], mode: str, count: int | None = None) -> None:
    for url in controls.values():
        parts = urlsplit(url)
        answer = request(parts.hostname or '127.0.0.1', parts.port or 80, 'POST', f'{parts.path}/mode',
                         {'mode': mode, 'count': count}, timeout_s=10)  # fmt: skip
        if answer.status != 200:
            raise RuntimeError(f'{url}: switching to {mode} answered {answer.status} {answer.failure or ""}')


def vendor_sales(controls: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    sales = {}
    for name, url in controls.items():
        parts = urlsplit(url)
        answer = request(parts.hostname or '127.0.0.1', parts.port or 80, 'GET', f'{parts.path}/state', timeout_s=30)
        if answer.status != 200:
            raise RuntimeError(f'{url}/state answered {answer.status} {answer.failure or ""}')
        sales[name] = answer.body['sales']
    return sales


# --- the run ----------------------------------------------------------------------------------------------------


def run_load(
    fixture: Fixture,
    server: ServeProcess,
    clients: int,
    duration_s: float,
    seed: int,
    fault_pause_s: tuple[float, float] = (0.3, 2.5),
) -> tuple[Outcome, Faults]:
    """The clients and the fault thread for `duration_s`; every client's outcome merged."""
    from giftcards import db

    db.reset_connections()  # a forked client must not share the parent's socket
    context = mp.get_context('fork')
    ready, stop_at, results = context.Barrier(clients + 1), context.Value('d', 0.0), context.Queue()
    processes = [
        context.Process(
            target=_client, args=(i, fixture, server.host, server.port, seed * 1000 + i, ready, stop_at, results)
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    faults = Faults(server.vendor_controls(), seed, fault_pause_s)
    stop_at.value = time.perf_counter() + duration_s
    ready.wait(timeout=120)
    faults.start()
    time.sleep(duration_s)
    faults.stopping.set()
    faults.join(timeout=30)
    outcomes = [results.get(timeout=300) for _ in processes]  # a provision may hold a vendor call for 25 s
    for process in processes:
        process.join()
    merged = Outcome()
    for outcome in outcomes:
        merged.records += outcome.records
        merged.unexpected += outcome.unexpected
        merged.codes.update(outcome.codes)
        merged.moves += outcome.moves
    return merged, faults


def pending_count() -> int:
    from giftcards import db

    with db.owner_connection() as conn:
        return int(conn.run("SELECT count(*) FROM redemptions WHERE status = 'pending'")[0][0])


def recover(fixture: Fixture, server: ServeProcess, outcome: Outcome, bound_s: float) -> Recovery:
    """Vendors back to ok; the monitor (its recovery retries pending redemptions older than the vendor timeout, with
    their keys) until none is pending or `bound_s` has passed."""
    set_vendor_mode(server.vendor_controls(), 'ok')
    began, done = time.monotonic(), Recovery()
    client = Client(-1, fixture, server.host, server.port, 0)
    while (pending := pending_count()) and time.monotonic() - began < bound_s:
        answer = client.call('monitor (recovery)', 'POST', '/monitor-gift-card-system', 'platform')
        done.runs += 1
        examined = 0
        if answer.status == 200 and answer.body.get('skipped'):
            done.totals[f'skipped: {answer.body.get("reason")}'] += 1
        elif answer.status == 200:
            counts = {k: v for k, v in answer.body.get('recovery', {}).items() if isinstance(v, int)}
            done.totals.update(counts)
            examined = counts.get('examined', 0)
        if not examined:  # nothing was due yet (younger than the vendor timeout, or leased): wait a little
            time.sleep(1)
    done.still_pending, done.seconds = pending, time.monotonic() - began
    outcome.records += client.out.records
    outcome.unexpected += client.out.unexpected
    return done


@dataclass
class Recovery:
    runs: int = 0
    still_pending: int = 0
    seconds: float = 0.0
    totals: Counter[str] = field(default_factory=Counter)  # what the monitor answers' `recovery` added up to


# --- the checks -------------------------------------------------------------------------------------------------


Check = tuple[str, bool, str]


def ledger_check() -> Check:
    from giftcards import db, ledger_checks

    report = db.in_transaction(ledger_checks.check)
    return 'ledger invariants', report.ok, report.summary()


def card_checks(still_pending: int) -> list[Check]:
    from giftcards import db, pools

    def work(uow: db.UnitOfWork) -> dict[str, Any]:
        counts = uow.fetch_one(
            "SELECT (SELECT count(*) FROM cards WHERE status = 'claimed') AS claimed,"
            " (SELECT count(*) FROM cards c WHERE c.status = 'claimed'"
            '   AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.card_id = c.id)) AS orphaned,'
            ' (SELECT count(*) FROM (SELECT card_id FROM redemptions WHERE card_id IS NOT NULL'
            '   GROUP BY card_id HAVING count(*) > 1) twice) AS twice,'
            " (SELECT count(*) FROM redemptions r JOIN cards c ON c.id = r.card_id WHERE c.status <> 'claimed')"
            '   AS unclaimed,'
            " (SELECT count(*) FROM redemptions WHERE status = 'fulfilled' AND card_id IS NULL) AS cardless,"
            " (SELECT count(*) FILTER (WHERE status = 'fulfilled' AND source = 'csv') FROM redemptions) AS csv,"
            " (SELECT count(*) FILTER (WHERE status = 'fulfilled' AND source = 'api') FROM redemptions) AS api,"
            " (SELECT count(*) FILTER (WHERE status = 'failed') FROM redemptions) AS failed"
        )
        assert counts is not None
        pending = uow.fetch(
            'SELECT id::text, vendor, vendor_attempts, last_vendor_error, lease_token IS NOT NULL AS leased,'
            ' round(extract(epoch FROM now() - created_at))::int AS age_s,'
            ' round(extract(epoch FROM next_attempt_at - now()))::int AS next_attempt_in_s'
            " FROM redemptions WHERE status = 'pending' ORDER BY created_at LIMIT 3"
        )
        return {**counts, 'inventory': pools.check_inventory(uow), 'pending': pending}

    c = db.in_transaction(work)
    bad = c['orphaned'] or c['twice'] or c['unclaimed'] or c['cardless'] or c['inventory']
    detail = (
        f'{c["claimed"]} claimed cards; redemptions fulfilled {c["csv"]} from CSV and {c["api"]} from vendors, '
        f'{c["failed"]} failed (refunded); claimed without a redemption {c["orphaned"]}, claimed twice {c["twice"]}, '
        f'held but not claimed {c["unclaimed"]}, fulfilled without a card {c["cardless"]}'
        + (f'; stock: {"; ".join(c["inventory"])}' if c['inventory'] else '; stock bookkeeping agrees')
    )
    return [
        ('cards: claimed once, none lost', not bad, detail),
        (
            'redemptions settled after recovery',
            still_pending == 0,
            f'{still_pending} still pending' + (f', the oldest: {c["pending"]}' if c['pending'] else ''),
        ),
    ]


def vendor_checks(sales: dict[str, list[dict[str, Any]]]) -> list[Check]:
    from giftcards import db

    sold = Counter(sale['key'] for name in sales for sale in sales[name])
    twice = sorted(str(key) for key, n in sold.items() if n > 1)
    keys = [key for key in sold if key is not None]

    def work(uow: db.UnitOfWork) -> list[dict[str, Any]]:
        return uow.fetch(
            'SELECT r.vendor_key, r.status, r.vendor, c.vendor_reference FROM redemptions r'
            ' LEFT JOIN cards c ON c.id = r.card_id WHERE r.vendor_key = ANY (CAST(:keys AS text[]))',
            keys=keys,
        )

    by_key = {row['vendor_key']: row for row in (db.in_transaction(work) if keys else [])}
    lost = []
    for name, sold_by in sales.items():
        for sale in sold_by:
            row = by_key.get(sale['key'])
            if row is None or (row['status'], row['vendor'], row['vendor_reference']) != (
                'fulfilled',
                name,
                sale['reference'],
            ):
                lost.append(f'{name} {sale["key"]} {sale["reference"]}: {row}')
    orders = sum(len(o) for o in sales.values())
    by_vendor = ', '.join(f'{name} {len(o)}' for name, o in sales.items())
    return [
        ('vendor orders: no key sold twice', not twice,
         f'{orders} orders ({by_vendor}), {len(sold)} keys' + (f'; sold twice: {twice[:5]}' if twice else '')),
        ('vendor cards: each one delivered', not lost,
         'every card sold is its fulfilled redemption\'s card' if not lost else f'{len(lost)} not: {lost[:3]}'),
    ]  # fmt: skip


def code_checks(codes: dict[str, CodeLog]) -> Check:
    """Every 200 for one code shows one redemption and card; that card is the redemption's (keyed hash of the card
    code against the stored one); no card shown for two codes."""
    from giftcards import card_secrets, db

    shown: dict[str, set[tuple[str, str]]] = {}
    for code, log in codes.items():
        seen = {(r, c) for status, _, r, c in log.answers if status == 200 and r is not None and c is not None}
        if seen:
            shown[code] = seen
    problems = [
        f'code ...{code[-4:]} shown {len(seen)} different cards' for code, seen in shown.items() if len(seen) > 1
    ]
    holders: defaultdict[str, set[str]] = defaultdict(set)
    for code, seen in shown.items():
        for _, card in seen:
            holders[card].add(code)
    problems += [f'card ...{card[-4:]} shown for {len(held)} codes' for card, held in holders.items() if len(held) > 1]
    answered = {r: c for seen in shown.values() for r, c in seen}

    def work(uow: db.UnitOfWork) -> list[dict[str, Any]]:
        return uow.fetch(
            'SELECT r.id::text, r.status, c.code_hash FROM redemptions r LEFT JOIN cards c ON c.id = r.card_id'
            ' WHERE r.id = ANY (CAST(:ids AS uuid[]))',
            ids=list(answered),
        )

    stored = {row['id']: row for row in (db.in_transaction(work) if answered else [])}
    for redemption, card in answered.items():
        row = stored.get(redemption)
        if row is None or row['status'] != 'fulfilled' or bytes(row['code_hash']) != card_secrets.code_hash(card):
            problems.append(f'redemption {redemption} answered a card it does not hold ({row and row["status"]})')
    replayed = sum(1 for log in codes.values() if sum(1 for a in log.answers if a[0] == 200) > 1)
    detail = (
        f'{len(codes)} codes, {len(shown)} answered with a card, {replayed} of them more than once'
        if not problems
        else f'{len(problems)} problems: {problems[:3]}'
    )
    return 'codes: one card each, the one stored', not problems, detail


def money_check(moves: list[MoveLog], fixture: Fixture) -> tuple[Check, list[tuple[str, list[str]]]]:
    """Each operation (its retries with the same key included) against the transfers that carry its note."""
    from giftcards import db

    def work(uow: db.UnitOfWork) -> list[dict[str, Any]]:
        return uow.fetch(
            'SELECT id::text, notes, kind, from_account_id::text AS source, to_account_id::text AS destination,'
            " amount_cents FROM credit_transfers WHERE notes LIKE 'load-op %'"
        )

    transfers: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in db.in_transaction(work):
        transfers[row['notes'].removeprefix('load-op ')].append(row)
    problems: list[tuple[str, list[str]]] = []  # what went wrong, and the request ids of the answers other than 200
    names = {
        fixture.agency_account: 'agency',
        fixture.client_account: 'client',
        fixture.isolated_account: 'isolated campaign',
    }
    answered = unknown = 0
    for move in moves:
        ids = [i for i, (status, _, _) in zip(move.request_ids, move.answers, strict=True) if i and status != 200]
        route = f'{names.get(move.from_account, move.from_account)} to {names.get(move.to_account, move.to_account)}'
        what = f'op {move.op} ({move.direction} of {move.amount_cents} cents from {route}, keyed={move.keyed})'
        found = transfers.pop(move.op, [])
        named = {t for status, _, t in move.answers if status == 200}
        codes = {code for _, code, _ in move.answers}
        unsure = 'outcome_unknown' in codes or any(status == NO_ANSWER for status, _, _ in move.answers)
        answered += bool(named)
        unknown += unsure and not named
        said = [f'{s} {c or ""}'.strip() for s, c, _ in move.answers]
        if len(found) > 1:
            problems.append((f'{what}: {len(found)} transfers; answers {said}', ids))
        elif named and (len(named) > 1 or not found or found[0]['id'] not in named):
            problems.append((f'{what}: 200 named {sorted(map(str, named))}, transfers {found}; answers {said}', ids))
        elif found and not named and not unsure:
            problems.append((f'{what}: transfer {found[0]["id"]} committed without a 200; answers {said}', ids))
        if found and (found[0]['kind'], found[0]['source'], found[0]['destination'], found[0]['amount_cents']) != (
            move.direction,
            move.from_account,
            move.to_account,
            move.amount_cents,
        ):
            problems.append((f'{what}: the transfer moved something else: {found[0]}', ids))
        if 'idempotency_conflict' in codes:
            problems.append((f'{what}: a retry with the same key and body conflicted; answers {said}', ids))
    problems += [(f'transfer of no operation this run made: {rows}', []) for rows in transfers.values()]
    detail = (
        f'{len(moves)} operations ({sum(m.keyed for m in moves)} keyed), {answered} answered 200, '
        f'{unknown} with an unknown outcome'
    )
    return ('money: each 200 is one transfer, none without a 200', not problems, detail), problems


# Refusals no request of the mix should get: each is one its caller may make, on something that exists.
REFUSED = (401, 403, 404)


def status_check(outcome: Outcome) -> Check:
    statuses = Counter((status, code) for _, status, code, _ in outcome.records)
    bad = {
        k: n
        for k, n in statuses.items()
        if k[0] == NO_ANSWER or k[0] == 500 or k[0] in REFUSED or (k[0] >= 500 and k not in DOCUMENTED_5XX)
    }
    documented = sum(n for k, n in statuses.items() if k in DOCUMENTED_5XX)
    listed = ', '.join(f'{status} {code or ""}'.strip() + f' x{n}' for (status, code), n in bad.items())
    detail = f'{documented} documented 5xx' + (f'; unexpected: {listed}' if bad else '')
    return 'no 500, no undocumented 5xx, no lost answer, no refusal of a permitted request', not bad, detail


# --- the report -------------------------------------------------------------------------------------------------


def totals(outcome: Outcome) -> tuple[str, str]:
    by_kind: defaultdict[str, list[tuple[int, str | None, float]]] = defaultdict(list)
    for kind, status, code, seconds in outcome.records:
        by_kind[kind].append((status, code, seconds))
    rows = []
    for kind in sorted(by_kind):
        answers = by_kind[kind]
        latencies = [s for _, _, s in answers]
        counted = Counter(f'{status}' + (f' {code}' if code else '') for status, code, _ in answers)
        rows.append((
            kind, len(answers), f'{percentile_ms(latencies, 0.5):.1f}', f'{percentile_ms(latencies, 0.99):.1f}',
            ', '.join(f'{k}: {n}' for k, n in counted.most_common()),
        ))  # fmt: skip
    every = [s for _, _, _, s in outcome.records]
    rows.append(('all', len(every), f'{percentile_ms(every, 0.5):.1f}', f'{percentile_ms(every, 0.99):.1f}', ''))
    kinds = bench.markdown_table(('request kind', 'requests', 'p50 ms', 'p99 ms', 'answers'), rows)
    statuses = Counter((status, code or '') for _, status, code, _ in outcome.records)
    codes = bench.markdown_table(
        ('status', 'error code', 'count'),
        [(status or 'no answer', code, n) for (status, code), n in sorted(statuses.items())],
    )
    return kinds, codes


def evidence(outcome: Outcome, server: ServeProcess, limit: int = 5) -> str:
    """The first unexpected answers, each with the server's log lines that carry its request id."""
    parts = []
    for item in outcome.unexpected[:limit]:
        parts.append(
            f'- {item["kind"]}: {item["request"]} {item["body"]} {item["headers"]} -> {item["status"]} '
            f'{item["code"] or ""} {item["message"] or item["failure"] or ""}'
        )
        parts += server_lines(server, item['request_id'])
    if len(outcome.unexpected) > limit:
        parts.append(f'- ... and {len(outcome.unexpected) - limit} more')
    return '\n'.join(parts)


def money_evidence(problems: list[tuple[str, list[str]]], server: ServeProcess, limit: int = 5) -> str:
    parts = []
    for text, request_ids in problems[:limit]:
        parts.append(f'- {text}')
        for request_id in request_ids:
            parts += server_lines(server, request_id)
    if len(problems) > limit:
        parts.append(f'- ... and {len(problems) - limit} more')
    return '\n'.join(parts)


def server_lines(server: ServeProcess, request_id: str | None, limit: int = 6) -> list[str]:
    """The server's log lines (Powertools' JSON records carry the request id as correlation_id) for one request."""
    if not request_id:
        return []
    lines = []
    for path in (server.stderr_path, server.stdout_path):
        found = [line for line in path.read_text(errors='replace').splitlines() if request_id in line]
        lines += [f'    {path.name}: {line[:1500]}' for line in found[:limit]]
    return lines


def server_facts() -> dict[str, Any]:
    from giftcards import db

    with db.owner_connection() as conn:
        row = conn.run(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'),"
            " current_setting('shared_buffers')"
        )[0]
    return dict(zip(('version', 'fsync', 'synchronous_commit', 'shared_buffers'), row, strict=True))


def main(argv: list[str] | None = None) -> int:
    """Knobs: BENCH_DURATION (30), BENCH_CLIENTS (16), BENCH_SERVER_WORKERS (8), BENCH_RECOVERY_S (120),
    BENCH_CARDS (stocked pool: 50000), BENCH_FAULT_PAUSE_S ("0.3 2.5"), BENCH_SEED (random)."""
    # Warnings and errors (5xx, vendor trouble, exceptions) stay in the server's log; an INFO line per request not.
    os.environ.setdefault('POWERTOOLS_LOG_LEVEL', 'WARNING')
    os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
    duration, clients = bench.duration_s(30), int(os.environ.get('BENCH_CLIENTS', '16'))
    workers = int(os.environ.get('BENCH_SERVER_WORKERS', '8'))
    recovery_bound = float(os.environ.get('BENCH_RECOVERY_S', '120'))
    seed = int(os.environ.get('BENCH_SEED') or random.SystemRandom().randrange(10**6))
    low, high = (float(s) for s in os.environ.get('BENCH_FAULT_PAUSE_S', '0.3 2.5').split())
    print(f'seed {seed}: {clients} clients for {duration} s against {workers} execution environments', flush=True)
    with bench.scratch_database('load') as _url:
        fixture = prepare(int(os.environ.get('BENCH_CARDS', '50000')))
        facts = server_facts()
        with ServeProcess(workers=workers) as server:
            database_pid = postmaster_pid()
            outcome, faults = run_load(fixture, server, clients, duration, seed, (low, high))
            recovered = recover(fixture, server, outcome, recovery_bound)
            sales = vendor_sales(server.vendor_controls())
            checks = [
                ledger_check(),
                *card_checks(recovered.still_pending),
                *vendor_checks(sales),
                code_checks(outcome.codes),
            ]
            money, money_problems = money_check(outcome.moves, fixture)
            checks += [money, status_check(outcome)]
            shown_evidence = evidence(outcome, server)
            shown_money = money_evidence(money_problems, server)
            server_log, server_alive = server.log_dir, server.alive()
    checks.append(('server still running at the end', server_alive, f'logs in {server_log}'))
    table = bench.markdown_table(
        ('check', 'result', 'detail'), [(name, 'ok' if ok else 'FAILED', detail) for name, ok, detail in checks]
    )
    kinds, codes = totals(outcome)
    notes = [
        f'Requests: {len(outcome.records)} from {clients} clients in {duration} s and the recovery; seed {seed}; '
        f'server with {workers} execution environments (database server pid {database_pid}).',
        f'Faults: {dict(faults.events)}; {faults.killed} backends terminated'
        + (f'; faults that could not be caused: {faults.errors[:3]}' if faults.errors else '')
        + '.',
        f'Recovery: {recovered.runs} monitor run(s) in {recovered.seconds:.1f} s, their recovery: '
        f'{dict(recovered.totals)}; {recovered.still_pending} redemption(s) still pending.',
        '',
        kinds,
        '',
        codes,
    ]
    if money_problems:
        notes += ['', 'Money problems (with the server log lines of the answers other than 200):', shown_money]
    if outcome.unexpected:
        notes += ['', 'Unexpected answers (with the server log lines of their request):', shown_evidence]
    title = f'Load with faults: {clients} clients for {duration} s, database backends killed, vendors faulted'
    bench.report('load', title, facts, table, '\n'.join(notes))
    print('\n'.join(notes))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == '__main__':
    raise SystemExit(main())
