"""Routes of what deliveries depend on: a campaign's message content, a brand's instructions, and SMS opt-ins.

`PUT /campaigns/{campaign_id}/delivery`, `PUT /brands/{brand_id}/message`, `POST` and `GET
/clients/{client_id}/sms-consents`. A redemption's delivery itself is under `/redemptions` (`api.redemptions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field, StringConstraints

from giftcards import deliveries, delivery_settings, pagination
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Body, IsoTimestamp, Page

router = Router()

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]
Instructions = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class DeliveryContent(Body):
    content: deliveries.Content = Field(
        description='`link`: a single-use link to the redeem page, where the card is shown; `card`: the card itself'
    )


class BrandInstructions(Body):
    instructions: Instructions = Field(
        description='how to spend the card, in every message about one; `{brand}` stands for its name'
    )


class NewSmsConsent(Body):
    phone: Phone = Field(description='in international form (E.164); spaces and dashes are ignored')
    source: Source = Field(description='where the opt-in was given, e.g. "checkout form, terms v3"')
    opted_in_at: datetime | None = Field(None, description='when it was given, with a time zone; default: now')


class CampaignDeliveryOut(Answer):
    campaign_id: str
    client_id: str
    content: deliveries.Content
    updated_at: IsoTimestamp

    @classmethod
    def of(cls, value: delivery_settings.CampaignDelivery) -> CampaignDeliveryOut:
        return cls(
            campaign_id=value.campaign_id, client_id=value.client_id, content=value.content, updated_at=value.updated_at
        )


class BrandMessageOut(Answer):
    brand_id: str
    instructions: str
    updated_at: IsoTimestamp

    @classmethod
    def of(cls, value: delivery_settings.BrandMessage) -> BrandMessageOut:
        return cls(brand_id=value.brand_id, instructions=value.instructions, updated_at=value.updated_at)


class SmsConsentOut(Answer):
    """An opt-in the client recorded, and the number's opt-out (a STOP reply) if one holds: then nothing is sent."""

    client_id: str
    phone: str
    opted_in_at: IsoTimestamp
    source: str
    recorded_at: IsoTimestamp
    opted_out_at: IsoTimestamp | None
    opt_out_source: str | None

    @classmethod
    def of(cls, value: delivery_settings.SmsConsent) -> SmsConsentOut:
        return cls(
            client_id=value.client_id,
            phone=value.phone,
            opted_in_at=value.opted_in_at,
            source=value.source,
            recorded_at=value.recorded_at,
            opted_out_at=value.opted_out_at,
            opt_out_source=value.opt_out_source,
        )


def _no_such(entity: str) -> dict[int, str]:
    return {404: f'`not_found`: no such {entity} for this caller'}


CHANGES = SIGNED_IN | BODY | COMMITS


@router.put(
    '/campaigns/<campaign_id>/delivery',
    summary="What the campaign's messages to recipients hold (the client's admins)",
    description='Applies to cards fulfilled from now on; a delivery keeps what its campaign had when it was written.',
    responses=answers(CHANGES | _no_such('campaign') | {403: "`forbidden`: only the client's admins may"}),
)
def put_campaign_delivery(campaign_id: str, body: DeliveryContent) -> CampaignDeliveryOut:
    value = delivery_settings.set_campaign_content(caller_subject(router), campaign_id, body.content)
    return CampaignDeliveryOut.of(value)


@router.put(
    '/brands/<brand_id>/message',
    summary="The brand's redemption instructions in messages to recipients (platform admin)",
    responses=answers(CHANGES | _no_such('brand') | {403: '`forbidden`: only a platform admin may'}),
)
def put_brand_message(brand_id: str, body: BrandInstructions) -> BrandMessageOut:
    return BrandMessageOut.of(
        delivery_settings.set_brand_instructions(caller_subject(router), brand_id, body.instructions)
    )


@router.post(
    '/clients/<client_id>/sms-consents',
    summary="Record a phone number's opt-in to the client's SMS (the client's admins)",
    description='An SMS goes only to a number with a recorded opt-in. Recording it again replaces it.',
    responses=answers(
        CHANGES
        | _no_such('client')
        | {
            403: "`forbidden`: only the client's admins may",
            409: '`recipient_opted_out`: the number replied STOP; it receives nothing until it replies START',
        },
        status=201,
    ),
)
def post_sms_consent(client_id: str, body: NewSmsConsent) -> Response[SmsConsentOut]:
    value = delivery_settings.record_sms_consent(
        caller_subject(router), client_id, body.phone, body.source, body.opted_in_at
    )
    return Response(status_code=201, content_type='application/json', body=SmsConsentOut.of(value))


@router.get(
    '/clients/<client_id>/sms-consents',
    summary="The client's recorded SMS opt-ins by number, with opt-outs (the client's admins)",
    responses=answers(SIGNED_IN | _no_such('client') | {403: "`forbidden`: only the client's admins may"}),
)
def get_sms_consents(
    client_id: str,
    phone: Annotated[Phone | None, Query(description='one number')] = None,
    limit: Limit = pagination.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[SmsConsentOut]:
    found = delivery_settings.list_sms_consents(
        caller_subject(router), client_id, phone=phone, limit=limit, cursor=cursor
    )
    return Page[SmsConsentOut].of(found, SmsConsentOut.of)
