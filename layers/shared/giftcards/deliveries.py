"""Delivering cards to recipients through an outbox: exactly once in effect.

1. The transaction that fulfils a redemption with a delivery method writes its delivery row (`queued`): a trigger on
   redemptions (migration 0023), whichever path fulfilled it. Nothing is sent for a rolled-back provision.
2. After the commit, `dispatch` hands the delivery to the queue (SQS, DELIVERY_QUEUE_URL), or, without one (only when
   ENVIRONMENT is local), sends it right away. If the process dies first, nothing is lost: the monitor's `sweep`
   finds every queued delivery past its due time and dispatches it again.
3. The deliver function sends one for each message of the queue (`delivering.deliver`), with its lease, after a
   consent check, retried with backoff; the queue itself is `delivery_queue`.
4. SES notifications move a sent e-mail to delivered or bounced, and record complaints (`handle_notification`);
   inbound SMS record STOP and START replies (`handle_inbound_sms`).
5. `resend` (a client's admin) starts the next send within limits: at most MAX_RESENDS, RESEND_INTERVAL_S apart.

Nothing here logs an address, a link token or a card: deliveries are known by their id in logs.

Row-level security (migration 0025): nobody signed in sends a delivery or hears about it, so each of these enters a
scope of its own, whoever calls it: a send the delivery's (`Scope.delivering`), an SES notification the scope of the
message it names (`Scope.of_provider_message`), an SMS reply one that sees no tenant, and the sweep the monitor's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit

from giftcards import auth, db, delivery_queue, errors, recipients
from giftcards.config import get_settings, refuse_outside_local
from giftcards.db import Scope, UnitOfWork
from giftcards.observability import logger, metrics

Status = Literal['queued', 'sent', 'delivered', 'bounced', 'failed']
STATUSES: tuple[Status, ...] = ('queued', 'sent', 'delivered', 'bounced', 'failed')
Content = Literal['link', 'card']

SWEEP_AFTER_S = 60  # a queued delivery this far past its due time was not handed to the queue, or was lost there
SWEEP_LIMIT = 200
MAX_RESENDS = 3
RESEND_INTERVAL_S = 60
STOP_WORDS = frozenset({'STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE'})
START_WORDS = frozenset({'START', 'UNSTOP', 'SUBSCRIBE'})


# Deliveries by status over a scope of `d` (dashboards): a JSON object of every status's count.
COUNTS = (
    "jsonb_build_object('queued', count(*) FILTER (WHERE d.status = 'queued'),"
    " 'sent', count(*) FILTER (WHERE d.status = 'sent'), 'delivered', count(*) FILTER (WHERE d.status = 'delivered'),"
    " 'bounced', count(*) FILTER (WHERE d.status = 'bounced'), 'failed', count(*) FILTER (WHERE d.status = 'failed'))"
)


def counts_of(value: dict[str, Any] | None) -> dict[Status, int]:
    """COUNTS' object as a count per status, every status present."""
    return {status: int((value or {}).get(status) or 0) for status in STATUSES}


# --- after commit: the queue ---------------------------------------------------------------------------------


def dispatch(delivery_ids: Sequence[str], *, delay_s: int = 0) -> None:
    """Hand deliveries whose rows committed to the queue, or send them now when there is none. Never raises: what
    is not handed over is the sweeper's."""
    if not delivery_ids:
        return
    queue = get_settings().delivery_queue_url
    try:
        if queue:
            delivery_queue.hand_over(queue, delivery_ids, delay_s=delay_s)
        else:
            _send_here(delivery_ids)
    except Exception as exc:
        logger.error(
            'deliveries were not dispatched; the monitor sweeps them',
            extra=delivery_queue.failure(exc, len(delivery_ids)),
        )


def _send_here(delivery_ids: Sequence[str]) -> None:
    """Without a queue, the process that committed the deliveries sends them: the local runtime's stand-in for the
    queue and the deliver function. A deployed function always has its queue (config.Need.DELIVERY_QUEUE)."""
    refuse_outside_local('sending deliveries without a queue', 'DELIVERY_QUEUE_URL')
    # Imported here, the one place outside the deliver function that sends: with a queue, as every deployed
    # function has, a function that writes deliveries never loads the message templates and the providers' clients.
    from giftcards import delivering

    for delivery_id in delivery_ids:
        delivering.deliver(delivery_id)


_DUE = """
SELECT id::text FROM deliveries
 WHERE status = 'queued' AND next_attempt_at <= now() - make_interval(secs => :grace)
   AND (lease_until IS NULL OR lease_until < now())
 ORDER BY next_attempt_at LIMIT CAST(:n AS integer)
"""


def sweep(limit: int = SWEEP_LIMIT) -> int:
    """Dispatch every queued delivery that is due and that nobody is sending (the monitor, each run); answers how
    many. A dispatch it repeats does nothing: the first taker's lease, or its `sent`, stops the second."""
    due = [r['id'] for r in db.read((_DUE, {'grace': SWEEP_AFTER_S, 'n': limit}), scope=db.MONITOR)[0]]
    if due:
        logger.info('queued deliveries swept', extra={'count': len(due)})
        dispatch(due)
    return len(due)


# --- what the providers tell -------------------------------------------------------------------------------

_DELIVERED = """
UPDATE deliveries SET status = 'delivered', delivered_at = now(), updated_at = now()
 WHERE provider_message_id = :message_id AND status = 'sent'
RETURNING id::text
"""

_BOUNCED = """
UPDATE deliveries SET status = 'bounced', bounced_at = now(), last_error = left(:error, 500), updated_at = now()
 WHERE provider_message_id = :message_id AND status IN ('sent', 'delivered')
RETURNING id::text
"""

_SOFT_BOUNCE = """
UPDATE deliveries SET last_error = left(:error, 500), updated_at = now()
 WHERE provider_message_id = :message_id
RETURNING id::text
"""

_COMPLAINED = """
UPDATE deliveries SET complained_at = now(), last_error = 'the recipient marked the message as spam', updated_at = now()
 WHERE provider_message_id = :message_id
RETURNING id::text, channel, address
"""

_OPT_OUT = """
INSERT INTO delivery_opt_outs AS o (channel, address, opted_out_at, source)
VALUES (:channel, :address, now(), :source)
ON CONFLICT (channel, address) DO UPDATE
   SET opted_out_at = now(), source = EXCLUDED.source, opted_in_again_at = NULL
"""

_OPT_IN_AGAIN = """
UPDATE delivery_opt_outs SET opted_in_again_at = now()
 WHERE channel = 'sms' AND address = :address AND opted_in_again_at IS NULL
"""


def handle_notification(message: dict[str, Any]) -> str | None:
    """An SES event (configuration set event publishing, or identity notifications) about a message we sent:
    Delivery, Bounce or Complaint. Answers what it recorded, or None for a notification about no current send."""
    kind = message.get('eventType') or message.get('notificationType')
    mail = message.get('mail') if isinstance(message.get('mail'), dict) else {}
    message_id = mail.get('messageId') if isinstance(mail, dict) else None
    if not isinstance(message_id, str) or kind not in ('Delivery', 'Bounce', 'Complaint'):
        logger.info('an SES notification was ignored', extra={'kind': str(kind)[:40]})
        return None

    def work(uow: UnitOfWork) -> str | None:
        if kind == 'Delivery':
            return 'delivered' if uow.fetch(_DELIVERED, message_id=message_id) else None
        if kind == 'Bounce':
            bounce = message.get('bounce') or {}
            error = f'bounce: {bounce.get("bounceType", "Undetermined")}/{bounce.get("bounceSubType", "Undetermined")}'
            if bounce.get('bounceType') == 'Permanent':
                return 'bounced' if uow.fetch(_BOUNCED, message_id=message_id, error=error) else None
            return 'soft_bounce' if uow.fetch(_SOFT_BOUNCE, message_id=message_id, error=error) else None
        complained = uow.fetch_one(_COMPLAINED, message_id=message_id)
        if complained is None:
            return None
        uow.execute(_OPT_OUT, channel=complained['channel'], address=complained['address'], source='complaint')
        return 'complaint'

    recorded = db.in_transaction(work, scope=Scope.of_provider_message(message_id))
    logger.info('SES notification', extra={'kind': kind, 'recorded': recorded})
    if recorded in ('bounced', 'complaint'):
        metrics.add_metric(
            name='DeliveriesBounced' if recorded == 'bounced' else 'DeliveryComplaints', unit=MetricUnit.Count, value=1
        )
    return recorded


def handle_inbound_sms(message: dict[str, Any]) -> str | None:
    """An SMS a recipient sent to our number (End User Messaging's two-way SMS, through SNS): STOP and its synonyms
    opt the number out of every message; START opts it in again. Answers 'opted_out', 'opted_in_again' or None."""
    number = recipients.normalise_phone(str(message.get('originationNumber') or ''))
    words = str(message.get('messageBody') or '').strip().upper().split()
    keyword = words[0].strip('.!') if words else ''
    if number is None or not (keyword in STOP_WORDS or keyword in START_WORDS):
        logger.info('an inbound SMS was ignored')
        return None
    replies = Scope.delivering()  # a reply concerns the platform's number, and no tenant
    if keyword in STOP_WORDS:
        db.in_transaction(
            lambda uow: uow.execute(_OPT_OUT, channel='sms', address=number, source=f'{keyword} reply'), scope=replies
        )
        recorded = 'opted_out'
    else:
        db.in_transaction(lambda uow: uow.execute(_OPT_IN_AGAIN, address=number), scope=replies)
        recorded = 'opted_in_again'
    logger.info('inbound SMS recorded', extra={'recorded': recorded})
    return recorded


# --- resending -----------------------------------------------------------------------------------------------

_FOR_RESEND = """
SELECT d.id::text, d.status, d.send_number, d.client_id::text, cl.agency_id::text,
       delivery_consent(d.client_id, d.channel, d.address) AS consent,
       ceil(extract(epoch FROM d.queued_at + make_interval(secs => :interval) - now())) AS wait_s
  FROM deliveries d JOIN clients cl ON cl.id = d.client_id
 WHERE d.id = CAST(:id AS uuid)
   FOR UPDATE OF d
"""

_RESEND = """
UPDATE deliveries SET status = 'queued', send_number = send_number + 1, attempts = 0, last_error = NULL,
       next_attempt_at = now(), queued_at = now(), lease_token = NULL, lease_until = NULL, provider_message_id = NULL,
       link_token_hash = NULL, link_expires_at = NULL, link_used_at = NULL, sent_at = NULL, delivered_at = NULL,
       bounced_at = NULL, failed_at = NULL, complained_at = NULL, updated_at = now()
 WHERE id = CAST(:id AS uuid)
"""

_REDEMPTION_SCOPE = """
SELECT r.client_id::text, cl.agency_id::text FROM redemptions r JOIN clients cl ON cl.id = r.client_id
 WHERE r.id = CAST(:id AS uuid)
"""

_AUDIT = """
INSERT INTO audit_events (actor, action, entity_type, entity_id, details)
VALUES (:actor, :action, :entity_type, CAST(:entity_id AS uuid), CAST(:details AS jsonb))
"""


def audit(uow: UnitOfWork, actor: str, action: str, entity_type: str, entity_id: str, details: dict[str, Any]) -> None:
    uow.execute(
        _AUDIT, actor=actor, action=action, entity_type=entity_type, entity_id=entity_id, details=json.dumps(details)
    )


def resend(subject: str, redemption_id: str) -> None:
    """Start the next send of a redemption's delivery (its client's admins): a new link, the old one dead. Refused
    with 409 while a send is in progress, past MAX_RESENDS or for a recipient who may not be messaged, and 429 within
    RESEND_INTERVAL_S of the last send."""
    if not auth.is_uuid(redemption_id):
        raise errors.NotFound('No such redemption.')

    def work(uow: UnitOfWork) -> None:
        caller = auth.load_caller(uow, subject)
        row = uow.fetch_one(_FOR_RESEND, id=redemption_id, interval=RESEND_INTERVAL_S)
        if row is None:
            scope = uow.fetch_one(_REDEMPTION_SCOPE, id=redemption_id)
            if scope is None or not caller.sees_client(scope['client_id'], scope['agency_id']):
                raise errors.NotFound('No such redemption.')
            raise errors.Conflict('This redemption asked for no delivery.', code='no_delivery')
        if not caller.sees_client(row['client_id'], row['agency_id']):
            raise errors.NotFound('No such redemption.')
        if not caller.administers_client(row['client_id'], row['agency_id']):
            raise errors.Forbidden("Only the client's admins may resend its deliveries.")
        if row['status'] == 'queued':
            raise errors.Conflict('The delivery is being sent; wait for its outcome.', code='delivery_in_progress')
        if row['send_number'] - 1 >= MAX_RESENDS:
            raise errors.Conflict(f'This delivery was resent {MAX_RESENDS} times already.', code='resend_limit')
        if row['consent'] != 'granted':
            raise errors.Conflict(
                f'Not sent: {recipients.CONSENT_REFUSALS[row["consent"]]}.', code='recipient_not_consenting'
            )
        wait = int(row['wait_s'] or 0)
        if wait > 0:
            raise errors.RateLimited(
                f'The last send was less than {RESEND_INTERVAL_S} s ago.', headers={'Retry-After': str(max(wait, 1))}
            )
        uow.execute(_RESEND, id=redemption_id)
        audit(uow, subject, 'delivery.resend', 'redemption', redemption_id, {'send_number': row['send_number'] + 1})

    db.in_transaction(work)
    logger.info('delivery resend', extra={'delivery_id': redemption_id})
    dispatch([redemption_id])
