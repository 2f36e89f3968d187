"""Routes of CSV card pools (platform admin): create, list and read pools, import a CSV file of cards.

The import body is the CSV file itself (`Content-Type: text/csv`). Lambda takes at most 6 MB per synchronous
request (API Gateway's own limit is 10 MB), so one file holds about 100,000 cards of code and number
(~35-60 bytes a line); larger inventories are imported as several files.
"""

from __future__ import annotations

import binascii
import io
from base64 import b64decode
from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from giftcards import card_import, errors, pagination, pools
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Dollars
from giftcards.db import UnitOfWork
from giftcards.money import to_dollars

router = Router()

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]
BrandFilter = Annotated[str | None, Query(max_length=64, description='only pools of this brand')]
PLATFORM_ONLY = {403: '`forbidden`: only a platform admin may'}
NO_SUCH_POOL = {404: '`not_found`: no such pool'}


class PoolOut(Answer):
    id: str
    brand_id: str
    denomination: Dollars
    cost_per_card: Dollars
    low_stock_threshold: int
    available: int
    claimed: int
    created_at: datetime

    @classmethod
    def of(cls, pool: pools.Pool) -> PoolOut:
        return cls(
            id=pool.id,
            brand_id=pool.brand_id,
            denomination=to_dollars(pool.denomination_cents),
            cost_per_card=to_dollars(pool.cost_per_card_cents),
            low_stock_threshold=pool.low_stock_threshold,
            available=pool.available,
            claimed=pool.claimed,
            created_at=pool.created_at,
        )


class PoolPage(Answer):
    items: list[PoolOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: pagination.Page[pools.Pool]) -> PoolPage:
        return cls(items=[PoolOut.of(pool) for pool in page.items], next_cursor=page.next_cursor)


class ImportOut(Answer):
    imported: int


@router.post(
    '/pools',
    summary='Create a CSV card pool for one brand and denomination (platform admin)',
    responses=answers(SIGNED_IN | BODY | COMMITS | PLATFORM_ONLY, status=201),
)
def post_pool(body: pools.PoolRequest) -> Response[PoolOut]:
    subject = caller_subject(router)
    with UnitOfWork() as uow:
        pool = pools.create_pool(uow, subject, body)
        uow.commit()
    return Response(status_code=201, content_type='application/json', body=PoolOut.of(pool))


@router.get(
    '/pools',
    summary='CSV card pools with their stock, oldest first (platform admin)',
    responses=answers(SIGNED_IN | PLATFORM_ONLY),
)
def get_pools(brand_id: BrandFilter = None, limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> PoolPage:
    subject = caller_subject(router)
    with UnitOfWork() as uow:
        return PoolPage.of(pools.list_pools(uow, subject, brand_id=brand_id, limit=limit, cursor=cursor))


@router.get(
    '/pools/<pool_id>',
    summary='One CSV card pool with its stock (platform admin)',
    responses=answers(SIGNED_IN | PLATFORM_ONLY | NO_SUCH_POOL),
)
def get_pool(pool_id: str) -> PoolOut:
    subject = caller_subject(router)
    with UnitOfWork() as uow:
        return PoolOut.of(pools.get_pool(uow, subject, pool_id))


@router.post(
    '/pools/<pool_id>/cards',
    summary='Import a CSV file of cards into a pool, all or nothing (platform admin)',
    description=(
        'Body: text/csv, header `card_code,card_number` plus optional `pin`, `expires_on` (YYYY-MM-DD) in any '
        'order; CR LF and a UTF-8 BOM are accepted. A bad file answers 422 with `error.details: [{line, message}]` '
        '(the header is line 1) and imports nothing. At most 6 MB per request (about 100,000 cards).'
    ),
    responses=answers(
        SIGNED_IN
        | COMMITS
        | PLATFORM_ONLY
        | NO_SUCH_POOL
        | {
            400: '`bad_request`: the body is not valid base64',
            409: '`import_in_progress`: another import into this pool is running',
            415: '`unsupported_media_type`: the body is not text/csv in UTF-8',
            422: '`invalid_file`: the file was refused, nothing was imported (`error.details`: line and message of '
            'each problem)',
        },
        status=201,
    ),
)
def post_cards(pool_id: str) -> Response[ImportOut]:
    subject = caller_subject(router)
    event = router.current_event
    media_type, _, parameters = (event.headers.get('content-type') or '').partition(';')
    charset = next(
        (
            p.split('=', 1)[1].strip().strip('"').lower()
            for p in parameters.split(';')
            if p.strip().lower().startswith('charset=')
        ),
        'utf-8',
    )
    if media_type.strip().lower() != 'text/csv' or charset not in ('utf-8', 'utf8'):
        raise errors.UnsupportedMediaType('Send the file as text/csv in UTF-8.')
    imported = card_import.import_cards(
        subject, pool_id, io.BytesIO(_raw_body(event.body, bool(event.is_base64_encoded)))
    )
    return Response(status_code=201, content_type='application/json', body=ImportOut(imported=imported))


def _raw_body(body: str | None, base64_encoded: bool) -> bytes:
    if not body:
        return b''
    try:
        return b64decode(body, validate=True) if base64_encoded else body.encode('utf-8')
    except binascii.Error:
        raise errors.BadRequest('The body is not valid base64.') from None
    except UnicodeEncodeError:
        raise errors.ValidationFailed(
            'The file is not valid UTF-8.',
            code='invalid_file',
            details=[{'line': 1, 'message': 'the file is not valid UTF-8'}],
        ) from None
