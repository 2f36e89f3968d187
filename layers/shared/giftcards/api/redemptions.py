"""`GET /redemptions`: redemptions of a campaign, client or agency with masked cards, profit totals and delivery
status; `GET /redemptions/{redemption_id}`: one of them; `POST /redemptions/{redemption_id}/resend`: its delivery
again."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from giftcards import deliveries, pagination, recipients, redemptions
from giftcards.api.app import COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Dollars, IsoTimestamp
from giftcards.card_secrets import masked
from giftcards.money import to_dollars
from giftcards.redemptions import Totals

router = Router()

ScopeId = Annotated[str | None, Query(max_length=64)]
HIDDEN_FROM_CLIENTS = 'null for a client admin'


class DeliveryOut(Answer):
    """Where the card was sent and what became of the current send: `queued` (being sent, or retried after
    `next_attempt_at`), `sent`, `delivered` (the provider confirmed it, or the recipient opened the link), `bounced`,
    `failed` (`last_error` says why)."""

    status: deliveries.Status
    channel: recipients.Channel
    address: str = Field(description='masked')
    content: deliveries.Content = Field(description='what the message holds: a link to the redeem page, or the card')
    send_number: int = Field(description='1 for the first send; each resend adds one')
    resends_left: int
    attempts: int = Field(description='of the current send')
    last_error: str | None
    next_attempt_at: IsoTimestamp | None = Field(description='queued only')
    queued_at: IsoTimestamp
    sent_at: IsoTimestamp | None
    delivered_at: IsoTimestamp | None
    bounced_at: IsoTimestamp | None
    failed_at: IsoTimestamp | None
    complained_at: IsoTimestamp | None
    link_used_at: IsoTimestamp | None = Field(description='when the recipient opened the link (it works once)')

    @classmethod
    def of(cls, delivery: redemptions.Delivery) -> DeliveryOut:
        return cls(
            status=delivery.status,
            channel=delivery.channel,
            address=delivery.address,
            content=delivery.content,
            send_number=delivery.send_number,
            resends_left=delivery.resends_left,
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            next_attempt_at=delivery.next_attempt_at,
            queued_at=delivery.queued_at,
            sent_at=delivery.sent_at,
            delivered_at=delivery.delivered_at,
            bounced_at=delivery.bounced_at,
            failed_at=delivery.failed_at,
            complained_at=delivery.complained_at,
            link_used_at=delivery.link_used_at,
        )


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
    delivery: DeliveryOut | None = Field(description='null when it asked for no delivery, or is not fulfilled yet')

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
            delivery=DeliveryOut.of(redemption.delivery) if redemption.delivery is not None else None,
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
    delivery_status: Annotated[deliveries.Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RedemptionPage:
    found = redemptions.list_redemptions(
        caller_subject(router),
        campaign_id=campaign_id,
        client_id=client_id,
        agency_id=agency_id,
        status=status,
        delivery_status=delivery_status,
        limit=limit,
        cursor=cursor,
    )
    return RedemptionPage.of(found)


NOT_VISIBLE = {404: "`not_found`: no such redemption for this caller (only its client's admins see it)"}


@router.get(
    '/redemptions/<redemption_id>',
    summary='One redemption, with its delivery',
    responses=answers(SIGNED_IN | NOT_VISIBLE),
)
def get_redemption(redemption_id: str) -> RedemptionOut:
    return RedemptionOut.of(redemptions.get_redemption(caller_subject(router), redemption_id))


@router.post(
    '/redemptions/<redemption_id>/resend',
    summary="Send the redemption's card to its recipient again (its client's admins)",
    description=(
        f'Starts the next send: a new message with a new single-use link (the previous link stops working). At most '
        f'{deliveries.MAX_RESENDS} resends, {deliveries.RESEND_INTERVAL_S} s apart. Answers the redemption with its '
        'delivery queued.'
    ),
    responses=answers(
        SIGNED_IN
        | COMMITS
        | NOT_VISIBLE
        | {
            409: '`no_delivery` (it asked for none), `delivery_in_progress` (a send is under way), `resend_limit`, or '
            '`recipient_not_consenting` (no SMS opt-in, or the recipient opted out)',
            429: '`rate_limited`: the last send was too recent; see Retry-After',
        },
        status=202,
        description='The redemption, its delivery queued',
    ),
)
def resend(redemption_id: str) -> Response[RedemptionOut]:
    subject = caller_subject(router)
    deliveries.resend(subject, redemption_id)
    return Response(
        status_code=202,
        content_type='application/json',
        body=RedemptionOut.of(redemptions.get_redemption(subject, redemption_id)),
    )
