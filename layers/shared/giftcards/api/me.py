"""GET /me: the signed-in person and what their memberships let them administer, named. The console starts here:
the API, not the console, decides which agencies and clients a person sees."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from giftcards import memberships
from giftcards.api.app import SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer

router = Router()


class AdministeredAgency(Answer):
    id: str
    name: str
    account_id: str

    @classmethod
    def of(cls, tenant: memberships.Tenant) -> AdministeredAgency:
        return cls(id=tenant.id, name=tenant.name, account_id=tenant.account_id)


class AdministeredClient(Answer):
    id: str
    agency_id: str
    name: str
    account_id: str

    @classmethod
    def of(cls, tenant: memberships.Tenant) -> AdministeredClient:
        assert tenant.agency_id is not None
        return cls(id=tenant.id, agency_id=tenant.agency_id, name=tenant.name, account_id=tenant.account_id)


class Me(Answer):
    subject: str = Field(description="the token's `sub` (or an app client's `client_id`)")
    platform_admin: bool
    agencies: list[AdministeredAgency] = Field(description='agencies whose admin the caller is')
    clients: list[AdministeredClient] = Field(description='clients whose admin the caller is')

    @classmethod
    def of(cls, signed_in: memberships.SignedIn) -> Me:
        return cls(
            subject=signed_in.subject,
            platform_admin=signed_in.platform_admin,
            agencies=[AdministeredAgency.of(a) for a in signed_in.agencies],
            clients=[AdministeredClient.of(c) for c in signed_in.clients],
        )


@router.get(
    '/me',
    summary='The caller and the agencies and clients it administers',
    description='Empty lists and `platform_admin: false` for a signed-in person without memberships (or an '
    'integration, which administers nothing).',
    responses=answers(SIGNED_IN),
)
def get_me() -> Me:
    return Me.of(memberships.signed_in(caller_subject(router)))
