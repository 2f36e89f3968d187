"""A card's secrets: the data keys, the keyed hash of its code, and revealing and masking a card.

- Code, number and PIN are sealed with AES-GCM under one data key per import (`new_data_key`) or one per process
  for vendor cards (`process_data_key`), the card id as associated data. A data key is stored wrapped by the key
  provider (KMS) before any card that uses it.
- `code_hash` (HMAC) finds duplicates without storing the code; the last 4 characters are kept for display.
- `reveal_card` / `revealed` decrypt a claimed card and check it is the row's own; `masked_card` shows it by its
  last 4 characters. Nothing here logs a code, number or PIN.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from giftcards import crypto, db, errors
from giftcards.auth import is_uuid
from giftcards.db import UnitOfWork
from giftcards.observability import logger
from giftcards.records import repr_hiding

db.register_constraint(
    'cards_code_hash_unique',
    lambda: errors.Conflict('A card with the same code is already stored.', code='duplicate_card'),
)


class CardIntegrityError(errors.DomainError):
    """Stored card data failed AES-GCM authentication: it was altered or moved onto another card's row."""

    status, code = 500, 'card_integrity_error'
    default_message = 'The stored card data failed its integrity check; the card cannot be shown.'


# --- data keys and the code hash -----------------------------------------------------------------------


class DataKey(NamedTuple):
    """A data key: its id, the copy wrapped by the key provider (what is stored) and the plaintext (never stored)."""

    id: str
    wrapped: bytes
    plaintext: bytes

    def __repr__(self) -> str:  # the key itself never
        return repr_hiding(self, 'plaintext')


def new_data_key() -> DataKey:
    """A new data key from the key provider (KMS, or the local key): one per import."""
    plaintext, wrapped = crypto.key_provider().generate_data_key()
    return DataKey(str(uuid.uuid4()), wrapped, plaintext)


@lru_cache(maxsize=1)
def process_data_key() -> DataKey:
    """The data key this process seals vendor cards with: one KMS call per process, not per card."""
    return new_data_key()


@lru_cache(maxsize=256)
def _unwrapped(wrapped: bytes) -> bytes:
    return crypto.key_provider().unwrap(wrapped)


def store_key(uow: UnitOfWork, key: DataKey) -> None:
    """Store the wrapped key, before any card sealed with it. Idempotent: the process key is stored again by every
    transaction that uses it, so a rolled-back first use cannot leave cards pointing at a key row never committed."""
    uow.execute(
        'INSERT INTO card_data_keys (id, wrapped_key) VALUES (CAST(:id AS uuid), :wrapped) ON CONFLICT (id) DO NOTHING',
        id=key.id,
        wrapped=key.wrapped,
    )


CODE_HASH_PURPOSE = 'card_code'


def code_hash(card_code: str) -> bytes:
    """The keyed hash stored in `cards.code_hash` to find a code without storing it."""
    return crypto.keyed_hash(CODE_HASH_PURPOSE, card_code)


# --- reveal and display --------------------------------------------------------------------------------


class RevealedCard(NamedTuple):
    """A claimed card with its secrets. They stay out of `repr`, so logging the object leaks nothing."""

    card_id: str
    brand_id: str
    denomination_cents: int
    source: str
    card_code: str
    card_number: str | None
    pin: str | None
    expires_on: date | None
    code_last4: str
    number_last4: str | None
    vendor: str | None
    vendor_reference: str | None

    def __repr__(self) -> str:  # the card itself never
        return repr_hiding(self, 'card_code', 'card_number', 'pin')


# A card with what decrypting it needs (the database's provision_card answers the same columns, migration 0018).
_CARD_SELECT = (
    'SELECT c.id::text AS id, c.brand_id::text AS brand_id, c.denomination_cents, c.source, c.vendor,'
    ' c.vendor_reference, c.code_sealed, c.number_sealed, c.pin_sealed, c.code_last4, c.number_last4,'
    ' c.expires_on, c.status, k.wrapped_key'
    ' FROM cards c JOIN card_data_keys k ON k.id = c.key_id'
)
_CARD = f'{_CARD_SELECT} WHERE c.id = CAST(:id AS uuid)'


def reveal_card(uow: UnitOfWork, card_id: str) -> RevealedCard:
    """Decrypt a claimed card. The caller records the reveal (who, why) in its own transaction.

    Raises NotFound for an unknown card, Conflict for a card still in stock, and CardIntegrityError when a
    ciphertext does not authenticate against this card's id (tampered, or copied from another card's row).
    """
    return revealed(uow.fetch_one(_CARD, id=card_id) if is_uuid(card_id) else None)


def revealed(row: dict[str, Any] | None) -> RevealedCard:
    """A card's row with the columns of _CARD_SELECT (None: no such card), decrypted; raises as `reveal_card`."""
    if row is None:
        raise errors.NotFound('No such card.')
    if row['status'] != 'claimed':
        raise errors.Conflict('A card in stock is not shown until it is claimed.', code='card_not_claimed')
    from cryptography.exceptions import InvalidTag  # imported where used, as in giftcards.crypto

    key = _unwrapped(bytes(row['wrapped_key']))
    associated = uuid.UUID(row['id']).bytes
    try:
        code, number, pin = (
            crypto.unseal(key, bytes(sealed), associated) if sealed is not None else None
            for sealed in (row['code_sealed'], row['number_sealed'], row['pin_sealed'])
        )
    except InvalidTag:
        logger.error('card data failed its integrity check', extra={'card_id': row['id']})
        raise CardIntegrityError() from None
    assert code is not None
    return RevealedCard(
        card_id=row['id'],
        brand_id=row['brand_id'],
        denomination_cents=int(row['denomination_cents']),
        source=row['source'],
        card_code=code,
        card_number=number,
        pin=pin,
        expires_on=row['expires_on'],
        code_last4=row['code_last4'],
        number_last4=row['number_last4'],
        vendor=row['vendor'],
        vendor_reference=row['vendor_reference'],
    )


def masked(last4: str | None) -> str | None:
    """A secret shown by its last 4 characters only: '****1234'."""
    return f'****{last4}' if last4 else None


def masked_card(row: Mapping[str, Any] | RevealedCard) -> dict[str, Any]:
    """A card for lists and logs: code and number masked to their last 4 characters, never the PIN.

    `row` is a RevealedCard or a mapping with `code_last4` and `number_last4` (and optionally `expires_on`).
    """
    values = row._asdict() if isinstance(row, RevealedCard) else row
    expires_on = values.get('expires_on')
    return {
        'card_code': masked(values['code_last4']),
        'card_number': masked(values.get('number_last4')),
        'expires_on': expires_on.isoformat() if isinstance(expires_on, date) else expires_on,
    }
