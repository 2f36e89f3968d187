"""Redemption codes: generate, normalize, hash, find (`giftcards.redeeming` redeems them; a campaign's admins issue,
list and void them: `giftcards.code_administration`).

- A code is 80 random bits from `secrets`, written as 16 Crockford base32 symbols in groups of four
  (`XXXX-XXXX-XXXX-XXXX`). It is shown once, when issued; the database keeps only its keyed hash
  (`crypto.keyed_hash('redemption_code', <canonical form>)`) and its last 4 symbols.
- Normalization follows Crockford: case-insensitive, separators ignored, I and L read as 1, O as 0.
  U is not a symbol. The canonical form is the grouped upper-case spelling, so a code typed any way finds
  the same hash, and the redemption it keys is the same one `/provision-gift-card` sees.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal, NamedTuple

from giftcards import crypto, db, errors

ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
SYMBOLS = 16
GROUP = 4
BITS = SYMBOLS * 5
# Longer input is not a code; it is still hashed (as a stand-in) and looked up, like any other miss.
MAX_INPUT = 128
HASH_PURPOSE = 'redemption_code'

CodeStatus = Literal['issued', 'redeemed', 'void']

_SYMBOL_SET = frozenset(ALPHABET)
_CROCKFORD_ALIASES = str.maketrans({'I': '1', 'L': '1', 'O': '0'})
# Whitespace, ASCII hyphen-minus and the Unicode dashes a code picks up when copied from a document.
_SEPARATORS = re.compile(r'[\s\-\u2010-\u2015\u2212]+')
# Hashed in place of malformed input so that it costs what a well-formed miss costs; no code normalizes to it.
_MALFORMED_STAND_IN = '\x00not-a-code'


class InvalidCode(errors.NotFound):
    code = 'invalid_code'
    default_message = 'This code is not valid. Check it and try again.'


# --- the code itself -----------------------------------------------------------------------------------


def generate_code() -> str:
    """A new code: 80 bits from the operating system's CSPRNG, in the grouped canonical form."""
    value = secrets.randbits(BITS)
    symbols = ''.join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(SYMBOLS)))
    return _grouped(symbols)


def _grouped(symbols: str) -> str:
    return '-'.join(symbols[i : i + GROUP] for i in range(0, SYMBOLS, GROUP))


def normalize(raw: str) -> str | None:
    """The canonical form of a code as a person may type it, or None when it cannot be one of ours."""
    if len(raw) > MAX_INPUT:
        return None
    compact = _SEPARATORS.sub('', raw)
    if not compact.isascii():
        return None
    compact = compact.upper().translate(_CROCKFORD_ALIASES)
    if len(compact) != SYMBOLS or not _SYMBOL_SET.issuperset(compact):
        return None
    return _grouped(compact)


def code_hash(canonical: str) -> bytes:
    """The keyed hash a code is stored and found under (of its canonical form)."""
    return crypto.keyed_hash(HASH_PURPOSE, canonical)


def lookup_hash(raw: str) -> tuple[str | None, bytes]:
    """(canonical form or None, the hash to look up). Malformed input hashes a stand-in that matches nothing."""
    canonical = normalize(raw)
    return canonical, code_hash(canonical if canonical is not None else _MALFORMED_STAND_IN)


def masked(last4: str) -> str:
    return f'****-****-****-{last4}'


# --- the stored code -----------------------------------------------------------------------------------


class IssuedCode(NamedTuple):
    """A redemption code this system issued, as found by its hash (the code itself is never stored)."""

    id: str
    campaign_id: str
    brand_id: str
    denomination_cents: int
    status: CodeStatus
    code: str  # the canonical form the caller typed; it matched the stored hash


def find_code(scope: db.Scope, raw: str) -> IssuedCode | None:
    """The issued code `raw` spells (any case, separators, Crockford aliases) as `scope` sees it, or None. Voided codes
    included. One statement that enters the scope and reads (migration 0029), outside any transaction."""
    canonical, digest = lookup_hash(raw)
    (rows,) = db.read(
        (
            'SELECT * FROM find_redemption_code(CAST(:scope AS text), CAST(:h AS bytea))',
            {'scope': scope.text, 'h': digest},
        ),
        scoped=False,  # it enters the scope itself
    )
    if not rows or canonical is None:
        return None
    row = rows[0]
    return IssuedCode(
        row['id'], row['campaign_id'], row['brand_id'], int(row['denomination_cents']), row['status'], canonical
    )
