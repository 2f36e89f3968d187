"""System alerts: at most one open alert per (type, entity), and their delivery to the alerts topic.

- `raise_alert` opens an alert for a condition, or refreshes the open one (`occurrences`, `last_seen`): the partial
  unique index `system_alerts_one_open` decides "the one open alert", so concurrent writers meet there.
  An alert that gets worse is escalated: its severity rises and an acknowledged alert opens again.
- `reconcile` does the same for a whole set of conditions at once (the monitor's checks) and resolves the open
  alerts of the checked types whose condition is gone.
- `acknowledge` records that an admin has seen an alert; `list_alerts` pages through open or resolved ones. Both
  answer `Alert` values, which the routes render.
- `publish_pending` delivers what people must hear about: new alerts, escalations and resolutions, each once.
  It runs after the alert changes committed, never inside their transaction: it claims the alerts to announce,
  publishes, then records what it published (`notified_status`, `notified_severity`). A crash between publishing
  and recording announces the change again on the next run; nothing is lost and nothing waits on the topic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from giftcards import auth, db, errors, notify, pagination
from giftcards.db import UnitOfWork
from giftcards.observability import logger

Severity = Literal['info', 'warning', 'critical']
Change = Literal['new', 'escalated', 'resolved']
Status = Literal['open', 'acknowledged', 'resolved']
ListStatus = Literal['open', 'resolved']
SEVERITIES: tuple[Severity, ...] = ('info', 'warning', 'critical')
CLAIM_S = 60  # how long a publisher may take to deliver the alerts it claimed before another may

_COLUMNS = """a.id::text, a.type, a.severity, a.entity_type, a.entity_id::text, a.message, a.status, a.occurrences,
       a.details, a.first_seen, a.last_seen, a.acknowledged_by, a.acknowledged_at, a.resolved_at"""

# A condition seen again: its latest severity, message and details, one more occurrence. An acknowledged alert that
# got worse is open again: the table's trigger (migration 0027) sees to that for every writer.
_REFRESH = """
   SET severity = EXCLUDED.severity, message = EXCLUDED.message, details = EXCLUDED.details,
       occurrences = a.occurrences + 1, last_seen = now()
"""

# Any scope may raise an alert, and only the platform's and the monitor's read them (migration 0022): the upsert is
# the database's raise_system_alert, which refreshes as _REFRESH does.
_UPSERT = """
SELECT id, created FROM raise_system_alert(
    :type, :severity, :entity_type, CAST(:entity_id AS uuid), :message, CAST(:details AS jsonb))
"""

_RESOLVE = """
UPDATE system_alerts SET status = 'resolved', resolved_at = now()
 WHERE type = :type AND entity_type = :entity_type AND entity_id IS NOT DISTINCT FROM CAST(:entity_id AS uuid)
   AND status <> 'resolved'
RETURNING id::text
"""

# The conditions found now (temporary table `alert_conditions`, see CONDITIONS_TABLE) against the open alerts of the
# checked types: every condition opens or refreshes its alert, every open alert without a condition is resolved.
# `before` is the statement's snapshot, so it holds each alert's severity before this statement changed it.
# Answers only what changed (new, escalated, resolved); a condition that persists is a refresh, counted apart.
_RECONCILE = f"""
WITH before AS (
    SELECT id, severity FROM system_alerts WHERE status <> 'resolved' AND type = ANY (CAST(:checked AS text[]))
), upserted AS (
    INSERT INTO system_alerts AS a (type, severity, entity_type, entity_id, message, details)
    SELECT type, severity, entity_type, entity_id, message, details FROM alert_conditions
    ON CONFLICT (type, entity_type, entity_id) WHERE status <> 'resolved' DO UPDATE {_REFRESH}
    RETURNING a.id, a.type, a.severity, (a.xmax = 0) AS created
), resolved AS (
    UPDATE system_alerts a SET status = 'resolved', resolved_at = now()
     WHERE a.status <> 'resolved' AND a.type = ANY (CAST(:checked AS text[]))
       AND NOT EXISTS (SELECT 1 FROM alert_conditions c WHERE c.type = a.type AND c.entity_type = a.entity_type
                                                           AND c.entity_id IS NOT DISTINCT FROM a.entity_id)
    RETURNING a.id, a.type, a.severity
), changes AS (
    SELECT u.id, u.type, u.severity,
           CASE WHEN u.created THEN 'new'
                WHEN alert_severity_rank(u.severity) > alert_severity_rank(b.severity) THEN 'escalated'
                ELSE 'refreshed' END AS change
      FROM upserted u LEFT JOIN before b ON b.id = u.id
    UNION ALL
    SELECT id, type, severity, 'resolved' FROM resolved
)
SELECT id::text, type, severity, change FROM changes WHERE change <> 'refreshed'
UNION ALL
SELECT NULL, NULL, NULL, 'refreshed:' || count(*) FROM changes WHERE change = 'refreshed'
"""

# The conditions `reconcile` reads: a caller (the monitor) creates this table in its transaction and fills it first.
CONDITIONS_TABLE = """
CREATE TEMPORARY TABLE alert_conditions (
    category     text NOT NULL,
    type         text NOT NULL,
    severity     text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid,
    message      text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE NULLS NOT DISTINCT (type, entity_type, entity_id)
) ON COMMIT DROP
"""

_UNNOTIFIED = """
    ((a.status <> 'resolved' AND (a.notified_status IS NULL
                                  OR alert_severity_rank(a.severity) > alert_severity_rank(a.notified_severity)))
     OR (a.status = 'resolved' AND a.notified_status IS DISTINCT FROM 'resolved'))
"""

_CLAIM = f"""
UPDATE system_alerts a SET notify_claimed_until = now() + make_interval(secs => :claim)
 WHERE a.id IN (SELECT a.id FROM system_alerts a
                 WHERE {_UNNOTIFIED} AND (a.notify_claimed_until IS NULL OR a.notify_claimed_until < now())
                 ORDER BY a.last_seen LIMIT :n FOR UPDATE SKIP LOCKED)
RETURNING {_COLUMNS}, a.notified_status
"""

_MARK_NOTIFIED = """
UPDATE system_alerts a
   SET notified_status = v.status, notified_severity = v.severity, notified_at = now(), notify_claimed_until = NULL
  FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:severities AS text[])) AS v(id, status, severity)
 WHERE a.id = v.id
"""

_UNCLAIM = 'UPDATE system_alerts SET notify_claimed_until = NULL WHERE id = ANY (CAST(:ids AS uuid[]))'


class RaisedAlert(NamedTuple):
    id: str
    created: bool  # False: an open alert for this (type, entity) existed and was updated


class AlertChange(NamedTuple):
    id: str
    type: str
    severity: Severity
    change: Change


class Reconciliation(NamedTuple):
    changes: list[AlertChange]
    refreshed: int  # open alerts whose condition persists (occurrences + 1, no announcement)

    def counted(self, change: Change) -> int:
        return sum(1 for c in self.changes if c.change == change)


def raise_alert(
    uow: UnitOfWork,
    type: str,
    severity: Severity,
    entity_type: str,
    entity_id: str | None,
    message: str,
    details: dict[str, Any] | None = None,
) -> RaisedAlert:
    """Open an alert for (type, entity), or refresh the open one, in the caller's transaction. It is announced on the
    alerts topic by the next `publish_pending` after the transaction commits."""
    row = uow.fetch_one(
        _UPSERT,
        type=type,
        severity=severity,
        entity_type=entity_type,
        entity_id=entity_id,
        message=message,
        details=json.dumps(details or {}, default=str),
    )
    assert row is not None
    return RaisedAlert(id=row['id'], created=bool(row['created']))


def resolve_alert(uow: UnitOfWork, type: str, entity_type: str, entity_id: str | None) -> bool:
    """Resolve the open alert for (type, entity), if there is one; answers whether there was."""
    return uow.fetch_one(_RESOLVE, type=type, entity_type=entity_type, entity_id=entity_id) is not None


def reconcile(uow: UnitOfWork, types: Sequence[str]) -> Reconciliation:
    """Bring the open alerts of `types` in line with the rows of the temporary table `alert_conditions`
    (create it with CONDITIONS_TABLE and fill it first, in this transaction)."""
    changes: list[AlertChange] = []
    refreshed = 0
    for row in uow.fetch(_RECONCILE, checked=list(types)):
        if row['id'] is None:
            refreshed = int(row['change'].split(':', 1)[1])
        else:
            changes.append(AlertChange(row['id'], row['type'], row['severity'], row['change']))
    return Reconciliation(changes, refreshed)


# --- reading and acknowledging -------------------------------------------------------------------------


class Alert(NamedTuple):
    id: str
    type: str
    severity: Severity
    entity_type: str
    entity_id: str | None
    message: str
    status: Status
    occurrences: int  # how many checks found its condition since it opened
    details: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The alert as the notifications on the alerts topic and the monitor's kept result carry it: its times in
        ISO 8601."""
        return {
            **self._asdict(),
            'first_seen': self.first_seen.isoformat(),
            'last_seen': self.last_seen.isoformat(),
            'acknowledged_at': pagination.iso(self.acknowledged_at),
            'resolved_at': pagination.iso(self.resolved_at),
        }


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(
        id=row['id'],
        type=row['type'],
        severity=row['severity'],
        entity_type=row['entity_type'],
        entity_id=row['entity_id'],
        message=row['message'],
        status=row['status'],
        occurrences=row['occurrences'],
        details=row['details'],
        first_seen=row['first_seen'],
        last_seen=row['last_seen'],
        acknowledged_by=row['acknowledged_by'],
        acknowledged_at=row['acknowledged_at'],
        resolved_at=row['resolved_at'],
    )


def find(uow: UnitOfWork, ids: Sequence[str]) -> list[Alert]:
    """The alerts `ids`, in the order given."""
    rows = uow.fetch(f'SELECT {_COLUMNS} FROM system_alerts a WHERE a.id = ANY (CAST(:ids AS uuid[]))', ids=list(ids))
    by_id = {r['id']: _alert(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def fetch(uow: UnitOfWork, ids: Sequence[str]) -> list[dict[str, Any]]:
    """`find` as `Alert.as_json` writes the alerts: what a monitor run lists and keeps."""
    return [alert.as_json() for alert in find(uow, ids)]


def list_alerts(subject: str, status: ListStatus, limit: int, cursor: str | None) -> pagination.Page[Alert]:
    """Platform admin: open (and acknowledged) alerts newest first, or resolved ones most recently resolved first."""
    after_at, after_id = pagination.decode_time_cursor(cursor)
    key = 'first_seen' if status == 'open' else 'resolved_at'
    where = "a.status <> 'resolved'" if status == 'open' else "a.status = 'resolved'"

    def work(uow: UnitOfWork) -> pagination.Page[Alert]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        rows = uow.fetch(
            f'SELECT {_COLUMNS} FROM system_alerts a WHERE {where}'
            f' AND (CAST(:after_at AS timestamptz) IS NULL'
            f'      OR (a.{key}, a.id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))'
            f' ORDER BY a.{key} DESC, a.id DESC LIMIT CAST(:n AS integer)',
            after_at=after_at,
            after_id=after_id,
            n=limit + 1,
        )
        return pagination.page_of(rows, limit, lambda r: (r[key], r['id']), _alert)

    return db.in_transaction(work)


def acknowledge(subject: str, alert_id: str) -> Alert:
    """Platform admin: mark an open alert as seen. Acknowledging it again changes nothing; a resolved alert is 409.
    The monitor keeps refreshing an acknowledged alert and opens it again if it gets worse."""

    def work(uow: UnitOfWork) -> Alert:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        if not auth.is_uuid(alert_id):
            raise errors.NotFound('No such alert.')
        row = uow.fetch_one(
            f'SELECT {_COLUMNS} FROM system_alerts a WHERE a.id = CAST(:id AS uuid) FOR UPDATE', id=alert_id
        )
        if row is None:
            raise errors.NotFound('No such alert.')
        if row['status'] == 'resolved':
            raise errors.Conflict('This alert is already resolved.', code='alert_resolved')
        if row['status'] == 'open':
            row = uow.fetch_one(
                "UPDATE system_alerts a SET status = 'acknowledged', acknowledged_by = :who, acknowledged_at = now()"
                f' WHERE a.id = CAST(:id AS uuid) RETURNING {_COLUMNS}',
                id=alert_id,
                who=subject,
            )
            assert row is not None
            uow.execute(
                'INSERT INTO audit_events (actor, action, entity_type, entity_id, details) VALUES (:who,'
                " 'alert.acknowledged', 'alert', CAST(:id AS uuid), CAST(:details AS jsonb))",
                who=subject,
                id=alert_id,
                details=json.dumps({'type': row['type'], 'severity': row['severity']}),
            )
        return _alert(row)

    return db.in_transaction(work)


# --- delivery ------------------------------------------------------------------------------------------


def publish_pending(*, limit: int = 500) -> list[notify.Notification]:
    """Announce, after commit, every alert change not yet announced: new, escalated, resolved. Answers what was
    delivered. Alerts the topic did not take stay pending for the next call."""
    claimed = db.in_transaction(lambda uow: uow.fetch(_CLAIM, claim=CLAIM_S, n=limit))
    if not claimed:
        return []
    pending = [notify.Notification(change=_change(row), alert=_alert(row).as_json()) for row in claimed]
    delivered = notify.publish(pending)
    done = {n.alert['id'] for n in delivered}
    undelivered = [n.alert['id'] for n in pending if n.alert['id'] not in done]

    def record(uow: UnitOfWork) -> None:
        if delivered:
            uow.execute(
                _MARK_NOTIFIED,
                ids=[n.alert['id'] for n in delivered],
                statuses=['resolved' if n.change == 'resolved' else 'open' for n in delivered],
                severities=[n.alert['severity'] for n in delivered],
            )
        if undelivered:
            uow.execute(_UNCLAIM, ids=undelivered)

    db.in_transaction(record)
    if undelivered:
        logger.warning(
            'alert notifications not delivered; retried on the next run', extra={'undelivered': len(undelivered)}
        )
    return delivered


def _change(row: dict[str, Any]) -> Change:
    if row['status'] == 'resolved':
        return 'resolved'
    return 'new' if row['notified_status'] is None else 'escalated'
