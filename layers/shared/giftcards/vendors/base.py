"""What provisioning asks a gift card vendor for, what it gets back, and the two ways an order can fail.

A vendor call has three outcomes and provisioning treats them differently:

- `IssuedCard`: the vendor sold a card; store it before anything else can fail.
- `VendorRefused`: this attempt definitely sold nothing. With `retryable` the same key may be tried again later
  (insufficient funds, rate limit, vendor unreachable); without it the request itself is wrong (unknown brand, bad
  credentials, a key that already belongs to a different order). A refusal says nothing about *earlier* attempts
  under the same key.
- `VendorOutcomeUnknown`: the order may or may not exist (timeout, lost answer, 5xx, order still in flight).
  Retry later with the same key, or `lookup` it; never switch to another vendor's card for it without knowing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from giftcards.records import repr_hiding

DEFAULT_TIMEOUT_S = 10.0
"""Read timeout of a vendor call unless its configuration sets `timeout_s`; see `vendor_timeout_s()`."""

_KEY = re.compile(r'[A-Za-z0-9_-]{5,50}')
_CURRENCY = re.compile(r'[A-Z]{3}')


def idempotency_key_for(redemption_id: uuid.UUID | str) -> str:
    """The vendor idempotency key of a redemption: `gc-<uuid hex>` (35 characters; fits Tango and Tillo)."""
    return f'gc-{uuid.UUID(str(redemption_id)).hex}'


@dataclass(frozen=True)
class VendorOrder:
    """One card to buy. The key makes a retry return the first order instead of buying again."""

    idempotency_key: str
    brand: str
    denomination_cents: int
    currency: str = 'USD'
    recipient_email: str | None = None

    def __post_init__(self) -> None:
        if not _KEY.fullmatch(self.idempotency_key):
            raise ValueError('idempotency_key must be 5-50 characters of letters, digits, "_" and "-"')
        if isinstance(self.denomination_cents, bool) or self.denomination_cents <= 0:
            raise ValueError('denomination_cents must be a positive number of cents')
        if not _CURRENCY.fullmatch(self.currency):
            raise ValueError('currency must be an upper-case ISO 4217 code')


class IssuedCard(NamedTuple):
    """A card a vendor sold. The secrets stay out of `repr`, so logging the object leaks nothing."""

    card_code: str
    card_number: str | None
    pin: str | None
    expires_on: str | None
    cost_cents: int | None
    vendor_reference: str
    replayed: bool

    def __repr__(self) -> str:  # the card itself never
        return repr_hiding(self, 'card_code', 'card_number', 'pin')


class VendorError(Exception):
    """A vendor call that gave no card. `vendor` names the configured vendor; `code` is its error code, if any."""

    def __init__(self, message: str, *, vendor: str = '', code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.code = code
        self.status = status


class VendorRefused(VendorError):
    """Definite: this attempt sold nothing. `retryable`: the same key may succeed later (funds, rate limit, reach)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        vendor: str = '',
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, code=code, status=status)
        self.retryable = retryable


class VendorOutcomeUnknown(VendorError):
    """The order may or may not exist: retry later with the same key, or look it up."""


class Vendor(Protocol):
    name: str

    def order(self, order: VendorOrder) -> IssuedCard:
        """Buy one card. Raises `VendorRefused` or `VendorOutcomeUnknown`."""
        ...

    def lookup(self, order: VendorOrder) -> IssuedCard | None:
        """The card sold under `order.idempotency_key`; None when the vendor holds no card for that key (a
        re-order with the key is then safe). Raises `VendorOutcomeUnknown` when the vendor cannot tell."""
        ...
