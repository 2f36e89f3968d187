"""Claiming a card for a redemption: from the cheapest CSV pool with stock, or one a vendor sold.

- Claim (`claim_card`): the cheapest pool with stock first, a row of `available_cards` locked with
  `FOR UPDATE SKIP LOCKED` and deleted, the card marked claimed, all in the caller's transaction. The statements
  are the database's (migration 0018), which provisioning's one call uses too.
- Vendor cards (`store_vendor_card`): sealed (`giftcards.card_secrets`) and stored already claimed, found again by
  the vendor's order reference (`find_vendor_card`).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal, NamedTuple

from giftcards import card_secrets, crypto, db, errors
from giftcards.db import UnitOfWork
from giftcards.observability import logger

db.register_constraint(
    'cards_vendor_reference_unique',
    lambda: errors.Conflict("This vendor's card is already stored.", code='duplicate_card'),
)


# --- claim ---------------------------------------------------------------------------------------------


class ClaimedCard(NamedTuple):
    card_id: str
    pool_id: str
    cost_basis_cents: int
    source: Literal['csv'] = 'csv'


def scan_start() -> str:
    """Where in a pool's key a claim starts looking: a random point (see migration 0018, `claim_card`)."""
    return str(uuid.uuid4())


def claim_card(uow: UnitOfWork, brand_id: str, denomination_cents: int) -> ClaimedCard | None:
    """Claim one CSV card of the brand and denomination in the caller's transaction; None when no pool has one.

    The claim is the database's `claim_card` (migration 0018), the one provisioning's call uses too: pools
    cheapest first, each scanned from a random point of its key and then from its start, SKIP LOCKED.
    """
    row = uow.fetch_one(
        'SELECT card_id::text, pool_id::text, cost_cents'
        ' FROM claim_card(CAST(:brand AS uuid), CAST(:denomination AS bigint), CAST(:start AS uuid))',
        brand=brand_id,
        denomination=denomination_cents,
        start=scan_start(),
    )
    return ClaimedCard(row['card_id'], row['pool_id'], int(row['cost_cents'])) if row is not None else None


# --- vendor cards --------------------------------------------------------------------------------------


def store_vendor_card(
    uow: UnitOfWork,
    *,
    brand_id: str,
    denomination_cents: int,
    vendor: str,
    vendor_reference: str | None,
    card_code: str,
    card_number: str | None,
    pin: str | None,
    expires_on: date | str | None,
    cost_cents: int,
) -> str:
    """Encrypt and store a card a vendor sold (source 'api', already claimed); answers its id.

    An expiry the vendor wrote in a form this cannot read is dropped (logged), never a reason to lose the card.
    """
    if not card_code:
        raise errors.ValidationFailed('A vendor card needs a code.')
    key = card_secrets.process_data_key()
    card_id = str(uuid.uuid4())
    associated = uuid.UUID(card_id).bytes
    card_secrets.store_key(uow, key)
    uow.execute(
        'INSERT INTO cards (id, brand_id, denomination_cents, cost_cents, source, vendor, vendor_reference, key_id,'
        ' code_sealed, number_sealed, pin_sealed, code_hash, code_last4, number_last4, expires_on, status,'
        ' claimed_at)'
        " VALUES (CAST(:id AS uuid), CAST(:brand AS uuid), :denomination, :cost, 'api', :vendor, :reference,"
        ' CAST(:key AS uuid), :code, :number, :pin, :hash, :code_last4, :number_last4, :expires,'
        " 'claimed', now())",
        id=card_id,
        brand=brand_id,
        denomination=denomination_cents,
        cost=cost_cents,
        vendor=vendor,
        reference=vendor_reference or None,
        key=key.id,
        code=crypto.seal(key.plaintext, card_code, associated),
        number=crypto.seal(key.plaintext, card_number, associated) if card_number else None,
        pin=crypto.seal(key.plaintext, pin, associated) if pin else None,
        hash=card_secrets.code_hash(card_code),
        code_last4=crypto.last4(card_code),
        number_last4=crypto.last4(card_number),
        expires=_vendor_expiry(expires_on, card_id),
    )
    return card_id


def _vendor_expiry(value: date | str | None, card_id: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        logger.warning('vendor card expiry not understood; stored without one', extra={'card_id': card_id})
        return None


def find_vendor_card(uow: UnitOfWork, vendor: str, vendor_reference: str) -> str | None:
    """The id of the card stored for a vendor's order reference, if any."""
    value = uow.value(
        'SELECT id::text FROM cards WHERE vendor = :vendor AND vendor_reference = :reference',
        vendor=vendor,
        reference=vendor_reference,
    )
    return str(value) if value is not None else None
