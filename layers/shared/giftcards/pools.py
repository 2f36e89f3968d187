"""CSV card pools: create, read and list them, and their stock.

- Pools: one brand and denomination at one `cost_per_card`. Stock is the pool's rows in `available_cards`;
  claimed = cards ever imported (`card_pools.card_count`, changed only by imports) - available. A pool is
  answered as a `Pool` value, in cents; its routes render it.
- A pool is low on stock below LOW_STOCK_BELOW cards or its own threshold: the monitor's alert and the admin
  dashboard's colour say so by the same rule.
- The cards come into a pool from a CSV file: `giftcards.card_import`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from giftcards import errors, pagination
from giftcards.auth import is_uuid, load_caller, require_platform_admin
from giftcards.db import UnitOfWork
from giftcards.money import Amount

# A pool is low on stock below its own low_stock_threshold, and below this many available cards whatever its threshold:
# the monitor's pool_low_stock warning, the admin dashboard's yellow.
LOW_STOCK_BELOW = 10


# --- pools ---------------------------------------------------------------------------------------------


class PoolRequest(BaseModel):
    """`POST /pools` body."""

    model_config = ConfigDict(extra='forbid', defer_build=True)  # built on first use, as `api.models.Body` is

    brand_id: uuid.UUID
    denomination: Amount
    cost_per_card: Amount
    low_stock_threshold: Annotated[int, Field(strict=True, ge=0, le=1_000_000)] = 50


_POOL = """
SELECT p.id::text AS id, p.brand_id::text AS brand_id, p.denomination_cents, p.cost_per_card_cents,
       p.low_stock_threshold, p.created_at, s.available, p.card_count - s.available AS claimed
  FROM card_pools p
 CROSS JOIN LATERAL (SELECT count(*) AS available FROM available_cards a WHERE a.pool_id = p.id) s
"""


class Pool(NamedTuple):
    """A pool and its stock: claimed = cards ever imported - available."""

    id: str
    brand_id: str
    denomination_cents: int
    cost_per_card_cents: int
    low_stock_threshold: int
    available: int
    claimed: int
    created_at: datetime


def _pool(row: Mapping[str, Any]) -> Pool:
    return Pool(
        id=row['id'],
        brand_id=row['brand_id'],
        denomination_cents=row['denomination_cents'],
        cost_per_card_cents=row['cost_per_card_cents'],
        low_stock_threshold=row['low_stock_threshold'],
        available=int(row['available']),
        claimed=int(row['claimed']),
        created_at=row['created_at'],
    )


def _require_admin(uow: UnitOfWork, subject: str) -> None:
    require_platform_admin(load_caller(uow, subject))


def audit(uow: UnitOfWork, actor: str, action: str, entity_id: str, details: dict[str, Any]) -> None:
    uow.execute(
        'INSERT INTO audit_events (actor, action, entity_type, entity_id, details)'
        " VALUES (:actor, :action, 'card_pool', CAST(:id AS uuid), CAST(:details AS jsonb))",
        actor=actor,
        action=action,
        id=entity_id,
        details=json.dumps(details),
    )


def create_pool(uow: UnitOfWork, subject: str, body: PoolRequest) -> Pool:
    """A new, empty pool (platform admin). The database refuses a denomination its brand does not offer (422)."""
    _require_admin(uow, subject)
    pool_id = uow.value(
        'INSERT INTO card_pools (brand_id, denomination_cents, cost_per_card_cents, low_stock_threshold)'
        ' VALUES (CAST(:brand AS uuid), :denomination, :cost, :threshold) RETURNING id::text',
        brand=str(body.brand_id),
        denomination=body.denomination,
        cost=body.cost_per_card,
        threshold=body.low_stock_threshold,
    )
    audit(
        uow,
        subject,
        'pool.created',
        pool_id,
        {
            'brand_id': str(body.brand_id),
            'denomination_cents': body.denomination,
            'cost_per_card_cents': body.cost_per_card,
            'low_stock_threshold': body.low_stock_threshold,
        },
    )
    return _read_pool(uow, pool_id)


def _read_pool(uow: UnitOfWork, pool_id: str) -> Pool:
    row = uow.fetch_one(_POOL + ' WHERE p.id = CAST(:id AS uuid)', id=pool_id) if is_uuid(pool_id) else None
    if row is None:
        raise errors.NotFound('No such pool.')
    return _pool(row)


def get_pool(uow: UnitOfWork, subject: str, pool_id: str) -> Pool:
    _require_admin(uow, subject)
    return _read_pool(uow, pool_id)


def list_pools(
    uow: UnitOfWork,
    subject: str,
    *,
    brand_id: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> pagination.Page[Pool]:
    """Pools oldest first, optionally of one brand."""
    _require_admin(uow, subject)
    if brand_id is not None and not is_uuid(brand_id):
        raise errors.ValidationFailed(
            'brand_id: not a valid id', details=[{'field': 'brand_id', 'message': 'not a valid id'}]
        )
    after_at, after_id = pagination.decode_cursor(cursor)
    if cursor is not None and not (_is_timestamp(after_at) and is_uuid(after_id)):
        raise errors.ValidationFailed(
            'cursor: not a cursor this API issued',
            details=[{'field': 'cursor', 'message': 'not a cursor this API issued'}],
        )
    rows = uow.fetch(
        _POOL + ' WHERE (CAST(:brand AS uuid) IS NULL OR p.brand_id = CAST(:brand AS uuid))'
        ' AND (CAST(:after_at AS timestamptz) IS NULL'
        '      OR (p.created_at, p.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))'
        ' ORDER BY p.created_at, p.id LIMIT :limit',
        brand=brand_id,
        after_at=after_at,
        after_id=after_id,
        limit=limit + 1,
    )
    return pagination.page_of(rows, limit, lambda r: (r['created_at'], r['id']), _pool)


def _is_timestamp(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


class PoolStock(NamedTuple):
    available: int
    claimed: int
    low_stock_threshold: int


def stock_by_pool(uow: UnitOfWork) -> dict[str, PoolStock]:
    """Available and claimed cards of every pool, in one pass over `available_cards` (for the monitor)."""
    rows = uow.fetch(
        'SELECT p.id::text AS id, p.low_stock_threshold, p.card_count, coalesce(s.available, 0) AS available'
        ' FROM card_pools p LEFT JOIN (SELECT pool_id, count(*) AS available FROM available_cards GROUP BY pool_id) s'
        ' ON s.pool_id = p.id'
    )
    return {
        r['id']: PoolStock(int(r['available']), int(r['card_count']) - int(r['available']), r['low_stock_threshold'])
        for r in rows
    }


_INVENTORY_PROBLEMS = """
SELECT 'card ' || a.card_id || ': listed in available_cards but not an available card of pool ' || a.pool_id
       AS problem
  FROM available_cards a
 WHERE NOT EXISTS (SELECT 1 FROM cards c WHERE c.id = a.card_id AND c.pool_id = a.pool_id AND c.status = 'available')
UNION ALL
SELECT 'card ' || c.id || ': available but missing from available_cards' FROM cards c
 WHERE c.status = 'available'
   AND NOT EXISTS (SELECT 1 FROM available_cards a WHERE a.pool_id = c.pool_id AND a.card_id = c.id)
UNION ALL
SELECT 'pool ' || p.id || ': card_count ' || p.card_count || ' but ' || coalesce(n.cards, 0) || ' cards'
  FROM card_pools p LEFT JOIN (SELECT pool_id, count(*) AS cards FROM cards GROUP BY pool_id) n ON n.pool_id = p.id
 WHERE p.card_count <> coalesce(n.cards, 0)
"""


def check_inventory(uow: UnitOfWork) -> list[str]:
    """Where the stock bookkeeping disagrees with the cards (empty when it agrees): a full scan, for checks."""
    return [row['problem'] for row in uow.fetch(_INVENTORY_PROBLEMS)]
