"""Routes of the credit hierarchy and the brand catalogue: platform, agencies, clients, campaigns, brands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field, model_validator

from giftcards import hierarchy, limits, pagination
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Body, Dollars, Page
from giftcards.money import Amount, to_dollars

router = Router()

Name = limits.NameText
Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]


# --- request bodies ------------------------------------------------------------------------------------


class NewAgency(Body):
    name: Name


class NewClient(Body):
    name: Name


class NewCampaign(Body):
    name: Name
    budget_mode: hierarchy.BudgetMode


class CampaignChange(Body):
    status: hierarchy.CampaignStatus | None = None
    budget_mode: hierarchy.BudgetMode | None = None

    @model_validator(mode='after')
    def _something_to_change(self) -> CampaignChange:
        if self.status is None and self.budget_mode is None:
            raise ValueError('give status, budget_mode or both')
        return self


class NewPrice(Body):
    denomination: Amount
    agency_price: Amount | None = None
    client_price: Amount | None = None

    @model_validator(mode='after')
    def _some_price(self) -> NewPrice:
        if self.agency_price is None and self.client_price is None:
            raise ValueError('give agency_price, client_price or both')
        return self


class NewBrand(Body):
    name: Name
    denominations: Annotated[list[Amount], Field(min_length=1, max_length=50)]
    prices: Annotated[list[NewPrice], Field(max_length=50)] = []

    @model_validator(mode='after')
    def _consistent(self) -> NewBrand:
        if len(set(self.denominations)) != len(self.denominations):
            raise ValueError('denominations must be unique')
        priced = [p.denomination for p in self.prices]
        if len(set(priced)) != len(priced):
            raise ValueError('prices: one price per denomination')
        if not set(priced) <= set(self.denominations):
            raise ValueError('prices: every denomination must be one of the brand denominations')
        return self


# --- answers -------------------------------------------------------------------------------------------


class PlatformOut(Answer):
    account_id: str
    balance: Dollars

    @classmethod
    def of(cls, platform: hierarchy.PlatformAccount) -> PlatformOut:
        return cls(account_id=platform.account_id, balance=to_dollars(platform.balance_cents))


class AgencyOut(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    created_at: datetime

    @classmethod
    def of(cls, agency: hierarchy.Agency) -> AgencyOut:
        return cls(
            id=agency.id,
            name=agency.name,
            account_id=agency.account_id,
            balance=to_dollars(agency.balance_cents),
            created_at=agency.created_at,
        )


class ClientOut(Answer):
    id: str
    agency_id: str
    name: str
    account_id: str
    balance: Dollars

    @classmethod
    def of(cls, client: hierarchy.Client) -> ClientOut:
        return cls(
            id=client.id,
            agency_id=client.agency_id,
            name=client.name,
            account_id=client.account_id,
            balance=to_dollars(client.balance_cents),
        )


class CampaignOut(Answer):
    id: str
    client_id: str
    name: str
    status: hierarchy.CampaignStatus
    budget_mode: hierarchy.BudgetMode
    account_id: str
    balance: Dollars

    @classmethod
    def of(cls, campaign: hierarchy.Campaign) -> CampaignOut:
        return cls(
            id=campaign.id,
            client_id=campaign.client_id,
            name=campaign.name,
            status=campaign.status,
            budget_mode=campaign.budget_mode,
            account_id=campaign.account_id,
            balance=to_dollars(campaign.balance_cents),
        )


class PriceOut(Answer):
    denomination: Dollars
    agency_price: Dollars | None
    client_price: Dollars | None

    @classmethod
    def of(cls, price: hierarchy.Price) -> PriceOut:
        return cls(
            denomination=to_dollars(price.denomination_cents),
            agency_price=_dollars(price.agency_price_cents),
            client_price=_dollars(price.client_price_cents),
        )


class BrandOut(Answer):
    id: str
    name: str
    denominations: list[Dollars]
    prices: list[PriceOut]
    created_at: datetime

    @classmethod
    def of(cls, brand: hierarchy.Brand) -> BrandOut:
        return cls(
            id=brand.id,
            name=brand.name,
            denominations=[to_dollars(cents) for cents in brand.denominations_cents],
            prices=[PriceOut.of(price) for price in brand.prices],
            created_at=brand.created_at,
        )


def _dollars(cents: int | None) -> Dollars | None:
    return None if cents is None else to_dollars(cents)


def _created(answer: Answer) -> Response[Any]:
    return Response(status_code=201, content_type='application/json', body=answer)


# --- routes --------------------------------------------------------------------------------------------

PLATFORM_ONLY = {403: '`forbidden`: only a platform admin may'}
CREATES = SIGNED_IN | BODY | COMMITS


def _no_such(entity: str) -> dict[int, str]:
    return {404: f'`not_found`: no such {entity} for this caller'}


@router.get(
    '/platform',
    summary='The platform credit account (platform admin)',
    responses=answers(SIGNED_IN | PLATFORM_ONLY),
)
def get_platform() -> PlatformOut:
    return PlatformOut.of(hierarchy.platform(caller_subject(router)))


@router.post(
    '/agencies',
    summary='Create an agency with its credit account (platform admin)',
    responses=answers(CREATES | PLATFORM_ONLY, status=201),
)
def post_agency(body: NewAgency) -> Response[AgencyOut]:
    return _created(AgencyOut.of(hierarchy.create_agency(caller_subject(router), body.name)))


@router.get('/agencies', summary='Agencies the caller may see', responses=answers(SIGNED_IN))
def get_agencies(limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> Page[AgencyOut]:
    return Page[AgencyOut].of(hierarchy.list_agencies(caller_subject(router), limit, cursor), AgencyOut.of)


@router.get('/agencies/<agency_id>', summary='One agency', responses=answers(SIGNED_IN | _no_such('agency')))
def get_agency(agency_id: str) -> AgencyOut:
    return AgencyOut.of(hierarchy.get_agency(caller_subject(router), agency_id))


@router.post(
    '/agencies/<agency_id>/clients',
    summary="Create a client of an agency (the agency's admin)",
    responses=answers(CREATES | _no_such('agency') | {403: "`forbidden`: only the agency's admins may"}, status=201),
)
def post_client(agency_id: str, body: NewClient) -> Response[ClientOut]:
    return _created(ClientOut.of(hierarchy.create_client(caller_subject(router), agency_id, body.name)))


@router.get(
    '/agencies/<agency_id>/clients', summary="An agency's clients", responses=answers(SIGNED_IN | _no_such('agency'))
)
def get_clients(agency_id: str, limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> Page[ClientOut]:
    return Page[ClientOut].of(hierarchy.list_clients(caller_subject(router), agency_id, limit, cursor), ClientOut.of)


@router.get('/clients/<client_id>', summary='One client', responses=answers(SIGNED_IN | _no_such('client')))
def get_client(client_id: str) -> ClientOut:
    return ClientOut.of(hierarchy.get_client(caller_subject(router), client_id))


@router.post(
    '/clients/<client_id>/campaigns',
    summary="Create a campaign of a client (the client's admin)",
    responses=answers(CREATES | _no_such('client') | {403: "`forbidden`: only the client's admins may"}, status=201),
)
def post_campaign(client_id: str, body: NewCampaign) -> Response[CampaignOut]:
    campaign = hierarchy.create_campaign(caller_subject(router), client_id, body.name, body.budget_mode)
    return _created(CampaignOut.of(campaign))


@router.get(
    '/clients/<client_id>/campaigns', summary="A client's campaigns", responses=answers(SIGNED_IN | _no_such('client'))
)
def get_campaigns(client_id: str, limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> Page[CampaignOut]:
    campaigns = hierarchy.list_campaigns(caller_subject(router), client_id, limit, cursor)
    return Page[CampaignOut].of(campaigns, CampaignOut.of)


@router.get('/campaigns/<campaign_id>', summary='One campaign', responses=answers(SIGNED_IN | _no_such('campaign')))
def get_campaign(campaign_id: str) -> CampaignOut:
    return CampaignOut.of(hierarchy.get_campaign(caller_subject(router), campaign_id))


@router.patch(
    '/campaigns/<campaign_id>',
    summary='Pause, resume or end a campaign, or switch its budget mode',
    description="'ended' is final. Switching isolated -> shared returns the campaign's balance to its client.",
    responses=answers(
        SIGNED_IN
        | BODY
        | COMMITS
        | _no_such('campaign')
        | {403: "`forbidden`: only the client's admins may", 409: '`campaign_ended`: an ended campaign is final'}
    ),
)
def patch_campaign(campaign_id: str, body: CampaignChange) -> CampaignOut:
    campaign = hierarchy.update_campaign(
        caller_subject(router), campaign_id, status=body.status, budget_mode=body.budget_mode
    )
    return CampaignOut.of(campaign)


@router.post(
    '/brands',
    summary='Create a brand with its denominations and price list (platform admin)',
    responses=answers(CREATES | PLATFORM_ONLY | {409: '`duplicate_brand`: a brand has this name'}, status=201),
)
def post_brand(body: NewBrand) -> Response[BrandOut]:
    prices = [hierarchy.Price(p.denomination, p.agency_price, p.client_price) for p in body.prices]
    return _created(BrandOut.of(hierarchy.create_brand(caller_subject(router), body.name, body.denominations, prices)))


@router.get('/brands', summary='The brand catalogue (any admin)', responses=answers(SIGNED_IN))
def get_brands(limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> Page[BrandOut]:
    return Page[BrandOut].of(hierarchy.list_brands(caller_subject(router), limit, cursor), BrandOut.of)


@router.get(
    '/brands/<brand_id>',
    summary='One brand',
    responses=answers(SIGNED_IN | _no_such('brand')),
)
def get_brand(brand_id: str) -> BrandOut:
    return BrandOut.of(hierarchy.get_brand(caller_subject(router), brand_id))
