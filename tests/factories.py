"""Test data built through the domain: entities, memberships and credit, with unique names and subjects.

The test session shares one database, so every name and subject here is unique. Entities are created by
`giftcards.hierarchy.add_*` in their own committed transaction; memberships by `giftcards.memberships.grant`
on the `owner` fixture's connection (the application role cannot write them). A test that uses these
helpers asks for the `owner` fixture (or `database_url`), which starts the database.

    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    call(lambda_handler, http_event('GET', f"/campaigns/{tree.campaign['id']}", subject=tree.client_admin))
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from giftcards import db, hierarchy, ledger, ledger_checks, memberships
from giftcards.api import hierarchy as routes
from pydantic import BaseModel

FACTORY = 'test-factory'


def unique(prefix: str) -> str:
    """`prefix` with a random suffix: a name or subject no other test uses."""
    return f'{prefix}-{uuid.uuid4().hex[:10]}'


# --- entities ------------------------------------------------------------------------------------------


def _as_json(answer: BaseModel) -> dict[str, Any]:
    """The entity exactly as the API answers it (JSON types: ISO timestamps, dollars)."""
    return answer.model_dump(mode='json')


def agency(name: str | None = None) -> dict[str, Any]:
    """A new agency as the API answers it: {id, name, account_id, balance, created_at}."""
    entity = db.in_transaction(lambda uow: hierarchy.add_agency(uow, name or unique('Agency'), actor=FACTORY))
    return _as_json(routes.AgencyOut.of(entity))


def client(agency_id: str, name: str | None = None) -> dict[str, Any]:
    """A new client of `agency_id`: {id, agency_id, name, account_id, balance}."""
    entity = db.in_transaction(
        lambda uow: hierarchy.add_client(uow, agency_id, name or unique('Client'), actor=FACTORY)
    )
    return _as_json(routes.ClientOut.of(entity))


def campaign(client_id: str, name: str | None = None, budget_mode: hierarchy.BudgetMode = 'isolated') -> dict[str, Any]:
    """A new active campaign of `client_id`: {id, client_id, name, status, budget_mode, account_id, balance}."""
    entity = db.in_transaction(
        lambda uow: hierarchy.add_campaign(uow, client_id, name or unique('Campaign'), budget_mode, actor=FACTORY)
    )
    return _as_json(routes.CampaignOut.of(entity))


def brand(
    name: str | None = None,
    denominations_cents: tuple[int, ...] = (2500, 5000),
    prices: tuple[hierarchy.Price, ...] = (),
) -> dict[str, Any]:
    """A new brand: {id, name, denominations (dollars), prices, created_at}. Prices: `hierarchy.Price(cents...)`."""
    entity = db.in_transaction(
        lambda uow: hierarchy.add_brand(
            uow, name or unique('Brand'), list(denominations_cents), list(prices), actor=FACTORY
        )
    )
    return _as_json(routes.BrandOut.of(entity))


# --- memberships ---------------------------------------------------------------------------------------


def member(owner: Any, role: str, *, agency_id: str | None = None, client_id: str | None = None) -> str:
    """Grant `role` to a new subject (scoped to `agency_id` or `client_id` as the role needs); answers the subject."""
    subject = unique(role)
    memberships.grant(owner, subject, role, agency_id=agency_id, client_id=client_id)
    return subject


def platform_admin(owner: Any) -> str:
    return member(owner, 'platform_admin')


def agency_admin(owner: Any, agency_id: str) -> str:
    return member(owner, 'agency_admin', agency_id=agency_id)


def client_admin(owner: Any, client_id: str) -> str:
    return member(owner, 'client_admin', client_id=client_id)


def integration(owner: Any, client_id: str) -> str:
    return member(owner, 'client_integration', client_id=client_id)


def stranger() -> str:
    """A subject with a valid token and no membership at all."""
    return unique('stranger')


# --- a whole branch of the hierarchy -------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """One agency -> client -> campaign branch and a subject for each role on it."""

    agency: dict[str, Any]
    client: dict[str, Any]
    campaign: dict[str, Any]
    platform_admin: str
    agency_admin: str
    client_admin: str
    integration: str


def hierarchy_tree(owner: Any, budget_mode: hierarchy.BudgetMode = 'isolated') -> Tree:
    """A new agency with one client and one campaign (of `budget_mode`), and one member of each role."""
    new_agency = agency()
    new_client = client(new_agency['id'])
    new_campaign = campaign(new_client['id'], budget_mode=budget_mode)
    return Tree(
        agency=new_agency,
        client=new_client,
        campaign=new_campaign,
        platform_admin=platform_admin(owner),
        agency_admin=agency_admin(owner, new_agency['id']),
        client_admin=client_admin(owner, new_client['id']),
        integration=integration(owner, new_client['id']),
    )


# --- credit --------------------------------------------------------------------------------------------


def fund(cents: int, *account_ids: str) -> None:
    """Allocate `cents` from the platform down through each account in turn, in one transaction.

    `fund(10_000, agency_acc, client_acc, campaign_acc)` leaves $100 on the campaign and nothing on the way.
    """

    def work(uow: db.UnitOfWork) -> None:
        source = ledger.platform_account(uow)
        for target in account_ids:
            ledger.transfer_credit(uow, source, target, cents, 'allocation', initiator=FACTORY)
            source = target

    db.in_transaction(work)


def balance_cents(account_id: str) -> int:
    """An account's stored balance."""
    return int(
        db.in_transaction(
            lambda uow: uow.value(
                'SELECT balance_cents FROM credit_accounts WHERE id = CAST(:id AS uuid)', id=account_id
            )
        )
    )


def ledger_check() -> ledger_checks.CheckReport:
    """The ledger invariants recomputed (`assert report.ok, report.summary()`)."""
    return db.in_transaction(ledger_checks.check)
