"""`GET /redemptions`: redemptions of a campaign, client or agency with masked cards and profit totals."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from giftcards import pagination, redemptions
from giftcards.api.app import SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Dollars, IsoTimestamp
from giftcards.card_secrets import masked
from giftcards.money import to_dollars
from giftcards.redemptions import Totals

router = Router()

ScopeId = Annotated[str | None, Query(max_length=64)]
HIDDEN_FROM_CLIENTS = 'null for a client admin'


class RedemptionOut(Answer):
    id: str
    campaign_id: str
    client_id: str
    brand_id: str
    brand_name: str
    denomination: Dollars
    status: redemptions.Status
    source: Literal['csv', 'api'] | None
    redemption_code: str | None = Field(description='masked: its last 4 characters')
    card: str | None = Field(description='masked: its last 4 characters')
    amount_charged: Dollars
    cost_basis: Dollars | None = Field(description=HIDDEN_FROM_CLIENTS)
    agency_price: Dollars | None = Field(description=HIDDEN_FROM_CLIENTS)
    profit: Dollars | None = Field(description=f'fulfilled redemptions; {HIDDEN_FROM_CLIENTS}')
    vendor: str | None
    recipient_id: str | None
    delivery_method: str | None
    created_at: IsoTimestamp
    fulfilled_at: IsoTimestamp | None
    failed_at: IsoTimestamp | None

    @classmethod
    def of(cls, redemption: redemptions.Redemption) -> RedemptionOut:
        return cls(
            id=redemption.id,
            campaign_id=redemption.campaign_id,
            client_id=redemption.client_id,
            brand_id=redemption.brand_id,
            brand_name=redemption.brand_name,
            denomination=to_dollars(redemption.denomination_cents),
            status=redemption.status,
            source=redemption.source,
            redemption_code=masked(redemption.code_last4),
            card=masked(redemption.card_last4),
            amount_charged=to_dollars(redemption.amount_charged_cents),
            cost_basis=_dollars(redemption.cost_basis_cents),
            agency_price=_dollars(redemption.agency_price_cents),
            profit=_dollars(redemption.profit_cents),
            vendor=redemption.vendor,
            recipient_id=redemption.recipient_id,
            delivery_method=redemption.delivery_method,
            created_at=redemption.created_at,
            fulfilled_at=redemption.fulfilled_at,
            failed_at=redemption.failed_at,
        )


class RedemptionTotals(Answer):
    """The whole scope's, on every page; charged, cost and profit of fulfilled redemptions."""

    redemptions: int
    pending: int
    failed: int
    charged: Dollars
    cost: Dollars | None = Field(description=HIDDEN_FROM_CLIENTS)
    profit: Dollars | None = Field(description=HIDDEN_FROM_CLIENTS)

    # `Totals` rather than `redemptions.Totals`: in this class, `redemptions` is the field.
    @classmethod
    def of(cls, totals: Totals) -> RedemptionTotals:
        return cls(
            redemptions=totals.redemptions,
            pending=totals.pending,
            failed=totals.failed,
            charged=to_dollars(totals.charged_cents),
            cost=_dollars(totals.cost_cents),
            profit=_dollars(totals.profit_cents),
        )


class RedemptionPage(Answer):
    items: list[RedemptionOut]
    next_cursor: str | None
    totals: RedemptionTotals

    @classmethod
    def of(cls, listing: redemptions.Listing) -> RedemptionPage:
        return cls(
            items=[RedemptionOut.of(redemption) for redemption in listing.page.items],
            next_cursor=listing.page.next_cursor,
            totals=RedemptionTotals.of(listing.totals),
        )


def _dollars(cents: int | None) -> Dollars | None:
    return None if cents is None else to_dollars(cents)


@router.get(
    '/redemptions',
    summary='Redemptions newest first, with masked cards and the totals of the scope',
    description='Give at most one of campaign_id, client_id and agency_id; without one, every redemption (platform '
    'admin).',
    responses=answers(
        SIGNED_IN
        | {
            403: "`forbidden`: only the scope's admins (a platform admin for every redemption) may",
            404: '`not_found`: no such campaign, client or agency for this caller',
        }
    ),
)
def list_redemptions(
    campaign_id: ScopeId = None,
    client_id: ScopeId = None,
    agency_id: ScopeId = None,
    status: Annotated[redemptions.Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RedemptionPage:
    found = redemptions.list_redemptions(
        caller_subject(router),
        campaign_id=campaign_id,
        client_id=client_id,
        agency_id=agency_id,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    return RedemptionPage.of(found)
