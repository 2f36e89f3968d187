"""Routes of redemption codes for administrators: issue (shown once), list (masked), void; and the redemption
attempts for fraud review."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field, StrictInt

from giftcards import code_administration, codes, pagination, ratelimit
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Body, Dollars, Page
from giftcards.code_administration import IssuedBatch
from giftcards.money import Amount, to_dollars

router = Router()

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]
NO_STORE = {'Cache-Control': 'no-store'}


class NewCodes(Body):
    brand_id: Annotated[str, Field(max_length=64)]
    denomination: Amount
    count: Annotated[StrictInt, Field(ge=1, le=code_administration.MAX_ISSUE)]


class IssuedCodesOut(Answer):
    batch_id: str
    campaign_id: str
    brand_id: str
    denomination: Dollars
    count: int
    codes: list[str] = Field(description='shown in this answer only: only their hashes are stored')

    @classmethod
    def of(cls, batch: IssuedBatch) -> IssuedCodesOut:
        return cls(
            batch_id=batch.batch_id,
            campaign_id=batch.campaign_id,
            brand_id=batch.brand_id,
            denomination=to_dollars(batch.denomination_cents),
            count=len(batch.codes),
            codes=batch.codes,
        )


def issued_codes_csv(batch: IssuedBatch) -> str:
    """The batch as a CSV file, for `Accept: text/csv`: a header, then one line per code."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n')
    writer.writerow(['code', 'brand_id', 'denomination'])
    denomination = to_dollars(batch.denomination_cents)
    writer.writerows([code, batch.brand_id, denomination] for code in batch.codes)
    return out.getvalue()


class CodeOut(Answer):
    """An issued code, masked: only its last 4 characters are known after it was issued."""

    id: str
    campaign_id: str
    brand_id: str
    denomination: Dollars
    code: str = Field(description='the code masked, as ****-****-****-XXXX')
    last4: str
    status: codes.CodeStatus
    batch_id: str
    issued_by: str
    issued_at: datetime
    redeemed_at: datetime | None
    voided_at: datetime | None

    @classmethod
    def of(cls, code: code_administration.RedemptionCode) -> CodeOut:
        return cls(
            id=code.id,
            campaign_id=code.campaign_id,
            brand_id=code.brand_id,
            denomination=to_dollars(code.denomination_cents),
            code=codes.masked(code.last4),
            last4=code.last4,
            status=code.status,
            batch_id=code.batch_id,
            issued_by=code.issued_by,
            issued_at=code.issued_at,
            redeemed_at=code.redeemed_at,
            voided_at=code.voided_at,
        )


class AttemptOut(Answer):
    """An attempt at the public redeem route: where it came from and how it ended."""

    id: int
    at: datetime
    ip: str
    network: str = Field(description='what the failure limit counts against: the IPv4 address, or the IPv6 /64')
    user_agent: str | None
    outcome: ratelimit.Outcome
    code_id: str | None

    @classmethod
    def of(cls, attempt: ratelimit.Attempt) -> AttemptOut:
        return cls(
            id=attempt.id,
            at=attempt.at,
            ip=attempt.ip,
            network=attempt.network,
            user_agent=attempt.user_agent,
            outcome=attempt.outcome,
            code_id=attempt.code_id,
        )


def _wants_csv() -> bool:
    accept = router.current_event.headers.get('accept') or ''
    return any(part.split(';')[0].strip().lower() == 'text/csv' for part in accept.split(','))


CAMPAIGN_ADMINS = {
    403: '`forbidden`: only an admin of the campaign may',
    404: '`not_found`: no such campaign for this caller',
}


@router.post(
    '/campaigns/<campaign_id>/codes',
    summary='Issue redemption codes for a brand and denomination (the campaign admin, or above)',
    description='The codes are in this answer only (JSON, or CSV with Accept: text/csv); only hashes are stored.',
    responses=answers(
        SIGNED_IN
        | BODY
        | COMMITS
        | CAMPAIGN_ADMINS
        | {
            409: '`campaign_not_active`: the campaign has ended',
            422: '`validation_error`: a field is not valid, the brand does not exist or does not offer the '
            'denomination (`error.details` names each), or `invalid_text`',
        },
        status=201,
        description='The codes, shown once',
        content={
            'application/json': {'model': IssuedCodesOut},
            'text/csv': {'schema': {'type': 'string', 'description': 'header code,brand_id,denomination'}},
        },
    ),
)
def post_codes(campaign_id: str, body: NewCodes) -> Response[IssuedCodesOut | str]:
    batch = code_administration.issue_codes(
        caller_subject(router), campaign_id, body.brand_id, body.denomination, body.count
    )
    if _wants_csv():
        filename = f'redemption-codes-{batch.batch_id}.csv'
        return Response(
            status_code=201,
            content_type='text/csv; charset=utf-8',
            body=issued_codes_csv(batch),
            headers={**NO_STORE, 'Content-Disposition': f'attachment; filename="{filename}"'},
        )
    return Response(status_code=201, content_type='application/json', body=IssuedCodesOut.of(batch), headers=NO_STORE)


@router.get(
    '/campaigns/<campaign_id>/codes',
    summary="A campaign's redemption codes, masked",
    responses=answers(SIGNED_IN | CAMPAIGN_ADMINS),
)
def get_codes(
    campaign_id: str,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: Annotated[codes.CodeStatus | None, Query(description='issued, redeemed or void')] = None,
) -> Page[CodeOut]:
    found = code_administration.list_codes(caller_subject(router), campaign_id, limit, cursor, status)
    return Page[CodeOut].of(found, CodeOut.of)


@router.post(
    '/codes/<code_id>/void',
    summary='Void an issued redemption code (the campaign admin, or above)',
    description='Voiding a void code again answers it as it is.',
    responses=answers(
        SIGNED_IN
        | COMMITS
        | {
            403: '`forbidden`: only an admin of the campaign may',
            404: '`not_found`: no such code for this caller',
            409: '`code_redeemed`: a redeemed code cannot be voided',
        }
    ),
)
def post_void(code_id: str) -> CodeOut:
    return CodeOut.of(code_administration.void_code(caller_subject(router), code_id))


@router.get(
    '/redemption-attempts',
    summary='Attempts at the public redeem route, newest first (platform admin)',
    responses=answers(SIGNED_IN | {403: '`forbidden`: only a platform admin may'}),
)
def get_attempts(
    ip: Annotated[str | None, Query(max_length=64, description='an IP address or CIDR block')] = None,
    since: Annotated[datetime | None, Query(description='ISO 8601 time; without a zone, UTC')] = None,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AttemptOut]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    found = ratelimit.list_attempts(caller_subject(router), ip, since, limit, cursor)
    return Page[AttemptOut].of(found, AttemptOut.of)
