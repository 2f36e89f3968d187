"""The vendor path of a redemption: buying its card from the vendors in priority order, and recovering redemptions
whose vendor outcome was unknown.

A pending redemption is already charged and carries its vendor idempotency key (derived from its id), so every
call for it, by the first request, a replay of its code or the monitor's recovery, asks for the same order.
No database transaction is open during a vendor call. Who may call is decided by a lease on the row
(`lease_token`, `next_attempt_at`): taken with a conditional UPDATE, renewed before each call, released with the
outcome. Failing a redemption (refund) requires the lease; storing a card does not, because any confirmation
under the key is the one card the key bought.

A vendor whose outcome for the key is unknown (`redemptions.vendor` while pending) is asked first on the next
attempt; the waterfall moves past it only once it definitely holds no card for the key.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from giftcards import alerts, card_claims, db, ledger
from giftcards.db import UnitOfWork
from giftcards.money import dollars_text
from giftcards.observability import logger
from giftcards.vendors import (
    IssuedCard,
    Vendor,
    VendorConfigError,
    VendorOrder,
    VendorOutcomeUnknown,
    VendorRefused,
    load_vendors,
    redemption_lease_s,
    vendor_timeout_s,
)

POLL_S = 0.1
# A request answers within API Gateway's 30 s: no vendor call starts that could end later than this.
REQUEST_BUDGET_S = 25.0
INITIATOR = 'provisioning'


class Outcome(Enum):
    FULFILLED = 'fulfilled'
    FAILED = 'failed'
    UNKNOWN = 'unknown'  # still pending, charge held; retry with the same key
    LEASE_LOST = 'lease_lost'  # another worker holds the redemption now


class PendingOrder(NamedTuple):
    """A pending redemption as the waterfall needs it."""

    redemption_id: str
    vendor_key: str
    brand_id: str
    brand_name: str
    denomination_cents: int
    uncertain_vendor: str | None  # the vendor last called; it may hold an order under the key


@dataclass
class RecoveryReport:
    examined: int = 0
    fulfilled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    still_pending: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            'examined': self.examined,
            'fulfilled': len(self.fulfilled),
            'failed': len(self.failed),
            'still_pending': len(self.still_pending),
            'errors': len(self.errors),
        }


_PENDING_COLUMNS = """r.id::text AS redemption_id, r.vendor_key, r.brand_id::text AS brand_id, b.name AS brand_name,
       r.denomination_cents, r.vendor AS uncertain_vendor"""

_ACQUIRE = f"""
UPDATE redemptions r
   SET lease_token = CAST(:token AS uuid), next_attempt_at = now() + make_interval(secs => :lease), updated_at = now()
  FROM brands b
 WHERE r.id = CAST(:id AS uuid) AND r.status = 'pending' AND r.next_attempt_at <= now() AND b.id = r.brand_id
RETURNING {_PENDING_COLUMNS}
"""

_CLAIM_DUE = f"""
WITH due AS (
    SELECT id FROM redemptions
     WHERE status = 'pending' AND created_at <= now() - make_interval(secs => :older_than)
       AND next_attempt_at <= now() AND id <> ALL (CAST(:done AS uuid[]))
     ORDER BY created_at LIMIT 1
       FOR UPDATE SKIP LOCKED
)
UPDATE redemptions r
   SET lease_token = CAST(:token AS uuid), next_attempt_at = now() + make_interval(secs => :lease), updated_at = now()
  FROM due, brands b
 WHERE r.id = due.id AND b.id = r.brand_id
RETURNING {_PENDING_COLUMNS}
"""

_RECORD_CALL = """
UPDATE redemptions SET vendor = :vendor, vendor_attempts = vendor_attempts + 1,
       next_attempt_at = now() + make_interval(secs => :lease), updated_at = now()
 WHERE id = CAST(:id AS uuid) AND status = 'pending' AND lease_token = CAST(:token AS uuid)
RETURNING id
"""

_RELEASE = """
UPDATE redemptions SET last_vendor_error = left(:error, 500), lease_token = NULL, next_attempt_at = now(),
       updated_at = now()
 WHERE id = CAST(:id AS uuid) AND status = 'pending' AND lease_token = CAST(:token AS uuid)
"""


def acquire(redemption_id: str) -> tuple[PendingOrder, str] | None:
    """Take the lease of a pending redemption nobody else holds: (order, lease token), or None."""
    token = str(uuid.uuid4())
    row = db.in_transaction(
        lambda uow: uow.fetch_one(_ACQUIRE, id=redemption_id, token=token, lease=redemption_lease_s())
    )
    return (PendingOrder(**row), token) if row else None


def release(redemption_id: str, token: str, error: str) -> None:
    """Give the lease back with the redemption still pending, so the next replay or recovery may try at once."""
    db.in_transaction(lambda uow: uow.execute(_RELEASE, id=redemption_id, token=token, error=error))


def settle(redemption_id: str, held: tuple[PendingOrder, str] | None = None) -> Outcome:
    """Drive a pending redemption to an outcome for a request waiting on it: with the lease the request holds
    (`held`), by taking the lease when it is free, or by waiting for the worker holding it (up to the vendor
    timeout). Everything within REQUEST_BUDGET_S. UNKNOWN: still pending."""
    started = time.monotonic()
    deadline = started + REQUEST_BUDGET_S
    wait_until = started + min(vendor_timeout_s(), REQUEST_BUDGET_S)
    while True:
        if held is None:
            held = acquire(redemption_id)
        if held is not None:
            outcome = _run_guarded(*held, deadline=deadline)
            if outcome is not Outcome.LEASE_LOST:
                return outcome
            held = None
            continue
        status = db.in_transaction(
            lambda uow: uow.value('SELECT status FROM redemptions WHERE id = CAST(:id AS uuid)', id=redemption_id)
        )
        if status != 'pending':
            return Outcome.FULFILLED if status == 'fulfilled' else Outcome.FAILED
        if time.monotonic() >= wait_until:
            return Outcome.UNKNOWN
        time.sleep(POLL_S)


def _run_guarded(pending: PendingOrder, token: str, *, deadline: float) -> Outcome:
    try:
        return run_waterfall(pending, token, deadline=deadline)
    except Exception:
        # After the charge committed nothing may turn into a 500: the redemption stays pending with its charge
        # held, and a replay or the monitor's recovery finishes it with the same key.
        logger.exception('vendor path interrupted', extra={'redemption_id': pending.redemption_id})
        try:
            release(pending.redemption_id, token, 'interrupted')
        except Exception:  # the database may be what failed: then the lease simply runs out
            logger.warning('could not release the lease', extra={'redemption_id': pending.redemption_id})
        return Outcome.UNKNOWN


def run_waterfall(pending: PendingOrder, token: str, *, deadline: float | None = None) -> Outcome:
    """Ask the vendors for the redemption's card, under its key, until one sells, all refuse, or one leaves the
    outcome unknown. The caller holds the lease `token`. With a `deadline` (monotonic), no call starts that could
    outlast it: the redemption is left pending for a replay or the recovery to go on."""
    try:
        vendors = load_vendors()
    except VendorConfigError as exc:
        logger.error('vendor configuration is invalid', extra={'error': str(exc)})
        release(pending.redemption_id, token, 'vendor configuration is invalid')
        return Outcome.UNKNOWN
    if pending.uncertain_vendor and pending.uncertain_vendor not in {v.name for v in vendors}:
        release(pending.redemption_id, token, f'{pending.uncertain_vendor} is not configured; it may hold the card')
        return Outcome.UNKNOWN
    order = VendorOrder(pending.vendor_key, pending.brand_name, pending.denomination_cents)
    refusals: list[str] = []
    call_s = vendor_timeout_s()
    for vendor in sorted(vendors, key=lambda v: v.name != pending.uncertain_vendor):  # stable: priority order
        if deadline is not None and time.monotonic() + call_s > deadline:
            release(pending.redemption_id, token, f'no time left to ask {vendor.name}')
            return Outcome.UNKNOWN
        if not _record_call(pending.redemption_id, token, vendor.name):
            return Outcome.LEASE_LOST
        try:
            card = _order(vendor, order, earlier_call_uncertain=vendor.name == pending.uncertain_vendor)
        except VendorOutcomeUnknown as exc:
            logger.warning(
                'vendor outcome unknown',
                extra={'redemption_id': pending.redemption_id, 'vendor': vendor.name, 'error': exc.message},
            )
            release(pending.redemption_id, token, f'{vendor.name}: {exc.message}')
            return Outcome.UNKNOWN
        except VendorRefused as exc:
            logger.warning(
                'vendor refused',
                extra={
                    'redemption_id': pending.redemption_id,
                    'vendor': vendor.name,
                    'error': exc.message,
                    'retryable': exc.retryable,
                },
            )
            refusals.append(f'{vendor.name}: {exc.message}')
            continue
        return store_card(pending, vendor.name, card)
    return fail(pending, token, refusals)


def _record_call(redemption_id: str, token: str, vendor: str) -> bool:
    """Renew the lease and name the vendor about to be called, before calling it: if this process dies during the
    call, the next attempt knows which vendor may hold an order under the key."""

    def work(uow: UnitOfWork) -> int:
        return len(uow.fetch(_RECORD_CALL, id=redemption_id, token=token, vendor=vendor, lease=redemption_lease_s()))

    return bool(db.in_transaction(work))


def _claim_due(older_than_s: float, done: list[str], token: str) -> dict[str, Any] | None:
    def work(uow: UnitOfWork) -> dict[str, Any] | None:
        return uow.fetch_one(_CLAIM_DUE, older_than=older_than_s, done=done, token=token, lease=redemption_lease_s())

    return db.in_transaction(work)


def _order(vendor: Vendor, order: VendorOrder, *, earlier_call_uncertain: bool) -> IssuedCard:
    try:
        return vendor.order(order)
    except VendorRefused:
        if not earlier_call_uncertain:
            raise
        # A refusal says nothing about the earlier call under this key: only a lookup shows it sold nothing.
        try:
            found = vendor.lookup(order)
        except VendorRefused as exc:
            raise VendorOutcomeUnknown(f'lookup refused: {exc.message}', vendor=vendor.name) from exc
        if found is None:
            raise
        return found


def store_card(pending: PendingOrder, vendor: str, card: IssuedCard) -> Outcome:
    """Store the card a vendor sold for the redemption and mark it fulfilled (once: a later confirmation of the
    same order finds it fulfilled). Cost basis: the vendor's cost, or the face value when it does not say."""
    cost = card.cost_cents if card.cost_cents is not None else pending.denomination_cents

    def work(uow: UnitOfWork) -> Outcome:
        status = uow.value(
            'SELECT status FROM redemptions WHERE id = CAST(:id AS uuid) FOR UPDATE', id=pending.redemption_id
        )
        if status == 'fulfilled':
            return Outcome.FULFILLED
        if status == 'failed':
            # Only a lease holder fails a redemption and it asks every vendor first, so this means a vendor sold
            # under a key it had refused. Keep the evidence for a person to settle with the vendor.
            alerts.raise_alert(
                uow,
                'vendor_card_after_refund',
                'critical',
                'redemption',
                pending.redemption_id,
                f'{vendor} sold a card for a redemption that was already refunded',
                {'vendor': vendor, 'vendor_reference': card.vendor_reference},
            )
            return Outcome.FAILED
        card_id = card_claims.store_vendor_card(
            uow,
            brand_id=pending.brand_id,
            denomination_cents=pending.denomination_cents,
            vendor=vendor,
            vendor_reference=card.vendor_reference,
            card_code=card.card_code,
            card_number=card.card_number,
            pin=card.pin,
            expires_on=card.expires_on,
            cost_cents=cost,
        )
        uow.execute(
            "UPDATE redemptions SET status = 'fulfilled', source = 'api', card_id = CAST(:card AS uuid),"
            ' cost_basis_cents = :cost, vendor = :vendor, fulfilled_at = now(), updated_at = now(),'
            ' lease_token = NULL, next_attempt_at = NULL WHERE id = CAST(:id AS uuid)',
            id=pending.redemption_id,
            card=card_id,
            cost=cost,
            vendor=vendor,
        )
        return Outcome.FULFILLED

    outcome = db.in_transaction(work)
    logger.info(
        'vendor card stored',
        extra={
            'redemption_id': pending.redemption_id,
            'vendor': vendor,
            'vendor_reference': card.vendor_reference,
            'replayed': card.replayed,
        },
    )
    return outcome


def fail(pending: PendingOrder, token: str, refusals: list[str]) -> Outcome:
    """Every vendor refused: refund the charge, mark the redemption failed and raise a critical alert, together."""
    error = '; '.join(refusals) or 'no vendor is configured'

    def work(uow: UnitOfWork) -> Outcome:
        row = uow.fetch_one(
            'SELECT charge_transfer_id::text, campaign_id::text FROM redemptions WHERE id = CAST(:id AS uuid)'
            " AND status = 'pending' AND lease_token = CAST(:token AS uuid) FOR UPDATE",
            id=pending.redemption_id,
            token=token,
        )
        if row is None:
            return Outcome.LEASE_LOST
        refund = ledger.reverse_transfer(
            uow,
            row['charge_transfer_id'],
            kind='refund',
            initiator=INITIATOR,
            notes=f'redemption {pending.redemption_id}: no card could be obtained',
        )
        uow.execute(
            "UPDATE redemptions SET status = 'failed', refund_transfer_id = CAST(:refund AS uuid), failed_at = now(),"
            ' last_vendor_error = left(:error, 500), lease_token = NULL, next_attempt_at = NULL, updated_at = now()'
            ' WHERE id = CAST(:id AS uuid)',
            id=pending.redemption_id,
            refund=refund.id,
            error=error,
        )
        alerts.raise_alert(
            uow,
            'fulfilment_unavailable',
            'critical',
            'brand',
            pending.brand_id,
            f'No card in stock and every vendor refused {pending.brand_name} '
            f'{dollars_text(pending.denomination_cents)}; the charge was refunded',
            {
                'redemption_id': pending.redemption_id,
                'campaign_id': row['campaign_id'],
                'denomination_cents': pending.denomination_cents,
                'refusals': refusals,
            },
        )
        return Outcome.FAILED

    outcome = db.in_transaction(work)
    if outcome is Outcome.FAILED:
        logger.error(
            'redemption failed and refunded',
            extra={'redemption_id': pending.redemption_id, 'refusals': json.dumps(refusals)},
        )
    return outcome


def recover_pending(older_than_s: float | None = None, *, limit: int = 100) -> RecoveryReport:
    """Retry, with their own keys, redemptions pending longer than `older_than_s` (default: the vendor timeout)
    that nobody holds: fulfil them, or fail and refund them once every vendor definitely refused. Overlapping runs
    split the work (SKIP LOCKED and the lease); each redemption is tried at most once per run."""
    older_than = vendor_timeout_s() if older_than_s is None else older_than_s
    report = RecoveryReport()
    done: list[str] = []
    while len(done) < limit:
        token = str(uuid.uuid4())
        row = _claim_due(float(older_than), done, token)
        if row is None:
            break
        pending = PendingOrder(**row)
        done.append(pending.redemption_id)
        report.examined += 1
        try:
            outcome = run_waterfall(pending, token)
        except Exception:  # one broken redemption must not stop the others; its lease runs out and it is retried
            logger.exception('recovering a pending redemption failed', extra={'redemption_id': pending.redemption_id})
            report.errors.append(pending.redemption_id)
            continue
        {
            Outcome.FULFILLED: report.fulfilled,
            Outcome.FAILED: report.failed,
            Outcome.UNKNOWN: report.still_pending,
            Outcome.LEASE_LOST: report.still_pending,
        }[outcome].append(pending.redemption_id)
    if report.examined:
        logger.info('pending redemptions recovered', extra=report.as_json())
    return report
