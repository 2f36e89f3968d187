"""`POST /provision-gift-card`: the seed's route and camelCase field names, over `provisioning.provision_gift_card`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import Field, StringConstraints

from giftcards import limits, provisioning
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject, source
from giftcards.api.models import Absent, Answer, Body, Dollars, IsoTimestamp, absent
from giftcards.money import Amount, to_dollars
from giftcards.observability import metrics
from giftcards.provisioning import ProvisionRequest, ProvisionResult

router = Router()

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Code = Annotated[str, StringConstraints(pattern=provisioning.CODE_PATTERN)]


class ProvisionBody(Body):
    campaign_id: Id = Field(alias='campaignId')
    brand_id: Id = Field(alias='brandId')
    denomination: Amount
    redemption_code: Code = Field(alias='redemptionCode', description='4-64 letters, digits or dashes')
    recipient_id: limits.RecipientIdText | None = Field(None, alias='recipientId')
    delivery_method: limits.DeliveryMethodText | None = Field(None, alias='deliveryMethod')
    delivery_address: limits.DeliveryAddressText | None = Field(None, alias='deliveryAddress')


Source = Literal['csv', 'api']


class ProvisionedRedemptionOut(Answer):
    """The stored redemption, with the seed's field names (camelCase) as in the body."""

    id: str
    status: Literal['pending', 'fulfilled', 'failed']
    campaignId: str
    brandId: str
    denomination: Dollars
    amountCharged: Dollars
    source: Source
    redemptionCodeLast4: str
    recipientId: str | None
    deliveryMethod: str | None
    createdAt: IsoTimestamp
    fulfilledAt: IsoTimestamp | None


class ProvisionedCard(Answer):
    cardCode: str
    cardNumber: str | None
    cardValue: Dollars
    pin: str | Absent = Field(None, exclude_if=absent, description='present when the card has one')
    expiresOn: date | Absent = Field(None, exclude_if=absent, description='present when the card has one')


class ProvisionAnswer(Answer):
    """A replay answers the same body with `replayed: true`; `campaignPaused: true` when this charge left the payer
    unable to pay for the campaign's cheapest card."""

    success: Literal[True]
    redemption: ProvisionedRedemptionOut
    card: ProvisionedCard
    source: Source
    creditRemaining: Dollars = Field(description="the paying account's balance after the charge")
    campaignPaused: Literal[True] | Absent = Field(None, exclude_if=absent)
    replayed: Literal[True] | Absent = Field(None, exclude_if=absent)


def render(result: ProvisionResult) -> ProvisionAnswer:
    """The 200 answer."""
    r = result.redemption
    card = result.card
    return ProvisionAnswer(
        success=True,
        redemption=ProvisionedRedemptionOut(
            id=r.id,
            status=r.status,
            campaignId=r.campaign_id,
            brandId=r.brand_id,
            denomination=to_dollars(r.denomination_cents),
            amountCharged=to_dollars(r.amount_charged_cents),
            source=r.source,
            redemptionCodeLast4=r.code_last4,
            recipientId=r.recipient_id,
            deliveryMethod=r.delivery_method,
            createdAt=r.created_at,
            fulfilledAt=r.fulfilled_at,
        ),
        card=ProvisionedCard(
            cardCode=card.card_code,
            cardNumber=card.card_number,
            cardValue=to_dollars(r.denomination_cents),
            pin=card.pin or None,
            expiresOn=card.expires_on or None,
        ),
        source=r.source,
        creditRemaining=to_dollars(result.credit_remaining_cents),
        campaignPaused=True if result.campaign_paused else None,
        replayed=True if result.replayed else None,
    )


RETRY_SAFETY = (
    'The redemption code is the idempotency key: the same code again answers the same redemption and card '
    '(`replayed: true`) and never charges or buys twice; the same code with another campaign, brand or denomination '
    'is 409. So every 503 may be followed by the same request: `fulfilment_pending` (a vendor has not confirmed '
    'yet; see Retry-After), `fulfilment_unavailable` (nothing charged), `outcome_unknown` (the database connection '
    'broke while the redemption was being committed), `service_unavailable` and `busy`.'
)


@router.post(
    '/provision-gift-card',
    description=RETRY_SAFETY,
    responses=answers(
        SIGNED_IN
        | BODY
        | COMMITS
        | {
            403: '`forbidden`: the caller may not provision for this campaign',
            404: '`not_found`: no such campaign or brand for this caller',
            409: '`insufficient_credit`, `campaign_not_active`, or the code was used for another request',
            503: '`fulfilment_pending`, `fulfilment_unavailable`, `outcome_unknown`, `service_unavailable`, `busy`',
        },
        description='The redemption and its card',
    ),
)
def provision_gift_card(body: ProvisionBody) -> Response[ProvisionAnswer]:
    subject = caller_subject(router)
    origin = source(router)
    result = provisioning.provision_gift_card(
        ProvisionRequest(
            campaign_id=body.campaign_id,
            brand_id=body.brand_id,
            denomination_cents=body.denomination,
            redemption_code=body.redemption_code,
            recipient_id=body.recipient_id,
            delivery_method=body.delivery_method,
            delivery_address=body.delivery_address,
            source_ip=origin['ip'],
            user_agent=origin['user_agent'],
            channel='api',
        ),
        subject=subject,
    )
    metrics.add_metric(
        name='GiftCardsReplayed' if result.replayed else 'GiftCardsProvisioned', unit=MetricUnit.Count, value=1
    )
    # The body holds a card's secrets: no cache may keep it.
    return Response(
        status_code=200, content_type='application/json', body=render(result), headers={'Cache-Control': 'no-store'}
    )
