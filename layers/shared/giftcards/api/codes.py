"""Routes of redemption codes for administrators: issue (shown once), list (masked), void; and the redemption
attempts for fraud review."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from giftcards import codes, pagination, ratelimit
from giftcards.api.app import caller_subject
from giftcards.money import Amount

router = Router()

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]
NO_STORE = {'Cache-Control': 'no-store'}


class NewCodes(BaseModel):
    model_config = ConfigDict(extra='forbid')

    brand_id: Annotated[str, Field(max_length=64)]
    denomination: Amount
    count: Annotated[StrictInt, Field(ge=1, le=codes.MAX_ISSUE)]


def _wants_csv() -> bool:
    accept = router.current_event.headers.get('accept') or ''
    return any(part.split(';')[0].strip().lower() == 'text/csv' for part in accept.split(','))


@router.post(
    '/campaigns/<campaign_id>/codes',
    summary='Issue redemption codes for a brand and denomination (the campaign admin, or above)',
    description='The codes are in this answer only (JSON, or CSV with Accept: text/csv); only hashes are stored.',
)
def post_codes(campaign_id: str, body: NewCodes) -> Response[Any]:
    batch = codes.issue_codes(caller_subject(router), campaign_id, body.brand_id, body.denomination, body.count)
    if _wants_csv():
        filename = f'redemption-codes-{batch.batch_id}.csv'
        return Response(
            status_code=201,
            content_type='text/csv; charset=utf-8',
            body=batch.as_csv(),
            headers={**NO_STORE, 'Content-Disposition': f'attachment; filename="{filename}"'},
        )
    return Response(status_code=201, content_type='application/json', body=batch.as_json(), headers=NO_STORE)


@router.get('/campaigns/<campaign_id>/codes', summary="A campaign's redemption codes, masked")
def get_codes(
    campaign_id: str,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: Annotated[codes.CodeStatus | None, Query(description='issued, redeemed or void')] = None,
) -> dict[str, Any]:
    return codes.list_codes(caller_subject(router), campaign_id, limit, cursor, status)


@router.post('/codes/<code_id>/void', summary='Void an issued redemption code (the campaign admin, or above)')
def post_void(code_id: str) -> dict[str, Any]:
    return codes.void_code(caller_subject(router), code_id)


@router.get('/redemption-attempts', summary='Attempts at the public redeem route, newest first (platform admin)')
def get_attempts(
    ip: Annotated[str | None, Query(max_length=64, description='an IP address or CIDR block')] = None,
    since: Annotated[datetime | None, Query(description='ISO 8601 time; without a zone, UTC')] = None,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> dict[str, Any]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return ratelimit.list_attempts(caller_subject(router), ip, since, limit, cursor)
