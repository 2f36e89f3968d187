"""The single-use, expiring link a delivered message carries to the redeem page, where the recipient sees the card.

- The token is derived, not stored: an HMAC (the code-hash key) of the delivery's id and send number, so that a
  retry of the same send carries the same link, and a resend a new one. The database keeps only its SHA-256
  (`deliveries.link_token_hash`) with the link's expiry; a resend replaces both, so the older link stops working.
- A token holds 256 bits: guessing one is hopeless, so the redeem page needs no rate limit for links.
- `peek` tells the page what the link is for without using it (a mail scanner that follows links must not spend
  it); `open_link` uses it: once, before it expires, in the transaction that records the reveal. A link that was
  opened also proves the message arrived: a sent delivery becomes delivered.
- Both see what the redeem page's scope for the link shows (`Scope.of_link`, migration 0025): its delivery's client.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlencode

from giftcards import card_secrets, crypto, db, errors, limits
from giftcards.config import get_settings
from giftcards.db import Scope, UnitOfWork

PURPOSE = 'delivery_link'
QUERY = 'token'  # the redeem page's parameter
_TOKEN_LENGTH = 43  # base64url of 32 bytes, unpadded


class InvalidLink(errors.NotFound):
    code, default_message = (
        'invalid_link',
        'This link has expired or was already used. Ask whoever sent you the gift card to send it again.',
    )


def token_for(delivery_id: str, send_number: int) -> str:
    """The link token of one send of a delivery."""
    digest = crypto.keyed_hash(PURPOSE, f'{delivery_id}:{send_number}')
    return base64.urlsafe_b64encode(digest).rstrip(b'=').decode()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def url_for(token: str) -> str:
    return f'{get_settings().redeem_url}?{urlencode({QUERY: token})}'


def well_formed(token: str) -> bool:
    return len(token) == _TOKEN_LENGTH and all(c.isascii() and (c.isalnum() or c in '-_') for c in token)


class LinkedCard(NamedTuple):
    """What a link leads to: the card (None until the link is used), its brand and value, the redemption."""

    redemption_id: str
    brand_name: str
    denomination_cents: int
    code_last4: str
    created_at: datetime
    card: card_secrets.RevealedCard | None


_COLUMNS = """r.id::text AS redemption_id, r.card_id::text, r.denomination_cents, r.code_last4, r.created_at,
       b.name AS brand_name"""

_VALID = f"""
SELECT {_COLUMNS}
  FROM deliveries d JOIN redemptions r ON r.id = d.id JOIN brands b ON b.id = r.brand_id
 WHERE d.link_token_hash = :h AND d.link_used_at IS NULL AND d.link_expires_at > now()
"""

_USE = f"""
WITH used AS (
    UPDATE deliveries SET link_used_at = now(), updated_at = now(),
           status = CASE WHEN status = 'sent' THEN 'delivered' ELSE status END,
           delivered_at = CASE WHEN status = 'sent' THEN now() ELSE delivered_at END
     WHERE link_token_hash = :h AND link_used_at IS NULL AND link_expires_at > now()
    RETURNING id
)
SELECT {_COLUMNS}
  FROM used JOIN redemptions r ON r.id = used.id JOIN brands b ON b.id = r.brand_id
"""

_REVEAL = """
INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
VALUES (CAST(:redemption AS uuid), CAST(:card AS uuid), 'delivery_link', NULL, CAST(:ip AS inet), :user_agent)
"""


def _linked(row: dict[str, Any], card: card_secrets.RevealedCard | None) -> LinkedCard:
    return LinkedCard(
        redemption_id=row['redemption_id'],
        brand_name=row['brand_name'],
        denomination_cents=int(row['denomination_cents']),
        code_last4=row['code_last4'],
        created_at=row['created_at'],
        card=card,
    )


def peek(token: str) -> LinkedCard:
    """What a valid link is for, without using it; InvalidLink (404) for an unknown, used or expired one."""
    if not well_formed(token):
        raise InvalidLink()
    digest = token_hash(token)
    (rows,) = db.read((_VALID, {'h': digest}), scope=Scope.of_link(digest))
    if not rows:
        raise InvalidLink()
    return _linked(rows[0], None)


def open_link(token: str, *, source_ip: str | None, user_agent: str | None) -> LinkedCard:
    """Use the link: its card, decrypted, with the reveal recorded, in one transaction; InvalidLink (404) when it
    is unknown, used or expired. A card that fails its integrity check rolls it all back: the link stays unused."""
    if not well_formed(token):
        raise InvalidLink()
    digest = token_hash(token)

    def work(uow: UnitOfWork) -> LinkedCard:
        row = uow.fetch_one(_USE, h=digest)
        if row is None:
            raise InvalidLink()
        uow.execute(
            _REVEAL,
            redemption=row['redemption_id'],
            card=row['card_id'],
            ip=_ip(source_ip),
            user_agent=user_agent[: limits.USER_AGENT.max_length] if user_agent else None,
        )
        return _linked(row, card_secrets.reveal_card(uow, row['card_id']))

    return db.in_transaction(work, scope=Scope.of_link(digest))


def _ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None
