"""Claiming a card for a redemption: from the cheapest CSV pool with stock, or one a vendor sold.

- Claim (`claim_card`): the cheapest pool with stock first, a row of `available_cards` locked with
  `FOR UPDATE SKIP LOCKED` and deleted, the card marked claimed, all in the caller's transaction. Provisioning
  composes the same claim into its own statements (`claimed_from_cheapest`).
- Vendor cards (`store_vendor_card`): sealed (`giftcards.card_secrets`) and stored already claimed, found again by
  the vendor's order reference (`find_vendor_card`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal

from giftcards import card_secrets, crypto, db, errors
from giftcards.db import UnitOfWork
from giftcards.observability import logger

_LOWEST_UUID = '00000000-0000-0000-0000-000000000000'

db.register_constraint(
    'cards_vendor_reference_unique',
    lambda: errors.Conflict("This vendor's card is already stored.", code='duplicate_card'),
)


# --- claim ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedCard:
    card_id: str
    pool_id: str
    cost_basis_cents: int
    source: Literal['csv'] = 'csv'


# Whether a pool has stock: its first card in available_cards' primary key (ORDER BY + LIMIT, which only that
# index answers cheaply). An EXISTS, once the table is analysed and holds few pools, was planned as a hash of
# every available card, or a scan through other pools' cards (16 ms a claim at 60,000 cards).
POOLS_WITH_STOCK = """
SELECT p.id::text AS id FROM card_pools p
 CROSS JOIN LATERAL (SELECT 1 FROM available_cards a WHERE a.pool_id = p.id ORDER BY a.card_id LIMIT 1) stock
 WHERE p.brand_id = CAST(:brand AS uuid) AND p.denomination_cents = CAST(:denomination AS bigint)
 ORDER BY p.cost_per_card_cents, p.created_at, p.id
"""

# One card of one pool: the first available card at or after :start in the primary key (pool_id, card_id), locked
# (SKIP LOCKED: rows other claims hold are passed over), removed from available_cards and marked claimed.
_TAKEN = """taken AS (
    DELETE FROM available_cards
     WHERE pool_id = {pool}
       AND card_id = (SELECT card_id FROM available_cards
                       WHERE pool_id = {pool} AND card_id >= CAST(:start AS uuid)
                       ORDER BY card_id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING card_id
)"""
_MARKED = """UPDATE cards SET status = 'claimed', claimed_at = now()
  FROM taken WHERE cards.id = taken.card_id AND cards.status = 'available'"""
_CLAIM = f"""
WITH {{pool_cte}}{_TAKEN}
{_MARKED}
RETURNING cards.id::text AS card_id, cards.pool_id::text AS pool_id, cards.cost_cents
"""
CLAIM_FROM_POOL = _CLAIM.format(pool_cte='', pool='CAST(:pool AS uuid)')
# The same from the cheapest pool with stock, in one round trip: what nearly every claim needs.
_CHEAPEST = f'cheapest AS ({POOLS_WITH_STOCK.strip()}\n LIMIT 1),\n'
_FROM_CHEAPEST = '(SELECT CAST(id AS uuid) FROM cheapest)'
CLAIM_FROM_CHEAPEST = _CLAIM.format(pool_cte=_CHEAPEST, pool=_FROM_CHEAPEST)


def claimed_from_cheapest(only_if: str = 'true') -> str:
    """That claim as the first steps of a statement that goes on to use the card (`WITH {...}, ...`): `claimed` is
    the card's row as the claim left it, empty when the cheapest pool had no card to give, or when the SQL
    condition `only_if` (over the statement's earlier steps) does not hold."""
    pool = f'(SELECT CAST(id AS uuid) FROM cheapest WHERE {only_if})'
    return f"""{_CHEAPEST}{_TAKEN.format(pool=pool)},
claimed AS ({_MARKED}
    RETURNING cards.*)"""


def scan_start() -> str:
    """Where in a pool's key a claim starts looking: a random point (see `claim_card`)."""
    return str(uuid.uuid4())


def claim_card(uow: UnitOfWork, brand_id: str, denomination_cents: int) -> ClaimedCard | None:
    """Claim one CSV card of the brand and denomination in the caller's transaction; None when no pool has one.

    Pools are tried cheapest first. Within a pool the scan starts at a random point of the key and wraps around
    once: concurrent claims start apart, and the entries earlier claims deleted (dead until vacuum) are spread
    thin instead of piling up in front of every scan. The first try, the cheapest pool from a random point, is
    one statement; only when it finds nothing are the pools listed and tried one by one.
    """
    row = uow.fetch_one(CLAIM_FROM_CHEAPEST, brand=brand_id, denomination=denomination_cents, start=scan_start())
    if row is not None:
        return ClaimedCard(row['card_id'], row['pool_id'], int(row['cost_cents']))
    for pool in uow.fetch(POOLS_WITH_STOCK, brand=brand_id, denomination=denomination_cents):
        for start in (scan_start(), _LOWEST_UUID):
            row = uow.fetch_one(CLAIM_FROM_POOL, pool=pool['id'], start=start)
            if row is not None:
                return ClaimedCard(row['card_id'], row['pool_id'], int(row['cost_cents']))
    return None


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
