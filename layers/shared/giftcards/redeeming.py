"""The public redemption: a code typed by anyone, from a source network, for its card (`POST /redeem` and the
redeem page).

Rate limit by source network, find the code by its hash, provision through `provisioning.provision_gift_card`
with the code's campaign, brand and denomination, record the attempt and the reveal. Unknown, voided and
malformed codes take the same path (a hash and a lookup) and end in the same `invalid_code` error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from giftcards import codes, db, errors, provisioning, ratelimit
from giftcards.db import UnitOfWork
from giftcards.observability import logger, metrics


def now() -> datetime:
    return datetime.now(UTC)


class Redeemed(NamedTuple):
    """A code's card, provisioned now or shown again (`replayed`)."""

    brand_name: str
    code_last4: str
    provisioned: provisioning.ProvisionResult

    @property
    def replayed(self) -> bool:
        return self.provisioned.replayed


_FOUND = (
    'SELECT rc.id::text, rc.campaign_id::text, rc.brand_id::text, rc.denomination_cents, rc.status, rc.last4,'
    ' b.name AS brand_name FROM redemption_codes rc JOIN brands b ON b.id = rc.brand_id WHERE rc.code_hash = :h'
)


def _outcome(error: errors.DomainError) -> ratelimit.Outcome:
    if isinstance(error, codes.InvalidCode):
        return 'invalid_code'
    if isinstance(error, errors.CampaignNotActive):
        return 'campaign_not_active'
    if isinstance(error, errors.InsufficientCredit):
        return 'insufficient_credit'
    return 'unavailable' if error.status >= 500 else 'rejected'


def _record_after(origin: ratelimit.Source, outcome: ratelimit.Outcome, at: datetime, code_id: str | None) -> None:
    """Record the outcome of a recognised code. The customer's answer does not depend on it: a card that was
    bought is shown even when the database cannot take the record."""
    try:
        ratelimit.record_now(origin, outcome, at, None if outcome == 'invalid_code' else code_id)
    except Exception:
        logger.exception('could not record a redemption attempt', extra={'outcome': outcome, 'code_id': code_id})


def redeem(
    typed: str,
    origin: ratelimit.Source,
    *,
    limits: ratelimit.Limits | None = None,
    clock: Callable[[], datetime] = now,
) -> Redeemed:
    """The public redemption: a code as typed by anyone, from `origin`, for its card.

    Raises `errors.RateLimited` (429, Retry-After) past the failure limit, `codes.InvalidCode` (404) for unknown,
    voided and malformed codes alike, and what provisioning raises (409 campaign_not_active, 503, ...)."""
    limits = limits or ratelimit.Limits.configured()
    canonical, digest = codes.lookup_hash(typed)
    # The database shows this redemption the typed code's client only (and the attempts, to count them).
    with db.acting_as(db.Scope.redeeming(digest)):
        return _redeem(canonical, digest, origin, limits, clock())


def _redeem(
    canonical: str | None, digest: bytes, origin: ratelimit.Source, limits: ratelimit.Limits, at: datetime
) -> Redeemed:

    def admit(uow: UnitOfWork) -> dict[str, Any] | errors.DomainError:
        # The refusals are returned, not raised, so that their attempt rows commit.
        ratelimit.lock(uow, origin)
        wait = ratelimit.retry_after(uow, origin, at, limits)
        if wait is not None:
            ratelimit.record(uow, origin, 'rate_limited', at)
            return errors.RateLimited(
                'Too many failed attempts from your network; try again later.', headers={'Retry-After': str(wait)}
            )
        row = uow.fetch_one(_FOUND, h=digest)
        if row is None or canonical is None or row['status'] == 'void':
            ratelimit.record(uow, origin, 'invalid_code', at)
            return codes.InvalidCode()
        return row

    found = db.in_transaction(admit)
    if isinstance(found, errors.DomainError):
        metrics.add_metric(name=f'Redeem_{found.code}', unit=MetricUnit.Count, value=1)
        raise found
    assert canonical is not None
    issued = codes.IssuedCode(
        found['id'], found['campaign_id'], found['brand_id'], found['denomination_cents'], found['status'], canonical
    )
    request = provisioning.ProvisionRequest(
        campaign_id=issued.campaign_id,
        brand_id=issued.brand_id,
        denomination_cents=issued.denomination_cents,
        redemption_code=canonical,
        source_ip=origin.ip,
        user_agent=origin.user_agent,
        channel='redeem_page',
    )
    try:
        result = provisioning.provision_gift_card(request, subject=None, issued_code=issued)
    except errors.DomainError as error:
        _record_after(origin, _outcome(error), at, issued.id)
        raise
    except Exception:
        _record_after(origin, 'error', at, issued.id)
        raise
    _record_after(origin, 'replayed' if result.replayed else 'redeemed', at, issued.id)
    return Redeemed(found['brand_name'], found['last4'], result)
