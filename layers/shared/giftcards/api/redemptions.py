"""`GET /redemptions`: redemptions of a campaign, client or agency with masked cards and profit totals."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from giftcards import pagination, redemptions
from giftcards.api.app import caller_subject

router = Router()

ScopeId = Annotated[str | None, Query(max_length=64)]


@router.get('/redemptions')
def list_redemptions(
    campaign_id: ScopeId = None,
    client_id: ScopeId = None,
    agency_id: ScopeId = None,
    status: Annotated[redemptions.Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    return redemptions.list_redemptions(
        caller_subject(router),
        campaign_id=campaign_id,
        client_id=client_id,
        agency_id=agency_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
