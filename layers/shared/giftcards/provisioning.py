"""Turning a redemption code into a gift card: the one use case behind `POST /provision-gift-card` and the public
redeem page.

- The redemption code is the idempotency key: its keyed hash is unique among redemptions, so the same code
  again answers the same redemption and card (`replayed`), and never charges twice. Concurrent first requests
  with one code meet at that unique index; the loser rolls back and replays the winner's answer.
- CSV path, one transaction in two round trips. The first reads the campaign's context and the caller's
  memberships and, when the campaign can take it, claims the cheapest pool's card (SKIP LOCKED) and writes the
  redemption `fulfilled` and its reveal, all in one statement; the caller is authorized when it answers, and a
  refusal rolls it all back. The second charges the paying account (ledger) and commits.
- Vendor path (no card in stock): the same transaction writes the redemption `pending` with its vendor key
  instead and commits; the vendors are then called with no transaction open (`giftcards.recovery`).
- A charge that leaves the paying account unable to pay for the campaign's cheapest card pauses the campaign in
  the same transaction, at its commit (migrations 0009, 0016: `pause_if_depleted`, the rule the monitor applies too).
- A failed (refunded) redemption's code may be tried again: the old row gives up the code to a new redemption
  with a new charge and a new vendor key, in the transaction that charges.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

from giftcards import auth, card_claims, card_secrets, codes, db, errors, ids, ledger, limits, recovery
from giftcards.db import UnitOfWork
from giftcards.observability import logger, mask
from giftcards.recovery import Outcome
from giftcards.vendors import idempotency_key_for, vendor_timeout_s

CODE_PATTERN = r'^[A-Za-z0-9-]{4,64}$'
_CODE = re.compile(CODE_PATTERN)
_LIMITS = {'recipient_id': 200, 'delivery_method': 50, 'delivery_address': 320}

Channel = Literal['api', 'redeem_page', 'admin']


class _CodeTaken(errors.Conflict):
    """Another redemption committed this code first (unique index): replay it."""


db.register_constraint('redemptions_code_hash_key', _CodeTaken)


@dataclass(frozen=True)
class ProvisionRequest:
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


@dataclass(frozen=True)
class ProvisionResult:
    redemption: dict[str, Any]  # the stored redemption (see _REDEMPTION)
    card: card_secrets.RevealedCard
    credit_remaining_cents: int
    campaign_paused: bool
    replayed: bool


@dataclass(frozen=True)
class _Pending:
    """A charged redemption waiting for a vendor card; `held` when this request wrote it and holds its lease."""

    redemption_id: str
    held: tuple[recovery.PendingOrder, str] | None = None


# The redemption as answers show it, and the paying account's balance right after its charge (creditRemaining),
# so that every replay of a code answers exactly what the first request answered.
_SHOWN = """r.id::text, r.status, r.campaign_id::text, r.brand_id::text, r.denomination_cents, r.amount_charged_cents,
       r.source, r.card_id::text, r.code_last4, r.campaign_paused, r.recipient_id, r.delivery_method, r.created_at,
       r.fulfilled_at"""
_REDEMPTION = f"""
SELECT {_SHOWN}, e.balance_after_cents AS credit_remaining_cents
  FROM redemptions r JOIN credit_entries e ON e.transfer_id = r.charge_transfer_id AND e.amount_cents < 0
"""

# Everything the decision needs, in one round trip: the campaign and who pays for it, the brand and its price,
# and the redemption this code already has, if any.
_CONTEXT = """
SELECT c.id::text AS campaign_id, c.client_id::text, cl.agency_id::text, c.status AS campaign_status,
       CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END::text AS paying_account_id,
       (SELECT id::text FROM credit_accounts WHERE system_name = :spend) AS spend_account_id,
       b.id::text AS brand_id, b.name AS brand_name,
       CAST(:denomination AS bigint) = ANY (b.denominations_cents) AS offered,
       card_price_cents(b.id, CAST(:denomination AS bigint)) AS price_cents, p.agency_price_cents,
       r.id::text AS existing_id, r.status AS existing_status, r.campaign_id::text AS existing_campaign_id,
       r.brand_id::text AS existing_brand_id, r.denomination_cents AS existing_denomination_cents
  FROM campaigns c JOIN clients cl ON cl.id = c.client_id
  LEFT JOIN brands b ON b.id = CAST(:brand AS uuid)
  LEFT JOIN brand_prices p ON p.brand_id = b.id AND p.denomination_cents = CAST(:denomination AS bigint)
  LEFT JOIN redemptions r ON r.redemption_code_hash = :hash
 WHERE c.id = CAST(:campaign AS uuid)
"""

# The redemption, and for a card handed out now the record of its reveal, in one statement. :status is read as
# text wherever it appears (the column's type is a domain, and a parameter takes one type).
_INSERT = f"""
WITH r AS (
    INSERT INTO redemptions (id, redemption_code_hash, code_last4, campaign_id, client_id, brand_id,
        denomination_cents, status, source, card_id, paying_account_id, charge_transfer_id, amount_charged_cents,
        cost_basis_cents, agency_price_cents, vendor_key, next_attempt_at, lease_token, recipient_id,
        delivery_method, delivery_address, source_ip, user_agent, fulfilled_at)
    VALUES (CAST(:id AS uuid), :hash, :last4, CAST(:campaign AS uuid), CAST(:client AS uuid), CAST(:brand AS uuid),
        :denomination, CAST(:status AS text), :source, CAST(:card AS uuid), CAST(:payer AS uuid),
        CAST(:charge AS uuid), :charged, :cost, :agency_price, :vendor_key,
        CASE WHEN CAST(:status AS text) = 'pending' THEN now() + make_interval(secs => :lease) END,
        CAST(:token AS uuid), :recipient_id, :delivery_method, :delivery_address, CAST(:ip AS inet), :user_agent,
        CASE WHEN CAST(:status AS text) = 'fulfilled' THEN now() END)
    RETURNING *
), reveal AS (
    INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
    SELECT id, card_id, :channel, :subject, CAST(:ip AS inet), :user_agent FROM r WHERE card_id IS NOT NULL
)
SELECT {_SHOWN} FROM r
"""

# The values of a redemption written with the card `claimed`: from the request's parameters, but for the four that
# come from the campaign ({client}, {payer}, {charged}, {agency_price}), which each statement fills in.
_NEW_REDEMPTION = """CAST(:id AS uuid), CAST(:hash AS bytea), CAST(:last4 AS text), CAST(:campaign AS uuid),
        {client}, CAST(:brand AS uuid), CAST(:denomination AS bigint), 'fulfilled', claimed.source, claimed.id,
        {payer}, CAST(:charge AS uuid), {charged}, claimed.cost_cents, {agency_price},
        CAST(:recipient_id AS text), CAST(:delivery_method AS text), CAST(:delivery_address AS text),
        CAST(:ip AS inet), CAST(:user_agent AS text), now()"""
_INSERT_CLAIMED = """
inserted AS (
    INSERT INTO redemptions (id, redemption_code_hash, code_last4, campaign_id, client_id, brand_id,
        denomination_cents, status, source, card_id, paying_account_id, charge_transfer_id, amount_charged_cents,
        cost_basis_cents, agency_price_cents, recipient_id, delivery_method, delivery_address, source_ip,
        user_agent, fulfilled_at)
    SELECT {values}
      FROM claimed{joined}
    RETURNING *
), reveal AS (
    INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
    SELECT id, card_id, :channel, :subject, CAST(:ip AS inet), CAST(:user_agent AS text) FROM inserted
)"""
# The CSV path's usual case, in the first round trip: the campaign's context (_CONTEXT), and, when the campaign is
# active, offers the denomination and the code is new, the cheapest pool's card claimed, the redemption written
# `fulfilled` with it, and its reveal. The caller is authorized after the round trip; refused, all of it is rolled
# back. The price is the context's, card_price_cents (migration 0016).
_CONTEXT_AND_CLAIM = f"""
WITH ctx AS ({_CONTEXT}),
open AS (SELECT * FROM ctx WHERE campaign_status = 'active' AND offered AND existing_id IS NULL),
{card_claims.claimed_from_cheapest(only_if='EXISTS (SELECT 1 FROM open)')},
{_INSERT_CLAIMED.format(values=_NEW_REDEMPTION.format(
    client='CAST(open.client_id AS uuid)', payer='CAST(open.paying_account_id AS uuid)',
    charged='open.price_cents', agency_price='open.agency_price_cents',
), joined=' CROSS JOIN open')}
SELECT * FROM ctx
"""  # fmt: skip
# The CSV path when the campaign's context is already known: the cheapest pool's card claimed, the redemption and
# its reveal written; nothing at all when that pool had no card to give.
_CLAIM_AND_INSERT = f"""
WITH {card_claims.claimed_from_cheapest()},
{_INSERT_CLAIMED.format(values=_NEW_REDEMPTION.format(
    client='CAST(:client AS uuid)', payer='CAST(:payer AS uuid)', charged='CAST(:charged AS bigint)',
    agency_price='CAST(:agency_price AS bigint)',
), joined='')}
SELECT {_SHOWN} FROM inserted r
"""  # fmt: skip
# The redemption and the card this transaction has just written and claimed, with what decrypting the card needs.
_NEW = f'SELECT {_SHOWN} FROM redemptions r WHERE r.id = CAST(:id AS uuid)'
_CARD_OF_REDEMPTION = (
    f'{card_secrets.CARD_SELECT} WHERE c.id = (SELECT card_id FROM redemptions WHERE id = CAST(:id AS uuid))'
)

_REVEAL = """
INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
VALUES (CAST(:redemption AS uuid), CAST(:card AS uuid), :channel, :subject, CAST(:ip AS inet), :user_agent)
"""


def provision_gift_card(
    req: ProvisionRequest, *, subject: str | None, issued_code: codes.IssuedCode | None = None
) -> ProvisionResult:
    """Charge for and hand out one gift card for `req.redemption_code`, or replay what that code already got.

    `subject`: the authenticated caller (integration, client admin or platform admin of the campaign's client).
    `issued_code`: a code this system issued, already found by its hash (`giftcards.redeeming` passes it with no
    subject; possessing the code is the authorization).
    """
    _validate(req)
    if subject is None and issued_code is None:
        raise errors.Unauthorized()
    if issued_code is None and subject is not None:
        issued_code = _issued_code(req.redemption_code)
    code = issued_code.code if issued_code is not None else req.redemption_code
    code_hash = codes.code_hash(code)
    for _ in range(3):
        try:
            step = db.in_transaction(
                lambda uow: _charge_or_replay(uow, req, subject, issued_code, code, code_hash), keyed=True
            )
        except _CodeTaken:
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
            if db.in_transaction(lambda uow: _find(uow, code_hash), read_only=True) is None:
                raise
            continue
        result = _with_pause(step) if isinstance(step, ProvisionResult) else _finish_pending(step, req, subject)
        _log(result, code)
        return result
    raise errors.ServiceUnavailable('The system is busy; try again.', code='busy')


def _validate(req: ProvisionRequest) -> None:
    problems = []
    if not _CODE.fullmatch(req.redemption_code):
        problems.append({'field': 'redemptionCode', 'message': 'must be 4-64 letters, digits or dashes'})
    if isinstance(req.denomination_cents, bool) or req.denomination_cents <= 0:
        problems.append({'field': 'denomination', 'message': 'must be greater than 0'})
    for name, limit in _LIMITS.items():
        value = getattr(req, name)
        if value is not None and len(value) > limit:
            problems.append({'field': name, 'message': f'must be at most {limit} characters'})
    if problems:
        raise errors.ValidationFailed(f'{problems[0]["field"]}: {problems[0]["message"]}', details=problems)


def _issued_code(raw: str) -> codes.IssuedCode | None:
    """The issued code an authenticated caller passed, if it is one of ours (only codes of our shape are looked up)."""
    if codes.normalize(raw) is None:
        return None
    return db.in_transaction(lambda uow: codes.find_code(uow, raw), read_only=True)


def _find(uow: UnitOfWork, code_hash: bytes) -> dict[str, Any] | None:
    return uow.fetch_one(f'{_REDEMPTION} WHERE r.redemption_code_hash = :hash', hash=code_hash)


def _find_by_id(uow: UnitOfWork, redemption_id: str) -> dict[str, Any]:
    row = uow.fetch_one(f'{_REDEMPTION} WHERE r.id = CAST(:id AS uuid)', id=redemption_id)
    assert row is not None
    return row


@dataclass(frozen=True)
class _Claimed:
    """A redemption written with a card from stock in this transaction, not charged yet."""

    redemption: dict[str, Any]
    card: card_secrets.RevealedCard


def _context(
    uow: UnitOfWork,
    req: ProvisionRequest,
    subject: str | None,
    issued: codes.IssuedCode | None,
    code_hash: bytes,
    new: dict[str, Any],
) -> tuple[dict[str, Any], _Claimed | None]:
    """The campaign, brand, price and existing redemption, once the caller may provision for the campaign; and the
    redemption `new` describes, written with the cheapest pool's card in the same round trip when the campaign can
    take it (_CONTEXT_AND_CLAIM). Refusing the caller rolls that back with the rest of the transaction."""
    if not auth.is_uuid(req.campaign_id):
        raise errors.NotFound('No such campaign.')
    if not auth.is_uuid(req.brand_id):
        raise errors.NotFound('No such brand.')
    brand_id = str(uuid.UUID(req.brand_id))
    context = {
        'campaign': req.campaign_id,
        'brand': brand_id,
        'denomination': req.denomination_cents,
        'hash': code_hash,
        'spend': ledger.spend_account_name(),
    }
    by_id = {'id': new['id']}
    queries = [(_CONTEXT_AND_CLAIM, {**new, **context}), (_NEW, by_id), (_CARD_OF_REDEMPTION, by_id)]
    if subject is not None:
        queries.append((auth.MEMBERSHIPS_QUERY, {'s': subject}))
    found, redemptions, card_rows, *memberships = uow.fetch_many(*queries)  # one round trip
    ctx = found[0] if found else None
    if subject is not None:
        caller = auth.caller_from(subject, memberships[0])
        if ctx is None or not caller.sees_client(ctx['client_id'], ctx['agency_id']):
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
    return ctx, _claimed(redemptions, card_rows)


def _charge_or_replay(
    uow: UnitOfWork,
    req: ProvisionRequest,
    subject: str | None,
    issued: codes.IssuedCode | None,
    code: str,
    code_hash: bytes,
) -> ProvisionResult | _Pending:
    redemption_id, charge_id = ids.time_ordered(), ids.time_ordered()
    new = {
        'id': redemption_id,
        'hash': code_hash,
        'last4': code[-4:],
        'charge': charge_id,
        'recipient_id': req.recipient_id,
        'delivery_method': req.delivery_method,
        'delivery_address': req.delivery_address,
        'ip': _ip(req.source_ip),
        'user_agent': _user_agent(req.user_agent),
        'channel': req.channel,
        'subject': subject,
        'start': card_claims.scan_start(),
    }
    ctx, claimed = _context(uow, req, subject, issued, code_hash, new)
    if ctx['existing_status'] == 'fulfilled':
        return _reveal(uow, _find_by_id(uow, ctx['existing_id']), req, subject, replayed=True)
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

    if ctx['existing_status'] == 'failed' and not uow.fetch(
        'UPDATE redemptions SET redemption_code_hash = NULL, retried_by = CAST(:new AS uuid), updated_at = now()'
        " WHERE id = CAST(:old AS uuid) AND redemption_code_hash = :hash AND status = 'failed' RETURNING id",
        old=ctx['existing_id'],
        new=redemption_id,
        hash=code_hash,
    ):
        raise _CodeTaken()  # a concurrent retry of this code took it over first
    if issued is not None:
        codes.mark_redeemed(uow, issued.id)
    brand_id, campaign_id = ctx['requested_brand_id'], ctx['campaign_id']
    price = int(ctx['price_cents'])
    insert = {
        **new,
        'campaign': campaign_id,
        'client': ctx['client_id'],
        'brand': brand_id,
        'denomination': req.denomination_cents,
        'payer': ctx['paying_account_id'],
        'charged': price,
        'agency_price': ctx['agency_price_cents'],
    }
    # Everything else first, the charge last with COMMIT in the same round trip: the paying account's row, locked
    # by the charge until commit, is what every provision on this budget queues for. The redemption's reference to
    # its charge and the depletion pause are checked at that commit (migration 0009). A card is decrypted before
    # the charge: one that fails its integrity check rolls all of it back.
    if claimed is None and ctx['existing_id'] is not None:
        # A failed code tried again: the first round trip claimed nothing, the code being taken until just now.
        claimed = _claim_and_insert(uow, insert)
    card: card_secrets.RevealedCard | None
    token = vendor_key = None
    if claimed is not None:
        stored, card = claimed.redemption, claimed.card
    else:
        stored, card, token, vendor_key = _claim_elsewhere_or_hold(uow, insert, req.denomination_cents)
    charge = ledger.transfer_credit(
        uow,
        ctx['paying_account_id'],
        ctx['spend_account_id'],
        price,
        'redemption',
        initiator=subject or f'redeem:{req.channel}',
        notes=f'redemption {redemption_id}',
        transfer_id=charge_id,
        commit=True,
    )
    if card is None:
        assert token is not None and vendor_key is not None
        order = recovery.PendingOrder(
            redemption_id, vendor_key, brand_id, ctx['brand_name'], req.denomination_cents, uncertain_vendor=None
        )
        return _Pending(redemption_id, (order, token))
    remaining = charge.debit.balance_after_cents
    return ProvisionResult(
        redemption={**stored, 'credit_remaining_cents': remaining},
        card=card,
        credit_remaining_cents=remaining,
        campaign_paused=False,
        replayed=False,
    )


def _claim_and_insert(uow: UnitOfWork, insert: dict[str, Any]) -> _Claimed | None:
    """The cheapest pool's card claimed and the redemption written with it (_CLAIM_AND_INSERT), the card read in
    the same round trip; None when that pool had no card to give."""
    stored, card_rows = uow.fetch_many((_CLAIM_AND_INSERT, insert), (_CARD_OF_REDEMPTION, insert))
    return _claimed(stored, card_rows)


def _claimed(redemptions: list[dict[str, Any]], card_rows: list[dict[str, Any]]) -> _Claimed | None:
    """The redemption a claiming statement wrote, if it wrote one, with its card decrypted (read by
    _CARD_OF_REDEMPTION in the same round trip)."""
    if not redemptions:
        return None
    return _Claimed(redemptions[0], card_secrets.revealed(card_rows[0] if card_rows else None))


def _claim_elsewhere_or_hold(
    uow: UnitOfWork, insert: dict[str, Any], denomination_cents: int
) -> tuple[dict[str, Any], card_secrets.RevealedCard | None, str | None, str | None]:
    """When the cheapest pool had no card to give from where the scan started: a card of another pool (or of that
    one, scanned from its start), or, with none in stock, the redemption written `pending` with its vendor key and
    lease. Answers the stored redemption, the card (None: pending), and the lease token and vendor key of a
    pending one."""
    claimed = card_claims.claim_card(uow, insert['brand'], denomination_cents)
    token = None if claimed else str(uuid.uuid4())
    vendor_key = None if claimed else idempotency_key_for(insert['id'])
    row = {
        **insert,
        'status': 'fulfilled' if claimed else 'pending',
        'source': claimed.source if claimed else None,
        'card': claimed.card_id if claimed else None,
        'cost': claimed.cost_basis_cents if claimed else None,
        'vendor_key': vendor_key,
        'lease': recovery.lease_s() if token else 0,
        'token': token,
    }
    if claimed is None:
        ((stored,),) = uow.fetch_many((_INSERT, row))
        return stored, None, token, vendor_key
    card_rows, (stored,) = uow.fetch_many(card_secrets.card_query(claimed.card_id), (_INSERT, row))
    return stored, card_secrets.revealed(card_rows[0] if card_rows else None), None, None


def _with_pause(result: ProvisionResult) -> ProvisionResult:
    """A charge that left less than its own price may have paused the campaign at commit: read whether it did."""
    if result.replayed or result.credit_remaining_cents >= result.redemption['amount_charged_cents']:
        return result
    paused = bool(
        db.in_transaction(
            lambda uow: uow.value(
                'SELECT campaign_paused FROM redemptions WHERE id = CAST(:id AS uuid)', id=result.redemption['id']
            )
        )
    )
    return replace(result, campaign_paused=paused, redemption={**result.redemption, 'campaign_paused': paused})


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
        redemption=redemption,
        card=card_secrets.reveal_card(uow, redemption['card_id']),
        credit_remaining_cents=int(redemption['credit_remaining_cents']),
        campaign_paused=bool(redemption['campaign_paused']),
        replayed=replayed,
    )


def _finish_pending(step: _Pending, req: ProvisionRequest, subject: str | None) -> ProvisionResult:
    """The vendor path's answer: the card, 503 fulfilment_unavailable (refunded) or 503 with Retry-After."""
    outcome = recovery.settle(step.redemption_id, step.held)
    if outcome is Outcome.FULFILLED:
        return db.in_transaction(
            lambda uow: _reveal(uow, _find_by_id(uow, step.redemption_id), req, subject, replayed=step.held is None)
        )
    if outcome is Outcome.FAILED:
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
            'redemption_id': r['id'],
            'campaign_id': r['campaign_id'],
            'source': r['source'],
            'redemption_code': mask(code),
            'replayed': result.replayed,
            'campaign_paused': result.campaign_paused,
        },
    )
