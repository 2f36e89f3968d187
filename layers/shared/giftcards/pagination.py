"""Keyset pagination: `?limit=` (default 50, max 500) and an opaque `?cursor=`. A use case answers a `Page`: its
values and the cursor of the next page (None on the last), which the routes render as
`{"items": [...], "next_cursor": "..." | null}`. Rows are ordered by a (sort key, id) pair."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from giftcards import errors

T = TypeVar('T')

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(*key: Any) -> str:
    raw = json.dumps([k.isoformat() if isinstance(k, datetime) else k for k in key], separators=(',', ':'))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip('=')


def decode_cursor(cursor: str | None, size: int = 2) -> list[Any]:
    """The key a cursor carries, or `[None] * size` for the first page. A forged cursor is a 422."""
    if not cursor:
        return [None] * size
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != size or not all(isinstance(k, str | int) for k in key):
        raise _forged()
    return key


def _forged() -> errors.ValidationFailed:
    return errors.ValidationFailed(
        'cursor: not a cursor this API issued', details=[{'field': 'cursor', 'message': 'not a cursor this API issued'}]
    )


def decode_time_cursor(cursor: str | None) -> tuple[datetime | None, str | None]:
    """The (created_at, id) a keyset cursor carries, or (None, None) for the first page; a forged cursor, even one
    that decodes, is a 422 and never reaches SQL."""
    at, key = decode_cursor(cursor)
    if at is None:
        return None, None
    try:
        after_at = datetime.fromisoformat(at) if isinstance(at, str) else None
        after_id = str(uuid.UUID(key)) if isinstance(key, str) else None
    except ValueError:
        after_at = after_id = None
    if after_at is None or after_id is None:
        raise _forged()
    return after_at, after_id


def time_cursor_params(cursor: str | None) -> dict[str, Any]:
    """`decode_time_cursor` as the `:after_at` / `:after_id` SQL parameters."""
    after_at, after_id = decode_time_cursor(cursor)
    return {'after_at': after_at, 'after_id': after_id}


class Page(NamedTuple, Generic[T]):
    """One page of a listing: its values, and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None


def page_of(
    rows: list[dict[str, Any]],
    limit: int,
    key: Callable[[dict[str, Any]], tuple[Any, ...]],
    make: Callable[[dict[str, Any]], T],
) -> Page[T]:
    """`rows` were fetched with LIMIT limit + 1; the extra row only says that another page exists."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([make(r) for r in rows], encode_cursor(*key(rows[-1])) if more and rows else None)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
