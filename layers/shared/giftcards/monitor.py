"""The monitor (`monitor-gift-card-system`): every 5 minutes, and on demand by a platform admin.

One run, holding the run lease (`monitor_state`) so that overlapping or repeated deliveries do not run twice:

1. Retries vendor orders of redemptions pending longer than the vendor timeout (`recovery.recover_pending`, the
   provisioning issue's routine, with the same idempotency keys), as many as fit in the run's time even if every
   vendor hung, so that hanging vendors never keep the checks from running. No transaction is open meanwhile.
2. Pauses active campaigns whose paying account can no longer pay for their cheapest card: the database's
   `pause_if_depleted` (migration 0016), the rule provisioning's commit also applies. Sweeps the delivery outbox:
   queued deliveries past their due time go to the queue again (`deliveries.sweep`).
3. Finds every condition with set-based SQL into the temporary table `alert_conditions` and reconciles the open
   alerts with it (`alerts.reconcile`): new conditions open alerts, persisting ones refresh them (escalating when
   worse), alerts whose condition is gone are resolved. One transaction, fenced by the lease. The ledger is checked
   in it too (`ledger_checks.check_recent`): every balance and their sum, and the entries written since the last run.
4. After commit, announces new, escalated and resolved alerts on the alerts topic (`alerts.publish_pending`).
5. Deletes redemption attempts older than their retention period, a bounded batch (`prune_attempts`).
6. Emits metrics: CSV stock per brand and denomination, open alerts per severity, run duration, attempts deleted.

Checks and their thresholds (the seed's):

| type | category | condition |
|---|---|---|
| pool_low_stock | csv_pools | available cards 0: critical; < 10: warning; < the pool's low_stock_threshold: info |
| agency_low_balance | agencies | balance < threshold (default $1,000): warning |
| client_low_balance | clients | balance < threshold (default $500): warning |
| campaign_low_balance | campaigns | active isolated campaign balance < threshold (default $100): info |
| campaign_depleted | campaigns | campaign paused because it could no longer pay for a card: warning |
| fulfilment_unavailable | provisioning_failures | failed redemptions of a brand in the last hour: critical |
| redemptions_stuck | provisioning_failures | pending longer than STUCK_AFTER_S: warning (critical after 1 h) |
| ledger_violation | ledger | a balance, a new entry or transfer, or the sum of balances breaks the ledger: critical |
| deliveries_failing | deliveries | a client's deliveries failed or bounced in the last hour: 5+ warning, 25+ critical |

Low-balance thresholds live in `alert_thresholds` (a default per entity type, overridable per entity).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from giftcards import alerts, db, deliveries, delivery_queue, ledger, ledger_checks, pools, recovery
from giftcards.config import get_settings
from giftcards.db import UnitOfWork
from giftcards.observability import logger, metrics
from giftcards.vendors import DEFAULT_TIMEOUT_S, VendorConfigError, vendor_configs, vendor_timeout_s

Trigger = Literal['schedule', 'http', 'cli']

LEASE_S = 180  # longer than the monitor function's timeout (120 s): a run that died frees the lease soon after
STUCK_AFTER_S = 300  # a redemption still pending this long after the recovery run is alerted
STUCK_CRITICAL_S = 3600
FAILURE_WINDOW_S = 3600
RECOVERY_LIMIT = 50  # pending redemptions retried per run at most
CHECKS_RESERVE_S = 15.0  # of a run's time budget, kept for the checks and announcements after the recovery
LISTED_ALERTS = 100
DELIVERY_PROBLEMS_WARNING = 5  # a client's failed or bounced deliveries within DELIVERY_WINDOW_S
DELIVERY_PROBLEMS_CRITICAL = 25
DELIVERY_WINDOW_S = 3600

CATEGORIES = ('csv_pools', 'campaigns', 'agencies', 'clients', 'provisioning_failures', 'ledger', 'deliveries')
CHECKED_TYPES = (
    'pool_low_stock',
    'agency_low_balance',
    'client_low_balance',
    'campaign_low_balance',
    'campaign_depleted',
    'fulfilment_unavailable',
    'redemptions_stuck',
    'ledger_violation',
    'deliveries_failing',
)


class LeaseLost(Exception):
    """The run's lease expired and another run may hold it: this run's checks must not write."""


@dataclass
class MonitorResult:
    success: bool
    duration_ms: int
    alerts_generated: int = 0
    alerts_escalated: int = 0
    alerts_resolved: int = 0
    alerts_open: int = 0
    breakdown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    alerts: list[dict[str, Any]] = field(default_factory=list)
    campaigns_paused: list[str] = field(default_factory=list)
    notifications_sent: int = 0
    recovery: dict[str, Any] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    deliveries_swept: int = 0
    skipped: bool = False
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        answer = asdict(self)
        if not self.skipped:
            del answer['skipped'], answer['reason']
        return answer


# --- the run lease ---------------------------------------------------------------------------------------

_ACQUIRE = """
UPDATE monitor_state SET run_token = CAST(:token AS uuid), run_trigger = :run_trigger,
       lease_until = now() + make_interval(secs => :lease), run_started_at = now()
 WHERE id AND (run_token IS NULL OR lease_until < now())
RETURNING run_started_at
"""

_HOLDER = 'SELECT run_trigger, run_started_at, lease_until FROM monitor_state WHERE id'

# Taken first in the checks transaction: it fails if the lease ran out, and the row lock keeps a run that took the
# lease over from writing its checks until these committed.
_FENCE = """
SELECT 1 FROM monitor_state WHERE id AND run_token = CAST(:token AS uuid) AND lease_until > now() FOR NO KEY UPDATE
"""

_RELEASE = """
UPDATE monitor_state SET run_token = NULL, run_trigger = NULL, lease_until = NULL, last_finished_at = now(),
       last_result = CAST(:result AS jsonb)
 WHERE id AND run_token = CAST(:token AS uuid)
"""


def _acquire(trigger: Trigger) -> tuple[str | None, str | None]:
    """(token, None) when this run holds the lease now, else (None, why not)."""
    token = str(uuid.uuid4())

    def work(uow: UnitOfWork) -> tuple[str | None, str | None]:
        if uow.fetch_one(_ACQUIRE, token=token, run_trigger=trigger, lease=LEASE_S):
            return token, None
        holder = uow.fetch_one(_HOLDER)
        assert holder is not None
        return None, (
            f'another monitor run ({holder["run_trigger"]}, started {holder["run_started_at"].isoformat()})'
            ' is in progress'
        )

    return db.in_transaction(work)


def _release(token: str, result: dict[str, Any]) -> None:
    summary = {k: v for k, v in result.items() if k != 'alerts'}
    try:
        db.in_transaction(lambda uow: uow.execute(_RELEASE, token=token, result=json.dumps(summary, default=str)))
    except Exception:  # the lease then simply runs out
        logger.exception('could not release the monitor lease')


# --- step 2: auto-pause ----------------------------------------------------------------------------------

# The dearest charged price in the whole catalogue (card_price_cents, migration 0016). Whatever a campaign deals in
# comes from the catalogue, so a balance at or above it can pay for any campaign's cheapest card: only campaigns
# below it are candidates for the one rule, pause_if_depleted.
CATALOGUE_DEAREST = """
SELECT max(card_price_cents(b.id, d.cents)) AS dearest
  FROM brands b CROSS JOIN unnest(b.denominations_cents) AS d(cents)
"""

# The candidates' paying accounts are share-locked first, in id order as the ledger locks them, so that the monitor
# and a concurrent charge cannot deadlock; then the rule decides for each.
_PAUSE_DEPLETED = f"""
WITH candidates AS MATERIALIZED (
    SELECT c.id {ledger.PAYING_ACCOUNT}
     WHERE c.status = 'active' AND acc.balance_cents < CAST(:dearest AS bigint)
       AND (CAST(:only AS uuid[]) IS NULL OR c.id = ANY (CAST(:only AS uuid[])))
     ORDER BY acc.id
       FOR SHARE OF acc
)
SELECT id::text FROM candidates WHERE pause_if_depleted(id, 'monitor', NULL) ORDER BY id
"""


def pause_depleted_campaigns(uow: UnitOfWork, only: Sequence[str] | None = None) -> list[str]:
    """Pause every active campaign (of `only`, when given) that can no longer pay for its cheapest card; answers
    their ids."""
    dearest = uow.value(CATALOGUE_DEAREST)
    if dearest is None:
        return []  # an empty catalogue: nothing can be bought, nothing is judged
    return [r['id'] for r in uow.fetch(_PAUSE_DEPLETED, dearest=dearest, only=list(only) if only is not None else None)]


# --- step 3: the checks ----------------------------------------------------------------------------------


def _dollars(expr: str) -> str:
    return f"('$' || to_char(({expr}) / 100.0, 'FM999,999,999,999,990.00'))"


_INSERT = 'INSERT INTO alert_conditions (category, type, severity, entity_type, entity_id, message, details)'

_POOL_STOCK = """
CREATE TEMPORARY TABLE monitor_pool_stock ON COMMIT DROP AS
SELECT p.id AS pool_id, p.brand_id, b.name AS brand_name, p.denomination_cents, p.low_stock_threshold,
       coalesce(s.available, 0) AS available
  FROM card_pools p JOIN brands b ON b.id = p.brand_id
  LEFT JOIN (SELECT pool_id, count(*) AS available FROM available_cards GROUP BY pool_id) s ON s.pool_id = p.id
"""

_CHECK_POOLS = f"""{_INSERT}
SELECT 'csv_pools', 'pool_low_stock',
       CASE WHEN available = 0 THEN 'critical' WHEN available < {pools.LOW_STOCK_BELOW} THEN 'warning' ELSE 'info' END,
       'pool', pool_id,
       format('%s %s CSV pool: %s', brand_name, {_dollars('denomination_cents')},
              CASE WHEN available = 0 THEN 'out of cards' ELSE available || ' cards left' END),
       jsonb_build_object('brand_id', brand_id, 'brand', brand_name, 'denomination_cents', denomination_cents,
                          'available', available, 'low_stock_threshold', low_stock_threshold)
  FROM monitor_pool_stock
 WHERE available < greatest({pools.LOW_STOCK_BELOW}, low_stock_threshold)
"""


def _balance_check(category: str, entity: str, table: str, label: str, severity: str, where: str = 'true') -> str:
    return f"""{_INSERT}
SELECT '{category}', '{entity}_low_balance', '{severity}', '{entity}', e.id,
       format('{label} %s has %s of credit left, below its %s threshold', e.name, {_dollars('acc.balance_cents')},
              {_dollars('coalesce(o.low_balance_cents, d.low_balance_cents)')}),
       jsonb_build_object('name', e.name, 'account_id', acc.id, 'balance_cents', acc.balance_cents,
                          'threshold_cents', coalesce(o.low_balance_cents, d.low_balance_cents))
  FROM {table} e
  JOIN credit_accounts acc ON acc.id = e.account_id
 CROSS JOIN (SELECT low_balance_cents FROM alert_thresholds WHERE entity_type = '{entity}' AND entity_id IS NULL) d
  LEFT JOIN alert_thresholds o ON o.entity_type = '{entity}' AND o.entity_id = e.id
 WHERE {where} AND acc.balance_cents < coalesce(o.low_balance_cents, d.low_balance_cents)
"""


_CHECK_AGENCIES = _balance_check('agencies', 'agency', 'agencies', 'Agency', 'warning')
_CHECK_CLIENTS = _balance_check('clients', 'client', 'clients', 'Client', 'warning')
_CHECK_CAMPAIGNS = _balance_check(
    'campaigns', 'campaign', 'campaigns', 'Campaign', 'info', "e.status = 'active' AND e.budget_mode = 'isolated'"
)

_CHECK_DEPLETED = f"""{_INSERT}
SELECT 'campaigns', 'campaign_depleted', 'warning', 'campaign', c.id,
       format('Campaign %s was paused: it can no longer pay for a gift card (%s left)', c.name,
              {_dollars('acc.balance_cents')}),
       jsonb_build_object('name', c.name, 'client_id', c.client_id, 'budget_mode', c.budget_mode,
                          'paying_account_id', acc.id, 'balance_cents', acc.balance_cents)
{ledger.PAYING_ACCOUNT}
 WHERE c.status = 'paused' AND c.paused_reason = 'depleted'
"""

# One alert per brand. Provisioning raises the same alert when it refunds a redemption no vendor would fill; the
# monitor keeps it open while the brand had failures in the last hour and resolves it after.
_CHECK_FAILURES = f"""{_INSERT}
SELECT 'provisioning_failures', 'fulfilment_unavailable', 'critical', 'brand', f.brand_id,
       format('%s failed redemption%s of %s in the last hour: no card in stock and no vendor sold one',
              f.failures, CASE WHEN f.failures = 1 THEN '' ELSE 's' END, b.name),
       jsonb_build_object('brand', b.name, 'failures', f.failures, 'last_failed_at', f.last_failed_at,
                          'denominations_cents', f.denominations)
  FROM (SELECT brand_id, count(*) AS failures, max(failed_at) AS last_failed_at,
               array_agg(DISTINCT denomination_cents ORDER BY denomination_cents) AS denominations
          FROM redemptions
         WHERE status = 'failed' AND failed_at > now() - make_interval(secs => {FAILURE_WINDOW_S})
         GROUP BY brand_id) f
  JOIN brands b ON b.id = f.brand_id
"""

_CHECK_STUCK = f"""{_INSERT}
SELECT 'provisioning_failures', 'redemptions_stuck',
       CASE WHEN min(created_at) < now() - make_interval(secs => {STUCK_CRITICAL_S}) THEN 'critical' ELSE 'warning' END,
       'system', NULL,
       format('%s redemption%s waiting for a vendor for more than %s minutes (charge held); recovery keeps retrying',
              count(*), CASE WHEN count(*) = 1 THEN '' ELSE 's' END, {STUCK_AFTER_S // 60}),
       jsonb_build_object('pending', count(*), 'oldest_created_at', min(created_at),
                          'redemption_ids', (array_agg(id ORDER BY created_at))[1:20])
  FROM redemptions
 WHERE status = 'pending' AND created_at < now() - make_interval(secs => {STUCK_AFTER_S})
HAVING count(*) > 0
"""

# One alert per client whose deliveries fail or bounce: bad addresses, a sender that refuses, recipients who opted out.
_CHECK_DELIVERIES = f"""{_INSERT}
SELECT 'deliveries', 'deliveries_failing',
       CASE WHEN f.problems >= {DELIVERY_PROBLEMS_CRITICAL} THEN 'critical' ELSE 'warning' END, 'client', f.client_id,
       format('%s deliveries of client %s failed or bounced in the last hour (%s failed, %s bounced)',
              f.problems, cl.name, f.failed, f.bounced),
       jsonb_build_object('client', cl.name, 'failed', f.failed, 'bounced', f.bounced,
                          'last_at', f.last_at, 'delivery_ids', f.ids)
  FROM (SELECT client_id, count(*) AS problems, count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'bounced') AS bounced, max(updated_at) AS last_at,
               (array_agg(id ORDER BY updated_at DESC))[1:20] AS ids
          FROM deliveries
         WHERE status IN ('failed', 'bounced') AND updated_at > now() - make_interval(secs => {DELIVERY_WINDOW_S})
         GROUP BY client_id
        HAVING count(*) >= {DELIVERY_PROBLEMS_WARNING}) f
  JOIN clients cl ON cl.id = f.client_id
"""

# The ledger's problems (`ledger_checks.check_recent`) as conditions, one per account, transfer, or the ledger as a
# whole (the sum of balances): ids and amounts, nothing secret.
_CHECK_LEDGER = f"""{_INSERT}
SELECT 'ledger', 'ledger_violation', 'critical', c.entity_type, c.entity_id, c.message, c.details
  FROM jsonb_to_recordset(CAST(:conditions AS jsonb))
       AS c(entity_type text, entity_id uuid, message text, details jsonb)
"""
LEDGER_PROBLEMS_SHOWN = 20  # of one account's problems, in its alert's message and details


def _ledger_conditions(problems: list[ledger_checks.Problem]) -> list[dict[str, Any]]:
    """The alert conditions for the ledger's problems: one per account (its balance and the entries that break its
    chain), per unbalanced transfer, and one for the sum of balances."""
    by_entity: dict[tuple[str, str | None], list[ledger_checks.Problem]] = {}
    for problem in problems:
        if problem.kind == 'transfer_unbalanced':
            entity = ('transfer', problem.transfer_id)
        elif problem.account_id is not None:
            entity = ('account', problem.account_id)
        else:
            entity = ('ledger', None)
        by_entity.setdefault(entity, []).append(problem)
    conditions = []
    for (entity_type, entity_id), found in by_entity.items():
        shown = found[:LEDGER_PROBLEMS_SHOWN]
        what = '; '.join(_described(p) for p in shown)
        if len(found) > len(shown):
            what += f'; and {len(found) - len(shown)} more'
        if entity_type == 'account':
            first = found[0]
            message = f'Ledger violation on account {entity_id} ({first.owner_type} {first.owner}): {what}'
        else:
            message = f'Ledger violation: {what}'
        details = {
            'problems': [
                {
                    'problem': p.kind,
                    'account_id': p.account_id,
                    'transfer_id': p.transfer_id,
                    'entry_id': p.entry_id,
                    'expected': p.expected,
                    'found': p.found,
                }
                for p in shown
            ],
            'problem_count': len(found),
        }
        if entity_type == 'account':
            details |= {'account_id': entity_id, 'owner_type': found[0].owner_type, 'owner': found[0].owner}
        conditions.append({'entity_type': entity_type, 'entity_id': entity_id, 'message': message, 'details': details})
    return conditions


def _described(problem: ledger_checks.Problem) -> str:
    if problem.kind == 'balance_differs':
        if problem.entry_id is None:
            return f'its balance is {_usd(problem.found)} but it has no entries'
        return (
            f'its balance is {_usd(problem.found)} but its newest entry ({problem.entry_id}) leaves'
            f' {_usd(problem.expected)}'
        )
    if problem.kind == 'entry_chain_broken':
        return (
            f'entry {problem.entry_id} leaves {_usd(problem.found)} where the entry before it and its amount make'
            f' {_usd(problem.expected)}'
        )
    if problem.kind == 'transfer_unbalanced':
        return (
            f'transfer {problem.transfer_id} has {problem.found} of its {problem.expected} entries'
            ' (its source debited and its destination credited by its amount)'
        )
    return f'the balances of all accounts sum to {_usd(problem.found)}, not $0.00'


def _usd(cents: int) -> str:
    sign = '-' if cents < 0 else ''
    return f'{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}'


_CHECKS = (
    _CHECK_POOLS,
    _CHECK_AGENCIES,
    _CHECK_CLIENTS,
    _CHECK_CAMPAIGNS,
    _CHECK_DEPLETED,
    _CHECK_FAILURES,
    _CHECK_STUCK,
    _CHECK_DELIVERIES,
)

_STOCK_BY_DENOMINATION = """
SELECT brand_name, denomination_cents, sum(available)::bigint AS available
  FROM monitor_pool_stock GROUP BY brand_name, denomination_cents ORDER BY brand_name, denomination_cents
"""

_OPEN_BY_SEVERITY = "SELECT severity, count(*) AS n FROM system_alerts WHERE status <> 'resolved' GROUP BY severity"


class _Checked(NamedTuple):
    reconciliation: alerts.Reconciliation
    breakdown: dict[str, int]
    stock: list[dict[str, Any]]
    open_by_severity: dict[str, int]
    listed: list[dict[str, Any]]
    ledger: dict[str, Any]


def run_checks(uow: UnitOfWork, token: str | None = None) -> _Checked:
    """Every check, and the alerts reconciled with what they found, in the caller's transaction, which is
    REPEATABLE READ: one snapshot for every check and the reconciliation, so that a failure that provisioning commits
    meanwhile, with the alert it raises, is either seen in full or not at all (never an alert resolved for lack of
    its condition). With `token`, only while that run lease is held."""
    if token is not None and uow.fetch_one(_FENCE, token=token) is None:
        raise LeaseLost()
    uow.execute(alerts.CONDITIONS_TABLE)
    uow.execute(_POOL_STOCK)
    for check in _CHECKS:
        uow.execute(check)
    recent = ledger_checks.check_recent(uow)
    if recent.problems:
        uow.execute(_CHECK_LEDGER, conditions=json.dumps(_ledger_conditions(recent.problems)))
    reconciliation = alerts.reconcile(uow, CHECKED_TYPES)
    breakdown = dict.fromkeys(CATEGORIES, 0)
    for row in uow.fetch('SELECT category, count(*) AS n FROM alert_conditions GROUP BY category'):
        breakdown[row['category']] = int(row['n'])
    rank = {'critical': 0, 'warning': 1, 'info': 2}
    order = {'new': 0, 'escalated': 1, 'resolved': 2}
    shown = sorted(reconciliation.changes, key=lambda c: (order[c.change], rank[c.severity]))[:LISTED_ALERTS]
    by_id = {a['id']: a for a in alerts.fetch(uow, [c.id for c in shown])}
    listed = [{**by_id[c.id], 'change': c.change} for c in shown if c.id in by_id]
    return _Checked(
        reconciliation=reconciliation,
        breakdown=breakdown,
        stock=uow.fetch(_STOCK_BY_DENOMINATION),
        open_by_severity={r['severity']: int(r['n']) for r in uow.fetch(_OPEN_BY_SEVERITY)},
        listed=listed,
        ledger={
            'entries_after': recent.after,
            'entries_through': recent.through,
            'watermark': recent.checked_through,
            'behind': recent.behind,
            'violations': len(recent.problems),
        },
    )


# --- step 5: retention of the redemption attempts (`giftcards.ratelimit` writes them) ----------------------

PRUNE_BATCH = 10_000  # attempts deleted per run at most: 2.9 million a day at one run per 5 minutes


def prune_attempts(*, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` redemption attempts older than their retention period (REDEEM_ATTEMPTS_RETENTION_DAYS),
    oldest first; answers how many. The database keeps every attempt younger than 7 days, whatever the setting
    says (`prune_redemption_attempts`, migration 0024)."""
    days = get_settings().redeem_attempts_retention_days
    rows = db.call('SELECT prune_redemption_attempts(make_interval(days => :days), :n) AS pruned', days=days, n=limit)
    return int(rows[0]['pruned'])


# --- the run ---------------------------------------------------------------------------------------------


def run_monitor(trigger: Trigger = 'schedule', *, time_budget_s: float | None = None) -> MonitorResult:
    """One monitor run (see the module description). Answers a skipped result when another run holds the lease.

    `time_budget_s`: how long the run may take (the Lambda's remaining time, or API Gateway's 30 s); the recovery
    retries only as many redemptions as fit in it and leaves CHECKS_RESERVE_S for the checks. None: no limit.

    Whoever asked for the run, it sees what the monitor's scope shows (db.MONITOR), and no more."""
    with db.acting_as(db.MONITOR):
        return _run(trigger, time_budget_s)


def _run(trigger: Trigger, time_budget_s: float | None) -> MonitorResult:
    started = time.perf_counter()
    token, busy = _acquire(trigger)
    if token is None:
        logger.info('monitor run skipped', extra={'reason': busy})
        return MonitorResult(success=True, duration_ms=_ms(started), skipped=True, reason=busy)
    result = MonitorResult(success=False, duration_ms=0)
    try:
        budget = None if time_budget_s is None else time_budget_s - CHECKS_RESERVE_S
        result.recovery = _recover(budget)
        result.campaigns_paused = db.in_transaction(pause_depleted_campaigns)
        result.deliveries_swept = _sweep()
        try:
            checked = db.in_transaction(lambda uow: run_checks(uow, token), repeatable_read=True)
        except LeaseLost:
            logger.warning('monitor lease expired before the checks; another run takes over')
            result.skipped, result.reason = True, 'the run lease expired; another run took over'
            result.success, result.duration_ms = True, _ms(started)
            return result
        result.notifications_sent = _publish()
        pruned = _prune()
        _fill(result, checked)
        result.success = True
        result.duration_ms = _ms(started)
        _emit_metrics(result, checked)
        metrics.add_metric(name='RedemptionAttemptsPruned', unit=MetricUnit.Count, value=pruned)
        logger.info(
            'monitor run',
            extra={**{k: v for k, v in result.as_json().items() if k != 'alerts'}, 'attempts_pruned': pruned},
        )
        return result
    finally:
        _release(token, result.as_json())


def _recover(budget_s: float | None) -> dict[str, Any]:
    """Retry as many due pending redemptions as fit in the budget if every one took the worst case (every vendor
    answering only at its timeout), at most RECOVERY_LIMIT; one pass, so each is tried at most once."""
    try:
        limit = RECOVERY_LIMIT if budget_s is None else min(RECOVERY_LIMIT, int(budget_s // _worst_retry_s()))
        if limit < 1:
            return {'examined': 0, 'skipped': 'not enough time left for a vendor retry'}
        return recovery.recover_pending(limit=limit).as_json()
    except Exception:  # the checks matter more than one recovery pass; the next run tries again
        logger.exception('recovering pending redemptions failed')
        return {'error': 'recovery failed; retried on the next run'}


def _worst_retry_s() -> float:
    """One retry at worst: every configured vendor answers only at its timeout."""
    try:
        return max(1, len(vendor_configs())) * vendor_timeout_s()
    except VendorConfigError:  # recovery reports the configuration itself
        return 2 * DEFAULT_TIMEOUT_S


def _sweep() -> int:
    try:
        return deliveries.sweep()
    except Exception as exc:  # the checks matter more; the next run sweeps again
        logger.error('sweeping the delivery outbox failed', extra=delivery_queue.failure(exc, 0))
        return 0


def _publish() -> int:
    try:
        return len(alerts.publish_pending())
    except Exception:  # the alerts stay unannounced and are announced by the next run
        logger.exception('publishing alert notifications failed')
        return 0


def _prune() -> int:
    try:
        return prune_attempts()
    except Exception:  # retention can wait for the next run; the checks and announcements are done
        logger.exception('deleting old redemption attempts failed')
        return 0


def _fill(result: MonitorResult, checked: _Checked) -> None:
    rec = checked.reconciliation
    result.alerts_generated = rec.counted('new')
    result.alerts_escalated = rec.counted('escalated')
    result.alerts_resolved = rec.counted('resolved')
    result.alerts_open = sum(checked.open_by_severity.values())
    result.breakdown = checked.breakdown
    result.alerts = checked.listed
    result.ledger = checked.ledger


def _emit_metrics(result: MonitorResult, checked: _Checked) -> None:
    for row in checked.stock:
        dimensions = {'brand': row['brand_name'], 'denomination': f'{row["denomination_cents"] / 100:.2f}'}
        with single_metric(
            name='CsvCardsAvailable',
            unit=MetricUnit.Count,
            value=int(row['available']),
            namespace=metrics.namespace,
            default_dimensions=dimensions,
        ):
            pass
    for severity in alerts.SEVERITIES:
        with single_metric(
            name='OpenAlerts',
            unit=MetricUnit.Count,
            value=checked.open_by_severity.get(severity, 0),
            namespace=metrics.namespace,
            default_dimensions={'severity': severity},
        ):
            pass
    metrics.add_metric(name='MonitorRunDuration', unit=MetricUnit.Milliseconds, value=result.duration_ms)
    metrics.add_metric(name='AlertsGenerated', unit=MetricUnit.Count, value=result.alerts_generated)
    metrics.add_metric(name='AlertsResolved', unit=MetricUnit.Count, value=result.alerts_resolved)


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
