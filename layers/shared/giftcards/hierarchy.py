"""The credit hierarchy (platform -> agency -> client -> campaign) and the brand catalogue.

Every agency, client and campaign is created together with its credit account, in one transaction: the
agency's account hangs under the platform's, the client's under its agency's, the campaign's under its
client's. Each administrative change appends an `audit_events` row.

Use cases (`create_agency`, `list_clients`, `update_campaign`, ...) take the verified subject, open one
transaction, load the caller and decide through `giftcards.auth`. The `add_*` functions are the bare
domain operations inside a caller's transaction, without authorization: the use cases and the test
factories both create entities through them.

Answers are domain values (`Agency`, `Client`, `Campaign`, `Brand`, `PlatformAccount`, pages of them), in cents;
the routes render them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar

from giftcards import auth, db, errors, ledger, pagination
from giftcards.db import UnitOfWork
from giftcards.pagination import Page

BudgetMode = Literal['shared', 'isolated']
CampaignStatus = Literal['active', 'paused', 'ended']
PausedReason = Literal['manual', 'depleted']  # by an admin, or because it could no longer pay for a card
Entity = TypeVar('Entity')

db.register_constraint(
    'brands_name_unique', lambda: errors.Conflict('A brand with this name already exists.', code='duplicate_brand')
)


class Price(NamedTuple):
    """What an agency pays and a client is charged for one denomination of a brand (None: the default)."""

    denomination_cents: int
    agency_price_cents: int | None = None
    client_price_cents: int | None = None


# --- what the use cases answer -------------------------------------------------------------------------


class PlatformAccount(NamedTuple):
    account_id: str
    balance_cents: int


class Agency(NamedTuple):
    id: str
    name: str
    account_id: str
    balance_cents: int
    created_at: datetime


class Client(NamedTuple):
    id: str
    agency_id: str
    name: str
    account_id: str
    balance_cents: int
    created_at: datetime


class Campaign(NamedTuple):
    id: str
    client_id: str
    name: str
    status: CampaignStatus
    paused_reason: PausedReason | None  # while paused
    budget_mode: BudgetMode
    account_id: str
    balance_cents: int
    created_at: datetime


class Brand(NamedTuple):
    id: str
    name: str
    denominations_cents: list[int]  # ascending
    prices: list[Price]  # by denomination
    created_at: datetime


# --- queries -------------------------------------------------------------------------------------------

_AGENCY = (
    'SELECT a.id::text, a.name, a.account_id::text, acc.balance_cents, a.created_at'
    ' FROM agencies a JOIN credit_accounts acc ON acc.id = a.account_id'
)
_CLIENT = (
    'SELECT c.id::text, c.agency_id::text, c.name, c.account_id::text, acc.balance_cents, c.created_at'
    ' FROM clients c JOIN credit_accounts acc ON acc.id = c.account_id'
)
_CAMPAIGN = (
    'SELECT c.id::text, c.client_id::text, c.name, c.status, c.paused_reason, c.budget_mode, c.account_id::text,'
    ' acc.balance_cents, c.created_at FROM campaigns c JOIN credit_accounts acc ON acc.id = c.account_id'
)
_BRAND = 'SELECT b.id::text, b.name, b.denominations_cents, b.created_at FROM brands b'
# Keyset condition on (created_at, id); both parameters NULL on the first page.
_AFTER = (
    '(CAST(:after_at AS timestamptz) IS NULL'
    ' OR ({alias}.created_at, {alias}.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))'
)


def _page(rows: list[dict[str, Any]], limit: int, make: Callable[[dict[str, Any]], Entity]) -> Page[Entity]:
    return pagination.page_of(rows, limit, lambda r: (r['created_at'], r['id']), make)


def _agency(row: dict[str, Any]) -> Agency:
    return Agency(row['id'], row['name'], row['account_id'], row['balance_cents'], row['created_at'])


def _client(row: dict[str, Any]) -> Client:
    return Client(row['id'], row['agency_id'], row['name'], row['account_id'], row['balance_cents'], row['created_at'])


def _campaign(row: dict[str, Any]) -> Campaign:
    return Campaign(
        row['id'],
        row['client_id'],
        row['name'],
        row['status'],
        row['paused_reason'],
        row['budget_mode'],
        row['account_id'],
        row['balance_cents'],
        row['created_at'],
    )


def _brand(row: dict[str, Any], prices: list[Price]) -> Brand:
    return Brand(row['id'], row['name'], list(row['denominations_cents']), prices, row['created_at'])


def _audit(uow: UnitOfWork, actor: str, action: str, entity_type: str, entity_id: str, details: dict[str, Any]) -> None:
    uow.execute(
        'INSERT INTO audit_events (actor, action, entity_type, entity_id, details)'
        ' VALUES (:actor, :action, :type, CAST(:id AS uuid), CAST(:details AS jsonb))',
        actor=actor,
        action=action,
        type=entity_type,
        id=entity_id,
        details=json.dumps(details),
    )


# --- domain operations (no authorization: the caller's transaction, the caller's decision) --------------


def add_agency(uow: UnitOfWork, name: str, *, actor: str) -> Agency:
    """Create an agency and its credit account (child of the platform's)."""
    row = uow.fetch_one(
        'WITH ids AS (SELECT gen_random_uuid() AS id),'
        " account AS (INSERT INTO credit_accounts (owner_type, owner_id, parent_id) SELECT 'agency', ids.id,"
        "  (SELECT id FROM credit_accounts WHERE owner_type = 'platform') FROM ids RETURNING id, owner_id)"
        ' INSERT INTO agencies (id, name, account_id) SELECT owner_id, :name, id FROM account'
        ' RETURNING id::text, name, account_id::text, 0::bigint AS balance_cents, created_at',
        name=name,
    )
    assert row is not None
    _audit(uow, actor, 'agency.created', 'agency', row['id'], {'name': name})
    return _agency(row)


def add_client(uow: UnitOfWork, agency_id: str, name: str, *, actor: str) -> Client:
    """Create a client of an existing agency and its credit account (child of the agency's)."""
    row = uow.fetch_one(
        'WITH parent AS (SELECT id, account_id FROM agencies WHERE id = CAST(:agency_id AS uuid)),'
        ' ids AS (SELECT gen_random_uuid() AS id),'
        " account AS (INSERT INTO credit_accounts (owner_type, owner_id, parent_id) SELECT 'client', ids.id,"
        '  parent.account_id FROM ids, parent RETURNING id, owner_id)'
        ' INSERT INTO clients (id, agency_id, name, account_id) SELECT account.owner_id, parent.id, :name, account.id'
        ' FROM account, parent'
        ' RETURNING id::text, agency_id::text, name, account_id::text, 0::bigint AS balance_cents, created_at',
        agency_id=agency_id,
        name=name,
    )
    if row is None:
        raise errors.NotFound('No such agency.')
    _audit(uow, actor, 'client.created', 'client', row['id'], {'name': name, 'agency_id': agency_id})
    return _client(row)


def add_campaign(uow: UnitOfWork, client_id: str, name: str, budget_mode: BudgetMode, *, actor: str) -> Campaign:
    """Create an active campaign of an existing client and its credit account (child of the client's)."""
    row = uow.fetch_one(
        'WITH parent AS (SELECT id, account_id FROM clients WHERE id = CAST(:client_id AS uuid)),'
        ' ids AS (SELECT gen_random_uuid() AS id),'
        " account AS (INSERT INTO credit_accounts (owner_type, owner_id, parent_id) SELECT 'campaign', ids.id,"
        '  parent.account_id FROM ids, parent RETURNING id, owner_id)'
        ' INSERT INTO campaigns (id, client_id, name, budget_mode, account_id)'
        ' SELECT account.owner_id, parent.id, :name, :mode, account.id FROM account, parent'
        ' RETURNING id::text, client_id::text, name, status, paused_reason, budget_mode, account_id::text,'
        ' 0::bigint AS balance_cents, created_at',
        client_id=client_id,
        name=name,
        mode=budget_mode,
    )
    if row is None:
        raise errors.NotFound('No such client.')
    _audit(
        uow,
        actor,
        'campaign.created',
        'campaign',
        row['id'],
        {'name': name, 'client_id': client_id, 'budget_mode': budget_mode},
    )
    return _campaign(row)


def add_brand(uow: UnitOfWork, name: str, denominations_cents: list[int], prices: list[Price], *, actor: str) -> Brand:
    """Create a brand with its denominations (kept in ascending order) and price list.

    The request model guarantees unique denominations and that every price names one of them.
    A name already used, ignoring case and surrounding spaces, is a 409.
    """
    row = uow.fetch_one(
        'INSERT INTO brands (name, denominations_cents) VALUES (:name, CAST(:d AS bigint[]))'
        ' RETURNING id::text, name, denominations_cents, created_at',
        name=name,
        d=sorted(denominations_cents),
    )
    assert row is not None
    for price in sorted(prices, key=lambda p: p.denomination_cents):
        uow.execute(
            'INSERT INTO brand_prices (brand_id, denomination_cents, agency_price_cents, client_price_cents)'
            ' VALUES (CAST(:b AS uuid), CAST(:d AS bigint), CAST(:a AS bigint), CAST(:c AS bigint))',
            b=row['id'],
            d=price.denomination_cents,
            a=price.agency_price_cents,
            c=price.client_price_cents,
        )
    _audit(
        uow,
        actor,
        'brand.created',
        'brand',
        row['id'],
        {
            'name': name,
            'denominations_cents': sorted(denominations_cents),
            'prices': [p._asdict() for p in sorted(prices, key=lambda p: p.denomination_cents)],
        },
    )
    return _brand(row, _prices(uow, [row['id']]).get(row['id'], []))


def _prices(uow: UnitOfWork, brand_ids: list[str]) -> dict[str, list[Price]]:
    if not brand_ids:
        return {}
    rows = uow.fetch(
        'SELECT brand_id::text, denomination_cents, agency_price_cents, client_price_cents FROM brand_prices'
        ' WHERE brand_id = ANY(CAST(:ids AS uuid[])) ORDER BY brand_id, denomination_cents',
        ids=brand_ids,
    )
    by_brand: dict[str, list[Price]] = {}
    for row in rows:
        price = Price(row['denomination_cents'], row['agency_price_cents'], row['client_price_cents'])
        by_brand.setdefault(row['brand_id'], []).append(price)
    return by_brand


# --- use cases -----------------------------------------------------------------------------------------


def platform(subject: str) -> PlatformAccount:
    def work(uow: UnitOfWork) -> PlatformAccount:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        row = uow.fetch_one("SELECT id::text, balance_cents FROM credit_accounts WHERE owner_type = 'platform'")
        assert row is not None
        return PlatformAccount(row['id'], row['balance_cents'])

    return db.in_transaction(work, read_only=True)


def create_agency(subject: str, name: str) -> Agency:
    def work(uow: UnitOfWork) -> Agency:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        return add_agency(uow, name, actor=subject)

    return db.in_transaction(work)


def list_agencies(subject: str, limit: int, cursor: str | None) -> Page[Agency]:
    """Platform admin: every agency; agency admin: its own; anyone else: none."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> Page[Agency]:
        caller = auth.load_caller(uow, subject)
        if not caller.platform_admin and not caller.agency_admin_of:
            return Page([], None)
        scope: dict[str, Any] = {} if caller.platform_admin else {'ids': sorted(caller.agency_admin_of)}
        rows = uow.fetch(
            f'{_AGENCY} WHERE {"a.id = ANY(CAST(:ids AS uuid[])) AND " if scope else ""}{_AFTER.format(alias="a")}'
            ' ORDER BY a.created_at, a.id LIMIT CAST(:n AS integer)',
            n=limit + 1,
            **scope,
            **after,
        )
        return _page(rows, limit, _agency)

    return db.in_transaction(work, read_only=True)


def get_agency(subject: str, agency_id: str) -> Agency:
    def work(uow: UnitOfWork) -> Agency:
        auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        row = uow.fetch_one(f'{_AGENCY} WHERE a.id = CAST(:id AS uuid)', id=agency_id)
        assert row is not None
        return _agency(row)

    return db.in_transaction(work, read_only=True)


def create_client(subject: str, agency_id: str, name: str) -> Client:
    def work(uow: UnitOfWork) -> Client:
        caller = auth.load_caller(uow, subject)
        agency = auth.visible_agency(uow, caller, agency_id)
        if not caller.administers_agency(agency['id']):
            raise errors.Forbidden('Only an admin of this agency may add clients to it.')
        return add_client(uow, agency['id'], name, actor=subject)

    return db.in_transaction(work)


def list_clients(subject: str, agency_id: str, limit: int, cursor: str | None) -> Page[Client]:
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> Page[Client]:
        agency = auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        rows = uow.fetch(
            f'{_CLIENT} WHERE c.agency_id = CAST(:agency_id AS uuid) AND {_AFTER.format(alias="c")}'
            ' ORDER BY c.created_at, c.id LIMIT CAST(:n AS integer)',
            agency_id=agency['id'],
            n=limit + 1,
            **after,
        )
        return _page(rows, limit, _client)

    return db.in_transaction(work, read_only=True)


def get_client(subject: str, client_id: str) -> Client:
    def work(uow: UnitOfWork) -> Client:
        auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        row = uow.fetch_one(f'{_CLIENT} WHERE c.id = CAST(:id AS uuid)', id=client_id)
        assert row is not None
        return _client(row)

    return db.in_transaction(work, read_only=True)


def create_campaign(subject: str, client_id: str, name: str, budget_mode: BudgetMode) -> Campaign:
    def work(uow: UnitOfWork) -> Campaign:
        caller = auth.load_caller(uow, subject)
        client = auth.visible_client(uow, caller, client_id)
        if not caller.administers_client(client['id'], client['agency_id']):
            raise errors.Forbidden('Only an admin of this client may create campaigns for it.')
        return add_campaign(uow, client['id'], name, budget_mode, actor=subject)

    return db.in_transaction(work)


def list_campaigns(subject: str, client_id: str, limit: int, cursor: str | None) -> Page[Campaign]:
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> Page[Campaign]:
        client = auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        rows = uow.fetch(
            f'{_CAMPAIGN} WHERE c.client_id = CAST(:client_id AS uuid) AND {_AFTER.format(alias="c")}'
            ' ORDER BY c.created_at, c.id LIMIT CAST(:n AS integer)',
            client_id=client['id'],
            n=limit + 1,
            **after,
        )
        return _page(rows, limit, _campaign)

    return db.in_transaction(work, read_only=True)


def get_campaign(subject: str, campaign_id: str) -> Campaign:
    def work(uow: UnitOfWork) -> Campaign:
        auth.visible_campaign(uow, auth.load_caller(uow, subject), campaign_id)
        return _read_campaign(uow, campaign_id)

    return db.in_transaction(work, read_only=True)


def update_campaign(
    subject: str, campaign_id: str, *, status: CampaignStatus | None = None, budget_mode: BudgetMode | None = None
) -> Campaign:
    """Pause (reason 'manual'), resume, end, or switch the budget mode, in one transaction.

    An ended campaign is final: any change to it is a 409. Switching isolated -> shared returns the
    campaign's balance to its client in the same transaction (`ledger.switch_budget_mode`).
    """

    def work(uow: UnitOfWork) -> Campaign:
        caller = auth.load_caller(uow, subject)
        campaign = auth.visible_campaign(uow, caller, campaign_id, lock=True)
        if not caller.administers_client(campaign['client_id'], campaign['agency_id']):
            raise errors.Forbidden('Only an admin of this client may change its campaigns.')
        reason = 'manual' if status == 'paused' else None
        status_changes = status is not None and (status, reason) != (campaign['status'], campaign['paused_reason'])
        mode_changes = budget_mode is not None and budget_mode != campaign['budget_mode']
        if not status_changes and not mode_changes:
            return _read_campaign(uow, campaign['id'])
        if campaign['status'] == 'ended':
            raise errors.Conflict('An ended campaign cannot be changed.', code='campaign_ended')
        details: dict[str, Any] = {}
        if status_changes:
            uow.execute(
                'UPDATE campaigns SET status = :status, paused_reason = :reason, updated_at = now()'
                ' WHERE id = CAST(:id AS uuid)',
                status=status,
                reason=reason,
                id=campaign['id'],
            )
            details['status'] = {'from': campaign['status'], 'to': status}
        if mode_changes:
            assert budget_mode is not None
            transfer = ledger.switch_budget_mode(uow, campaign['id'], budget_mode, initiator=subject)
            details['budget_mode'] = {'from': campaign['budget_mode'], 'to': budget_mode}
            if transfer is not None:
                details['returned_to_client'] = {'transfer_id': transfer.id, 'amount_cents': transfer.amount_cents}
        _audit(uow, subject, 'campaign.updated', 'campaign', campaign['id'], details)
        return _read_campaign(uow, campaign['id'])

    return db.in_transaction(work)


def _read_campaign(uow: UnitOfWork, campaign_id: str) -> Campaign:
    row = uow.fetch_one(f'{_CAMPAIGN} WHERE c.id = CAST(:id AS uuid)', id=campaign_id)
    assert row is not None
    return _campaign(row)


def create_brand(subject: str, name: str, denominations_cents: list[int], prices: list[Price]) -> Brand:
    def work(uow: UnitOfWork) -> Brand:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        return add_brand(uow, name, denominations_cents, prices, actor=subject)

    return db.in_transaction(work)


def list_brands(subject: str, limit: int, cursor: str | None) -> Page[Brand]:
    """The catalogue, for any admin; empty for anyone else (integrations included)."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> Page[Brand]:
        if not auth.load_caller(uow, subject).sees_catalogue():
            return Page([], None)
        rows = uow.fetch(
            f'{_BRAND} WHERE {_AFTER.format(alias="b")} ORDER BY b.created_at, b.id LIMIT CAST(:n AS integer)',
            n=limit + 1,
            **after,
        )
        prices = _prices(uow, [r['id'] for r in rows[:limit]])
        return _page(rows, limit, lambda r: _brand(r, prices.get(r['id'], [])))

    return db.in_transaction(work, read_only=True)


def get_brand(subject: str, brand_id: str) -> Brand:
    def work(uow: UnitOfWork) -> Brand:
        if not auth.load_caller(uow, subject).sees_catalogue() or not auth.is_uuid(brand_id):
            raise errors.NotFound('No such brand.')
        row = uow.fetch_one(f'{_BRAND} WHERE b.id = CAST(:id AS uuid)', id=brand_id)
        if row is None:
            raise errors.NotFound('No such brand.')
        return _brand(row, _prices(uow, [row['id']]).get(row['id'], []))

    return db.in_transaction(work, read_only=True)
