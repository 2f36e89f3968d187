"""Turning a redemption code into a gift card: the one use case behind `POST /provision-gift-card` and the public
redeem page.

- The redemption code is the idempotency key: its keyed hash is unique among the redemptions of the campaign's
  client (migration 0020), so the same code again answers the same redemption and card (`replayed`), and never
  charges twice; another client's use of the same code is another redemption, of which this one learns nothing.
  Concurrent first requests with one code meet at that unique index; the loser rolls back and replays the winner's
  answer.
- CSV path, two round trips. A read (`provision_context`, in the caller's scope) answers the campaign, the brand,
  the redemption the code already has and the caller's memberships, and the caller is authorized on them; then one
  call (`provision_card`, migrations 0018, 0022) claims the cheapest pool's card (SKIP LOCKED), writes the redemption
  `fulfilled` and its reveal and charges the paying account (ledger), committed by the server when it ends.
- Warm path, one round trip (migration 0028): a caller's next provision for the same campaign, brand and
  denomination, with a code of its own and no recipient, skips the read and names to the call what the read
  established (the campaign's client, the digest of the memberships the caller was authorized on); the call refuses
  if any of it changed, in the transaction that would charge, and the read then decides as above. A code the call
  finds used is replayed by way of the read.
- Vendor path (no card in stock): the same call writes the redemption `pending` with its vendor key instead of
  claiming a card; the vendors are then called with no transaction open (`giftcards.recovery`, imported when a
  provision takes that path: most find a card in stock).
- A charge that leaves the paying account unable to pay for the campaign's cheapest card pauses the campaign in
  the same transaction, at its commit (migrations 0009, 0016: `pause_if_depleted`, the rule the monitor applies too).
- A failed (refunded) redemption's code may be tried again: the old row gives up the code to a new redemption
  with a new charge and a new vendor key, in the transaction that charges.
- A recipient (`deliveryMethod`, `deliveryAddress`) is checked and normalised first (`recipients.recipient`), and one
  that may not be messaged (an SMS without opt-in, an opted-out address) is refused before the charge. Fulfilling
  the redemption writes its delivery in the same transaction (a trigger, migration 0023); after the commit it is
  handed to `deliveries.dispatch`.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from datetime import datetime
from typing import Any, Literal, NamedTuple

from giftcards import (
    auth,
    card_claims,
    card_secrets,
    codes,
    db,
    deliveries,
    errors,
    ids,
    ledger,
    limits,
    recipients,
)
from giftcards.db import UnitOfWork
from giftcards.observability import logger, mask
from giftcards.vendors import idempotency_key_for, redemption_lease_s, vendor_timeout_s

CODE_PATTERN = r'^[A-Za-z0-9-]{4,64}$'
_CODE = re.compile(CODE_PATTERN)
_LIMITS = {
    'recipient_id': limits.RECIPIENT_ID,
    'delivery_method': limits.DELIVERY_METHOD,
    'delivery_address': limits.DELIVERY_ADDRESS,
}

Channel = Literal['api', 'redeem_page', 'admin']


class _CodeTaken(errors.Conflict):
    """Another redemption committed this code first (unique index): replay it."""


db.register_constraint('redemptions_code_hash_key', _CodeTaken)


class _StaleContext(errors.Conflict):
    """provision_card refused what a warm call knew (migration 0028): a membership, the campaign's client or the
    brand's denominations changed since the read it was authorized on. Nothing was claimed or charged: read again."""

    code = 'stale_context'


class ProvisionRequest(NamedTuple):
    campaign_id: str
    brand_id: str
    denomination_cents: int
    redemption_code: str
    recipient_id: str | None = None
    delivery_method: str | None = None
    delivery_address: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    channel: Channel = 'api'


class ProvisionedRedemption(NamedTuple):
    """A redemption as its answers show it (the columns of _SHOWN)."""

    id: str
    status: Literal['fulfilled']  # the only kind of redemption an answer shows
    campaign_id: str
    brand_id: str
    denomination_cents: int
    amount_charged_cents: int
    source: Literal['csv', 'api']
    card_id: str
    code_last4: str
    campaign_paused: bool  # its charge left too little for the campaign's cheapest card: the campaign was paused
    recipient_id: str | None
    delivery_method: str | None
    created_at: datetime
    fulfilled_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProvisionedRedemption:
        return cls(**{name: row[name] for name in cls._fields})


class ProvisionResult(NamedTuple):
    redemption: ProvisionedRedemption
    card: card_secrets.RevealedCard
    credit_remaining_cents: int  # the paying account's balance right after this redemption's charge
    replayed: bool

    @property
    def campaign_paused(self) -> bool:
        return self.redemption.campaign_paused


class _Held(NamedTuple):
    """What the request that wrote a pending redemption holds of it: its lease, and what to order (so the waterfall
    starts without reading it back)."""

    token: str
    vendor_key: str
    brand_id: str
    brand_name: str


class _Pending(NamedTuple):
    """A charged redemption waiting for a vendor card; `held` when this request wrote it and holds its lease."""

    redemption_id: str
    held: _Held | None = None


# The redemption as answers show it, and the paying account's balance right after its charge (creditRemaining),
# so that every replay of a code answers exactly what the first request answered.
_SHOWN = """r.id::text, r.status, r.campaign_id::text, r.brand_id::text, r.denomination_cents, r.amount_charged_cents,
       r.source, r.card_id::text, r.code_last4, r.campaign_paused, r.recipient_id, r.delivery_method, r.created_at,
       r.fulfilled_at"""
_REDEMPTION = f"""
SELECT {_SHOWN}, e.balance_after_cents AS credit_remaining_cents
  FROM redemptions r JOIN credit_entries e ON e.transfer_id = r.charge_transfer_id AND e.amount_cents < 0
"""

# Everything the decision needs, in one read (migration 0022), in the request's scope: the campaign and its client,
# the brand, the redemption this code already has within that client, if any; the caller's memberships, to
# authorize it, and their digest, which gc_enter keeps when it enters the scope (migration 0028: the warm path).
_CONTEXT = """
SELECT ctx.*, current_setting('giftcards.memberships', true) AS memberships_digest
  FROM provision_context(CAST(:scope AS text), CAST(:campaign AS uuid), CAST(:brand AS uuid),
                         CAST(:denomination AS bigint), CAST(:hash AS bytea)) ctx
"""

# The same read for a provision that names a recipient: also whether the recipient may be messaged
# (`delivery_consent`, migration 0023), read after provision_context entered the scope, in the same statement.
_CONTEXT_AND_CONSENT = f"""
SELECT ctx.*, delivery_consent(CAST(ctx.client_id AS uuid), CAST(:channel AS text), CAST(:address AS text)) AS consent
  FROM ({_CONTEXT}) ctx
"""

# The card handed out, the redemption and its charge, in one call (migration 0018).
_PROVISION = """
SELECT * FROM provision_card(
    CAST(:scope AS text), CAST(:id AS uuid), CAST(:charge AS uuid), CAST(:hash AS bytea), CAST(:last4 AS text),
    CAST(:campaign AS uuid), CAST(:brand AS uuid), CAST(:denomination AS bigint), CAST(:spend AS text),
    CAST(:issued AS uuid), CAST(:retry_of AS uuid), CAST(:recipient_id AS text), CAST(:delivery_method AS text),
    CAST(:delivery_address AS text), CAST(:ip AS inet), CAST(:user_agent AS text), CAST(:channel AS text),
    CAST(:subject AS text), CAST(:initiator AS text), CAST(:start AS uuid), CAST(:vendor_key AS text),
    CAST(:token AS uuid), CAST(:lease AS double precision), CAST(:known_client AS uuid),
    CAST(:known_memberships AS text))
"""

_REVEAL = """
INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
VALUES (CAST(:redemption AS uuid), CAST(:card AS uuid), :channel, :subject, CAST(:ip AS inet), :user_agent)
"""


class _WarmKey(NamedTuple):
    """A caller provisioning for a campaign, a brand and a denomination (their ids as the database writes them)."""

    subject: str
    campaign_id: str
    brand_id: str
    denomination_cents: int


class _Known(NamedTuple):
    """What a read established for a _WarmKey, which the warm path names to provision_card rather than reading it
    again (migration 0028): the campaign's client, the brand's name, and the digest of the memberships the caller
    was authorized on. The database checks the client and the digest in the transaction that charges: nothing here is
    trusted on its own, and a stale entry costs one refused call and a read."""

    client_id: str
    brand_name: str
    memberships: str


# What this process learnt, by _WarmKey. Each operation on it is one dict operation (threads share it in tests and
# in a threaded server); full, it starts again empty.
_KNOWN: dict[_WarmKey, _Known] = {}
_KNOWN_LIMIT = 4096


def _warm_key(req: ProvisionRequest, subject: str | None, issued: codes.IssuedCode | None) -> _WarmKey | None:
    """The key of the warm path, for a call that may take it: a signed-in caller with a code of its own (an issued
    code is checked against what it was issued for) and no recipient (whose consent the read checks)."""
    if subject is None or issued is not None or req.delivery_method is not None:
        return None
    if not (auth.is_uuid(req.campaign_id) and auth.is_uuid(req.brand_id)):
        return None
    return _WarmKey(subject, str(uuid.UUID(req.campaign_id)), str(uuid.UUID(req.brand_id)), req.denomination_cents)


def _remember(key: _WarmKey, known: _Known) -> None:
    if len(_KNOWN) >= _KNOWN_LIMIT:
        _KNOWN.clear()
    _KNOWN[key] = known


def provision_gift_card(
    req: ProvisionRequest, *, subject: str | None, issued_code: codes.IssuedCode | None = None
) -> ProvisionResult:
    """Charge for and hand out one gift card for `req.redemption_code`, or replay what that code already got.

    `subject`: the authenticated caller (integration, client admin or platform admin of the campaign's client).
    `issued_code`: a code this system issued, already found by its hash (`giftcards.redeeming` passes it with no
    subject; possessing the code is the authorization).
    """
    req = _validated(req)
    if subject is None and issued_code is None:
        raise errors.Unauthorized()
    if subject is not None:
        with db.acting_as(db.Scope.of_subject(subject)):
            if issued_code is None:
                issued_code = _issued_code(req.redemption_code)
            return _provision(req, subject, issued_code)
    assert issued_code is not None
    # Holding the code is the authorization: the database shows this transaction that code's client only.
    with db.acting_as(db.Scope.redeeming(codes.code_hash(issued_code.code))):
        return _provision(req, subject, issued_code)


def _provision(req: ProvisionRequest, subject: str | None, issued_code: codes.IssuedCode | None) -> ProvisionResult:
    code = issued_code.code if issued_code is not None else req.redemption_code
    code_hash = codes.code_hash(code)
    warm = _warm_key(req, subject, issued_code)
    known = _KNOWN.get(warm) if warm is not None else None
    for _ in range(3):
        try:
            step = _charge_or_replay(req, subject, issued_code, code, code_hash, warm, known)
        except _StaleContext:
            assert warm is not None
            _KNOWN.pop(warm, None)
            known = None
            continue
        except _CodeTaken:
            known = None  # the code has a redemption: the read finds it, to replay it
            continue
        except errors.OutcomeUnknown as exc:
            # The code is the idempotency key: sending it again replays what committed, or provisions once.
            raise errors.OutcomeUnknown(
                'The connection to the database broke while this redemption was being committed. Send the same '
                'code again: it is charged and given a card at most once.',
                headers={'Retry-After': '1'},
            ) from exc
        except (errors.InsufficientCredit, errors.CampaignNotActive):
            # A concurrent request with the same code may have spent the last credit or paused the campaign:
            # then its answer is this request's answer.
            if db.read((_FIND, {'campaign': req.campaign_id, 'hash': code_hash}))[0] == []:
                raise
            known = None
            continue
        result = step if isinstance(step, ProvisionResult) else _finish_pending(step, req, subject)
        _log(result, code)
        if result.redemption.delivery_method is not None and not result.replayed:
            # Its delivery committed with it (migration 0023): hand it to the queue now; the monitor sweeps it if not.
            deliveries.dispatch([result.redemption.id])
        return result
    raise errors.ServiceUnavailable('The system is busy; try again.', code='busy')


def _validated(req: ProvisionRequest) -> ProvisionRequest:
    """The request with its recipient normalised (`recipients.recipient`), or ValidationFailed (422) before anything
    is read or charged."""
    _validate(req)
    recipient = recipients.recipient(req.delivery_method, req.delivery_address)
    return req._replace(
        delivery_method=recipient.channel if recipient is not None else None,
        delivery_address=recipient.address if recipient is not None else None,
    )


def _validate(req: ProvisionRequest) -> None:
    problems = []
    if not _CODE.fullmatch(req.redemption_code):
        problems.append({'field': 'redemptionCode', 'message': 'must be 4-64 letters, digits or dashes'})
    if isinstance(req.denomination_cents, bool) or req.denomination_cents <= 0:
        problems.append({'field': 'denomination', 'message': 'must be greater than 0'})
    for name, limit in _LIMITS.items():
        value = getattr(req, name)
        if value is not None and len(value) > limit.max_length:
            problems.append({'field': name, 'message': f'must be at most {limit.max_length} characters'})
    if problems:
        raise errors.ValidationFailed(f'{problems[0]["field"]}: {problems[0]["message"]}', details=problems)


def _issued_code(raw: str) -> codes.IssuedCode | None:
    """The issued code an authenticated caller passed, if it is one of ours (only codes of our shape are looked up)."""
    if codes.normalize(raw) is None:
        return None
    return codes.find_code(_scope(), raw)


# Whether the code has a redemption within the campaign's client (after a refusal: a concurrent request with the
# same code may have won).
_FIND = (
    'SELECT r.id FROM campaigns c JOIN redemptions r ON r.client_id = c.client_id AND r.redemption_code_hash = :hash'
    ' WHERE c.id = CAST(:campaign AS uuid)'
)


def _find_by_id(uow: UnitOfWork, redemption_id: str) -> dict[str, Any]:
    row = uow.fetch_one(f'{_REDEMPTION} WHERE r.id = CAST(:id AS uuid)', id=redemption_id)
    assert row is not None
    return row


def _context(
    req: ProvisionRequest, subject: str | None, issued: codes.IssuedCode | None, code_hash: bytes
) -> dict[str, Any]:
    """The campaign, brand and existing redemption (_CONTEXT), once the caller may provision for the campaign."""
    if not auth.is_uuid(req.campaign_id):
        raise errors.NotFound('No such campaign.')
    if not auth.is_uuid(req.brand_id):
        raise errors.NotFound('No such brand.')
    brand_id = str(uuid.UUID(req.brand_id))
    params = {
        'scope': _scope().text,
        'campaign': req.campaign_id,
        'brand': brand_id,
        'denomination': req.denomination_cents,
        'hash': code_hash,
    }
    read = _CONTEXT
    if req.delivery_method is not None:
        read = _CONTEXT_AND_CONSENT
        params |= {'channel': req.delivery_method, 'address': req.delivery_address}
    (found,) = db.read((read, params), scoped=False)  # it enters the scope itself
    ctx = found[0] if found else None
    if subject is not None:
        caller = auth.caller_from(subject, ctx['memberships'] if ctx is not None else [])
        if ctx is None or not (
            caller.sees_client(ctx['client_id'], ctx['agency_id']) or caller.may_provision(ctx['client_id'])
        ):
            raise errors.NotFound('No such campaign.')
        if not caller.may_provision(ctx['client_id']):
            raise errors.Forbidden("Only the client's integration or admins may provision its gift cards.")
    if ctx is None:
        raise errors.NotFound('No such campaign.')
    ctx['requested_brand_id'] = brand_id
    if issued is not None:
        _check_issued(issued, ctx['campaign_id'], brand_id, req.denomination_cents)
    existing = (ctx['existing_campaign_id'], ctx['existing_brand_id'], ctx['existing_denomination_cents'])
    if ctx['existing_id'] is not None and existing != (ctx['campaign_id'], brand_id, req.denomination_cents):
        raise errors.Conflict(
            'This redemption code was already used for a different campaign, brand or denomination.',
            code='redemption_code_conflict',
        )
    return ctx


def _charge_or_replay(
    req: ProvisionRequest,
    subject: str | None,
    issued: codes.IssuedCode | None,
    code: str,
    code_hash: bytes,
    warm: _WarmKey | None,
    known: _Known | None,
) -> ProvisionResult | _Pending:
    """One read to decide; then the replay of what the code already got, or one call that charges for a card. On the
    warm path (`known`: what an earlier read established for this caller, campaign, brand and denomination) the
    call alone, which refuses (_StaleContext, _CodeTaken) whatever the read would have decided otherwise."""
    if known is not None:
        assert warm is not None
        return _charge(
            req,
            subject,
            None,
            code,
            code_hash,
            campaign_id=warm.campaign_id,
            brand_id=warm.brand_id,
            brand_name=known.brand_name,
            retry_of=None,
            known=known,
        )
    ctx = _context(req, subject, issued, code_hash)
    if ctx['existing_status'] == 'fulfilled':
        return db.in_transaction(
            lambda uow: _reveal(uow, _find_by_id(uow, ctx['existing_id']), req, subject, replayed=True)
        )
    if ctx['existing_status'] == 'pending':
        return _Pending(ctx['existing_id'])
    if ctx['brand_id'] is None:
        raise errors.NotFound('No such brand.')
    if not ctx['offered']:
        raise errors.ValidationFailed(
            'denomination: the brand does not offer this denomination',
            details=[{'field': 'denomination', 'message': 'not offered by this brand'}],
        )
    if ctx['campaign_status'] != 'active':
        raise errors.CampaignNotActive()
    if ctx.get('consent') not in (None, 'granted'):
        raise errors.Conflict(
            f'deliveryAddress: {recipients.CONSENT_REFUSALS[ctx["consent"]]}; nothing was charged.',
            code='recipient_not_consenting',
        )
    if warm is not None and ctx['memberships_digest']:
        _remember(warm, _Known(ctx['client_id'], ctx['brand_name'], ctx['memberships_digest']))
    return _charge(
        req,
        subject,
        issued,
        code,
        code_hash,
        campaign_id=ctx['campaign_id'],
        brand_id=ctx['requested_brand_id'],
        brand_name=ctx['brand_name'],
        retry_of=ctx['existing_id'] if ctx['existing_status'] == 'failed' else None,
        known=None,
    )


def _charge(
    req: ProvisionRequest,
    subject: str | None,
    issued: codes.IssuedCode | None,
    code: str,
    code_hash: bytes,
    *,
    campaign_id: str,
    brand_id: str,
    brand_name: str,
    retry_of: str | None,
    known: _Known | None,
) -> ProvisionResult | _Pending:
    """The one call that claims a card (or writes a pending vendor order), writes the redemption and charges:
    `retry_of`, a failed redemption of this code that gives it up; `known`, what the warm path names to the call."""
    redemption_id, token = ids.time_ordered(), str(uuid.uuid4())
    vendor_key = idempotency_key_for(redemption_id)
    (row,) = db.call(
        _PROVISION,
        scope=_scope().text,
        id=redemption_id,
        charge=ids.time_ordered(),
        hash=code_hash,
        last4=code[-4:],
        campaign=campaign_id,
        brand=brand_id,
        denomination=req.denomination_cents,
        spend=ledger.spend_account_name(),
        issued=issued.id if issued is not None else None,
        retry_of=retry_of,
        recipient_id=req.recipient_id,
        delivery_method=req.delivery_method,
        delivery_address=req.delivery_address,
        ip=_ip(req.source_ip),
        user_agent=_user_agent(req.user_agent),
        channel=req.channel,
        subject=subject,
        initiator=subject or f'redeem:{req.channel}',
        start=card_claims.scan_start(),
        vendor_key=vendor_key,
        token=token,
        lease=redemption_lease_s(),
        known_client=known.client_id if known is not None else None,
        known_memberships=known.memberships if known is not None else None,
    )
    if row['redemption_status'] == 'pending':
        return _Pending(redemption_id, _Held(token, vendor_key, brand_id, brand_name))
    redemption = ProvisionedRedemption(
        id=redemption_id,
        status=row['redemption_status'],
        campaign_id=campaign_id,
        brand_id=brand_id,
        denomination_cents=req.denomination_cents,
        amount_charged_cents=int(row['amount_charged_cents']),
        source=row['source'],
        card_id=row['id'],
        code_last4=code[-4:],
        campaign_paused=bool(row['campaign_paused']),
        recipient_id=req.recipient_id,
        delivery_method=req.delivery_method,
        created_at=row['created_at'],
        fulfilled_at=row['fulfilled_at'],
    )
    try:
        card = card_secrets.revealed(row)
    except card_secrets.CardIntegrityError:
        _alert_unrevealable(redemption_id, row['id'], campaign_id)
        raise
    return ProvisionResult(
        redemption=redemption, card=card, credit_remaining_cents=int(row['credit_remaining_cents']), replayed=False
    )


def _alert_unrevealable(redemption_id: str, card_id: str, campaign_id: str) -> None:
    """The card just handed out failed its integrity check: its stored data was altered after it was sealed. The
    redemption, its card and its charge stand as committed: the database lets nobody turn a fulfilled redemption
    back (migration 0019), since a role that could would refund any card it had handed out. A critical alert names
    both, for an operator to investigate and settle."""
    # Imported here, on the path of an altered card, which no provision that goes well takes.
    from giftcards import alerts

    db.in_transaction(
        lambda uow: alerts.raise_alert(
            uow,
            'card_integrity',
            'critical',
            'card',
            card_id,
            'A card handed out failed its integrity check: its stored data was altered. The redemption is charged; '
            'investigate and settle it with the client.',
            {'redemption_id': redemption_id, 'campaign_id': campaign_id},
        )
    )


def _scope() -> db.Scope:
    scope = db.current_scope()
    assert scope is not None, "provisioning runs in its caller's scope (provision_gift_card)"
    return scope


def _check_issued(issued: codes.IssuedCode, campaign_id: str, brand_id: str, denomination_cents: int) -> None:
    if issued.status == 'void':
        raise codes.InvalidCode()
    if (issued.campaign_id, issued.brand_id, issued.denomination_cents) != (campaign_id, brand_id, denomination_cents):
        raise errors.Conflict(
            'This code was issued for another campaign, brand or denomination.', code='redemption_code_conflict'
        )


def _reveal(
    uow: UnitOfWork, redemption: dict[str, Any], req: ProvisionRequest, subject: str | None, *, replayed: bool
) -> ProvisionResult:
    """The answer for a fulfilled redemption, with the reveal recorded in the same transaction."""
    uow.execute(
        _REVEAL,
        redemption=redemption['id'],
        card=redemption['card_id'],
        channel=req.channel,
        subject=subject,
        ip=_ip(req.source_ip),
        user_agent=_user_agent(req.user_agent),
    )
    return ProvisionResult(
        redemption=ProvisionedRedemption.from_row(redemption),
        card=card_secrets.reveal_card(uow, redemption['card_id']),
        credit_remaining_cents=int(redemption['credit_remaining_cents']),
        replayed=replayed,
    )


def _finish_pending(step: _Pending, req: ProvisionRequest, subject: str | None) -> ProvisionResult:
    """The vendor path's answer: the card, 503 fulfilment_unavailable (refunded) or 503 with Retry-After."""
    # The vendor path (the waterfall, its alerts, the vendor clients) is imported here, where a provision takes it:
    # most find a card in stock and never load it.
    from giftcards import recovery

    held = None
    if step.held is not None:
        token, vendor_key, brand_id, brand_name = step.held
        order = recovery.PendingOrder(
            step.redemption_id, vendor_key, brand_id, brand_name, req.denomination_cents, uncertain_vendor=None
        )
        held = (order, token)
    outcome = recovery.settle(step.redemption_id, held)
    if outcome is recovery.Outcome.FULFILLED:
        return db.in_transaction(
            lambda uow: _reveal(uow, _find_by_id(uow, step.redemption_id), req, subject, replayed=step.held is None)
        )
    if outcome is recovery.Outcome.FAILED:
        raise errors.FulfilmentUnavailable(
            'No gift card could be obtained right now; nothing was charged. Try the same code again later.'
        )
    raise errors.ServiceUnavailable(
        'The gift card order is still being confirmed; send the same code again shortly.',
        code='fulfilment_pending',
        headers={'Retry-After': str(max(2, math.ceil(vendor_timeout_s() / 4)))},
    )


def _ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _user_agent(value: str | None) -> str | None:
    return value[: limits.USER_AGENT.max_length] if value else None


def _log(result: ProvisionResult, code: str) -> None:
    r = result.redemption
    logger.info(
        'gift card provisioned',
        extra={
            'redemption_id': r.id,
            'campaign_id': r.campaign_id,
            'source': r.source,
            'redemption_code': mask(code),
            'replayed': result.replayed,
            'campaign_paused': result.campaign_paused,
        },
    )
