"""Money at the edges: decimal dollars in JSON, integer cents everywhere else. Never a float in arithmetic.

Request bodies are parsed with `Decimal` for non-integer numbers (see `api.app`), so `27.5` arrives
exactly. `Amount` is the pydantic type every amount field uses: it yields whole cents as `int`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_AMOUNT_CENTS = 1_000_000_000 * 100
_CENT = Decimal('0.01')


def parse_amount(value: Any) -> int:
    """Decimal dollars (JSON number) -> positive cents. Raises ValueError with a human message."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError('must be a JSON number of dollars, such as 25 or 27.50')
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - Decimal(int|Decimal) never fails
        raise ValueError('must be a number') from exc
    if not amount.is_finite():
        raise ValueError('must be a finite number')
    if amount <= 0:
        raise ValueError('must be greater than 0')
    if amount > MAX_AMOUNT_CENTS // 100:
        raise ValueError('must be at most 1000000000')
    if amount != amount.quantize(_CENT):
        raise ValueError('must have at most 2 decimal places')
    return int(amount * 100)


def dollars_text(cents: int) -> str:
    """1000 -> '10.00': exact, never through a float (a vendor's order, an alert's message)."""
    return f'{cents // 100}.{cents % 100:02d}'


def to_dollars(cents: int) -> int | float:
    """Cents -> a JSON number of dollars. Output only: 2-decimal values below 1e13 print exactly."""
    return cents // 100 if cents % 100 == 0 else float(Decimal(cents) / 100)


Amount = Annotated[int, BeforeValidator(parse_amount)]
"""A request amount in decimal dollars, validated and converted to integer cents."""
