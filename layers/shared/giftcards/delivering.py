"""Sending one delivery: the deliver function's work, for each message of the delivery queue.

`deliver` takes the delivery's lease (a conditional update: a second message for the same delivery, or a second
sweeper, finds it taken or no longer queued and does nothing), checks consent (`delivery_consent`: an SMS needs a
recorded opt-in, and nobody who replied STOP or complained gets anything), writes the link's hash or records the
card's reveal, and commits; it sends with no transaction open (`senders`), then records the outcome. A transient
failure is retried with exponential backoff (`backoff_s`, up to MAX_ATTEMPTS), handed to the queue again due after
it; a permanent one, or the last attempt, fails the delivery with its error. Only a crash between the provider's
acceptance and the commit of `sent` sends one attempt twice (neither SES nor SNS takes an idempotency token): the
retry carries the same link, derived from the delivery id and send number. `deliver` sees what the delivery's scope
shows (`Scope.delivering`, migration 0025), whoever asked.

Only the deliver function sends, and, where there is no queue (only when ENVIRONMENT is local), the process that
committed the deliveries (`deliveries.dispatch`): so the message templates, the link tokens and the providers'
clients are this module's alone, and the functions that only write or read deliveries do not load them.

Nothing here logs an address, a link token or a card: deliveries are known by their id in logs.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from giftcards import auth, card_secrets, db, delivery_links, delivery_queue, messages, recipients, senders
from giftcards.config import get_settings
from giftcards.db import Scope, UnitOfWork
from giftcards.observability import logger, metrics

Outcome = Literal['sent', 'retrying', 'failed', 'not_due']

MAX_ATTEMPTS = 6  # of one send: then it fails
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 3600
SEND_LEASE_S = 120  # longer than a send can take (the clients' timeouts and retries)


def backoff_s(attempt: int) -> int:
    """How long after failed attempt number `attempt` (1, 2, ...) the next one is due: 30 s, doubling, at most 1 h."""
    return min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_CAP_S)


def handle_queue_message(body: str) -> Outcome | None:
    """One queue message (`{"delivery_id": ...}`): deliver it. A message that names no delivery is dropped."""
    try:
        delivery_id = json.loads(body)['delivery_id']
    except (ValueError, KeyError, TypeError):
        logger.warning('a delivery queue message was not understood')
        return None
    if not auth.is_uuid(delivery_id):
        logger.warning('a delivery queue message named no delivery')
        return None
    return deliver(delivery_id)


_CLAIM = """
WITH claimed AS (
    UPDATE deliveries
       SET lease_token = CAST(:token AS uuid), lease_until = now() + make_interval(secs => :lease),
           attempts = attempts + 1, updated_at = now()
     WHERE id = CAST(:id AS uuid) AND status = 'queued' AND next_attempt_at <= now()
       AND (lease_until IS NULL OR lease_until < now())
    RETURNING id, client_id, channel, address, content, send_number, attempts, link_expires_at
)
SELECT c.id::text, c.channel, c.address, c.content, c.send_number, c.attempts, c.link_expires_at,
       delivery_consent(c.client_id, c.channel, c.address) AS consent,
       r.card_id::text, r.denomination_cents, b.name AS brand, m.instructions
  FROM claimed c JOIN redemptions r ON r.id = c.id JOIN brands b ON b.id = r.brand_id
  LEFT JOIN brand_messages m ON m.brand_id = r.brand_id
"""

_LINK = """
UPDATE deliveries SET link_token_hash = :h,
       link_expires_at = coalesce(link_expires_at, now() + make_interval(secs => :ttl))
 WHERE id = CAST(:id AS uuid) AND lease_token = CAST(:token AS uuid)
RETURNING link_expires_at
"""

_REVEAL = """
INSERT INTO card_reveals (redemption_id, card_id, channel, subject)
VALUES (CAST(:id AS uuid), CAST(:card AS uuid), 'delivery', 'delivery')
"""

_SENT = """
UPDATE deliveries SET status = 'sent', sent_at = now(), provider_message_id = :message_id, last_error = NULL,
       lease_token = NULL, lease_until = NULL, updated_at = now()
 WHERE id = CAST(:id AS uuid) AND lease_token = CAST(:token AS uuid)
"""

_RETRY = """
UPDATE deliveries SET last_error = left(:error, 500), next_attempt_at = now() + make_interval(secs => :after),
       lease_token = NULL, lease_until = NULL, updated_at = now()
 WHERE id = CAST(:id AS uuid) AND lease_token = CAST(:token AS uuid)
"""

_FAIL = """
UPDATE deliveries SET status = 'failed', failed_at = now(), last_error = left(:error, 500), lease_token = NULL,
       lease_until = NULL, updated_at = now()
 WHERE id = CAST(:id AS uuid) AND status = 'queued'
   AND (lease_token = CAST(:token AS uuid) OR CAST(:token AS uuid) IS NULL)
"""


class _Claimed(NamedTuple):
    token: str
    outgoing: senders.Outgoing
    attempts: int


def deliver(delivery_id: str) -> Outcome:
    """Send one delivery if it is queued, due and nobody else is sending it (`not_due` otherwise), and record what
    came of it: `sent`, `retrying` (a transient failure; due again after its backoff) or `failed`. It sees what the
    delivery's scope shows (its client's rows), whoever asked."""
    with db.acting_as(Scope.delivering(delivery_id)):
        return _deliver(delivery_id)


def _deliver(delivery_id: str) -> Outcome:
    token = str(uuid.uuid4())
    try:
        claimed = db.in_transaction(lambda uow: _claim(uow, delivery_id, token))
    except card_secrets.CardIntegrityError:
        _record(_FAIL, delivery_id, None, error='the card failed its integrity check')
        return 'failed'
    if isinstance(claimed, str):
        return 'failed' if claimed != 'not_due' else 'not_due'
    attempt = claimed.attempts
    try:
        message_id = senders.send(claimed.outgoing)
    except senders.SendFailed as failure:
        return _failed(delivery_id, token, attempt, failure)
    _record(_SENT, delivery_id, token, message_id=message_id)
    metrics.add_metric(name='DeliveriesSent', unit=MetricUnit.Count, value=1)
    logger.info(
        'delivery sent',
        extra={
            'delivery_id': delivery_id,
            'channel': claimed.outgoing.channel,
            'send_number': claimed.outgoing.send_number,
            'attempt': attempt,
        },
    )
    return 'sent'


def _claim(uow: UnitOfWork, delivery_id: str, token: str) -> _Claimed | str:
    """The lease of a due delivery, and what its message needs; or why not ('not_due', or the refusal recorded)."""
    row = uow.fetch_one(_CLAIM, id=delivery_id, token=token, lease=SEND_LEASE_S)
    if row is None:
        return 'not_due'
    if row['consent'] != 'granted':
        reason = recipients.CONSENT_REFUSALS[row['consent']]
        uow.execute(_FAIL, id=delivery_id, token=token, error=reason)
        logger.info('delivery refused', extra={'delivery_id': delivery_id, 'reason': row['consent']})
        return reason
    card = messages.Card(row['brand'], int(row['denomination_cents']), row['instructions'])
    if row['content'] == 'card':
        secrets = card_secrets.reveal_card(uow, row['card_id'])
        uow.execute(_REVEAL, id=delivery_id, card=row['card_id'])
        message = messages.compose(card, link=None, link_expires_at=None, secrets=secrets)
    else:
        link_token = delivery_links.token_for(delivery_id, int(row['send_number']))
        expires = uow.value(
            _LINK,
            id=delivery_id,
            token=token,
            h=delivery_links.token_hash(link_token),
            ttl=get_settings().delivery_link_ttl_s,
        )
        message = messages.compose(card, link=delivery_links.url_for(link_token), link_expires_at=expires, secrets=None)
    outgoing = senders.Outgoing(delivery_id, int(row['send_number']), row['channel'], row['address'], message)
    return _Claimed(token, outgoing, int(row['attempts']))


def _failed(delivery_id: str, token: str, attempt: int, failure: senders.SendFailed) -> Outcome:
    extra = {'delivery_id': delivery_id, 'attempt': attempt, 'error': failure.reason, 'permanent': failure.permanent}
    if failure.permanent or attempt >= MAX_ATTEMPTS:
        _record(_FAIL, delivery_id, token, error=failure.reason)
        metrics.add_metric(name='DeliveriesFailed', unit=MetricUnit.Count, value=1)
        logger.warning('delivery failed', extra=extra)
        return 'failed'
    after = backoff_s(attempt)
    _record(_RETRY, delivery_id, token, error=failure.reason, after=after)
    logger.warning('delivery attempt failed; retrying', extra={**extra, 'retry_in_s': after})
    queue = get_settings().delivery_queue_url
    if queue:
        try:
            delivery_queue.hand_over(queue, [delivery_id], delay_s=after)
        except Exception as exc:
            logger.error(
                'deliveries were not dispatched; the monitor sweeps them', extra=delivery_queue.failure(exc, 1)
            )
    return 'retrying'


def _record(sql: str, delivery_id: str, token: str | None, **params: Any) -> None:
    db.in_transaction(lambda uow: uow.execute(sql, id=delivery_id, token=token, **params))
