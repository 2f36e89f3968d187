"""The credit hierarchy (platform -> agency -> client -> campaign) and the brand catalogue.

Every agency, client and campaign is created together with its credit account, in one transaction: the
agency's account hangs under the platform's, the client's under its agency's, the campaign's under its
client's. Each administrative change appends an `audit_events` row.

Use cases (`create_agency`, `list_clients`, `update_campaign`, ...) take the verified subject, open one
transaction, load the caller and decide through `giftcards.auth`. The `add_*` functions are the bare
domain operations inside a caller's transaction, without authorization: the use cases and the test
factories both create entities through them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from giftcards import auth, db, errors, ledger, pagination
from giftcards.db import UnitOfWork
from giftcards.money import to_dollars

BudgetMode = Literal['shared', 'isolated']
CampaignStatus = Literal['active', 'paused', 'ended']

db.register_constraint(
    'brands_name_unique', lambda: errors.Conflict('A brand with this name already exists.', code='duplicate_brand')
)


@dataclass(frozen=True)
class Price:
    """What an agency pays and a client is charged for one denomination of a brand (None: the default)."""

    denomination_cents: int
    agency_price_cents: int | None = None
    client_price_cents: int | None = None


# --- rendering -----------------------------------------------------------------------------------------


def render_agency(row: dict[str, Any]) -> dict[str, Any]:
    return {
        'id': row['id'],
        'name': row['name'],
        'account_id': row['account_id'],
        'balance': to_dollars(row['balance_cents']),
        'created_at': row['created_at'],
    }


def render_client(row: dict[str, Any]) -> dict[str, Any]:
    return {
        'id': row['id'],
        'agency_id': row['agency_id'],
        'name': row['name'],
        'account_id': row['account_id'],
        'balance': to_dollars(row['balance_cents']),
    }


def render_campaign(row: dict[str, Any]) -> dict[str, Any]:
    return {
        'id': row['id'],
        'client_id': row['client_id'],
        'name': row['name'],
        'status': row['status'],
        'budget_mode': row['budget_mode'],
        'account_id': row['account_id'],
        'balance': to_dollars(row['balance_cents']),
    }


def render_brand(row: dict[str, Any], prices: list[dict[str, Any]]) -> dict[str, Any]:
    def dollars(cents: int | None) -> int | float | None:
        return None if cents is None else to_dollars(cents)

    return {
        'id': row['id'],
        'name': row['name'],
        'denominations': [to_dollars(c) for c in row['denominations_cents']],
        'prices': [
            {
                'denomination': to_dollars(p['denomination_cents']),
                'agency_price': dollars(p['agency_price_cents']),
                'client_price': dollars(p['client_price_cents']),
            }
            for p in prices
        ],
        'created_at': row['created_at'],
    }


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


def _page(rows: list[dict[str, Any]], limit: int, render: Any) -> dict[str, Any]:
    return pagination.page(rows, limit, lambda r: (r['created_at'], r['id']), render)


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


def add_agency(uow: UnitOfWork, name: str, *, actor: str) -> dict[str, Any]:
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
    return render_agency(row)


def add_client(uow: UnitOfWork, agency_id: str, name: str, *, actor: str) -> dict[str, Any]:
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
    return render_client(row)


def add_campaign(uow: UnitOfWork, client_id: str, name: str, budget_mode: BudgetMode, *, actor: str) -> dict[str, Any]:
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
    return render_campaign(row)


def add_brand(
    uow: UnitOfWork, name: str, denominations_cents: list[int], prices: list[Price], *, actor: str
) -> dict[str, Any]:
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
            'prices': [p.__dict__ for p in sorted(prices, key=lambda p: p.denomination_cents)],
        },
    )
    return render_brand(row, _prices(uow, [row['id']]).get(row['id'], []))


def _prices(uow: UnitOfWork, brand_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not brand_ids:
        return {}
    rows = uow.fetch(
        'SELECT brand_id::text, denomination_cents, agency_price_cents, client_price_cents FROM brand_prices'
        ' WHERE brand_id = ANY(CAST(:ids AS uuid[])) ORDER BY brand_id, denomination_cents',
        ids=brand_ids,
    )
    by_brand: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_brand.setdefault(row['brand_id'], []).append(row)
    return by_brand


# --- use cases -----------------------------------------------------------------------------------------


def platform(subject: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        row = uow.fetch_one("SELECT id::text, balance_cents FROM credit_accounts WHERE owner_type = 'platform'")
        assert row is not None
        return {'account_id': row['id'], 'balance': to_dollars(row['balance_cents'])}

    return db.in_transaction(work, read_only=True)


def create_agency(subject: str, name: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        return add_agency(uow, name, actor=subject)

    return db.in_transaction(work)


def list_agencies(subject: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Platform admin: every agency; agency admin: its own; anyone else: none."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        caller = auth.load_caller(uow, subject)
        if not caller.platform_admin and not caller.agency_admin_of:
            return {'items': [], 'next_cursor': None}
        scope: dict[str, Any] = {} if caller.platform_admin else {'ids': sorted(caller.agency_admin_of)}
        rows = uow.fetch(
            f'{_AGENCY} WHERE {"a.id = ANY(CAST(:ids AS uuid[])) AND " if scope else ""}{_AFTER.format(alias="a")}'
            ' ORDER BY a.created_at, a.id LIMIT CAST(:n AS integer)',
            n=limit + 1,
            **scope,
            **after,
        )
        return _page(rows, limit, render_agency)

    return db.in_transaction(work, read_only=True)


def get_agency(subject: str, agency_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        row = uow.fetch_one(f'{_AGENCY} WHERE a.id = CAST(:id AS uuid)', id=agency_id)
        assert row is not None
        return render_agency(row)

    return db.in_transaction(work, read_only=True)


def create_client(subject: str, agency_id: str, name: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        caller = auth.load_caller(uow, subject)
        agency = auth.visible_agency(uow, caller, agency_id)
        if not caller.administers_agency(agency['id']):
            raise errors.Forbidden('Only an admin of this agency may add clients to it.')
        return add_client(uow, agency['id'], name, actor=subject)

    return db.in_transaction(work)


def list_clients(subject: str, agency_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        agency = auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        rows = uow.fetch(
            f'{_CLIENT} WHERE c.agency_id = CAST(:agency_id AS uuid) AND {_AFTER.format(alias="c")}'
            ' ORDER BY c.created_at, c.id LIMIT CAST(:n AS integer)',
            agency_id=agency['id'],
            n=limit + 1,
            **after,
        )
        return _page(rows, limit, render_client)

    return db.in_transaction(work, read_only=True)


def get_client(subject: str, client_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        row = uow.fetch_one(f'{_CLIENT} WHERE c.id = CAST(:id AS uuid)', id=client_id)
        assert row is not None
        return render_client(row)

    return db.in_transaction(work, read_only=True)


def create_campaign(subject: str, client_id: str, name: str, budget_mode: BudgetMode) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        caller = auth.load_caller(uow, subject)
        client = auth.visible_client(uow, caller, client_id)
        if not caller.administers_client(client['id'], client['agency_id']):
            raise errors.Forbidden('Only an admin of this client may create campaigns for it.')
        return add_campaign(uow, client['id'], name, budget_mode, actor=subject)

    return db.in_transaction(work)


def list_campaigns(subject: str, client_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        client = auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        rows = uow.fetch(
            f'{_CAMPAIGN} WHERE c.client_id = CAST(:client_id AS uuid) AND {_AFTER.format(alias="c")}'
            ' ORDER BY c.created_at, c.id LIMIT CAST(:n AS integer)',
            client_id=client['id'],
            n=limit + 1,
            **after,
        )
        return _page(rows, limit, render_campaign)

    return db.in_transaction(work, read_only=True)


def get_campaign(subject: str, campaign_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.visible_campaign(uow, auth.load_caller(uow, subject), campaign_id)
        row = uow.fetch_one(f'{_CAMPAIGN} WHERE c.id = CAST(:id AS uuid)', id=campaign_id)
        assert row is not None
        return render_campaign(row)

    return db.in_transaction(work, read_only=True)


def update_campaign(
    subject: str, campaign_id: str, *, status: CampaignStatus | None = None, budget_mode: BudgetMode | None = None
) -> dict[str, Any]:
    """Pause (reason 'manual'), resume, end, or switch the budget mode, in one transaction.

    An ended campaign is final: any change to it is a 409. Switching isolated -> shared returns the
    campaign's balance to its client in the same transaction (`ledger.switch_budget_mode`).
    """

    def work(uow: UnitOfWork) -> dict[str, Any]:
        caller = auth.load_caller(uow, subject)
        campaign = auth.visible_campaign(uow, caller, campaign_id, lock=True)
        if not caller.administers_client(campaign['client_id'], campaign['agency_id']):
            raise errors.Forbidden('Only an admin of this client may change its campaigns.')
        reason = 'manual' if status == 'paused' else None
        status_changes = status is not None and (status, reason) != (campaign['status'], campaign['paused_reason'])
        mode_changes = budget_mode is not None and budget_mode != campaign['budget_mode']
        if not status_changes and not mode_changes:
            return _campaign(uow, campaign['id'])
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
        return _campaign(uow, campaign['id'])

    return db.in_transaction(work)


def _campaign(uow: UnitOfWork, campaign_id: str) -> dict[str, Any]:
    row = uow.fetch_one(f'{_CAMPAIGN} WHERE c.id = CAST(:id AS uuid)', id=campaign_id)
    assert row is not None
    return render_campaign(row)


def create_brand(subject: str, name: str, denominations_cents: list[int], prices: list[Price]) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        return add_brand(uow, name, denominations_cents, prices, actor=subject)

    return db.in_transaction(work)


def list_brands(subject: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """The catalogue, for any admin; empty for anyone else (integrations included)."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        if not auth.load_caller(uow, subject).sees_catalogue():
            return {'items': [], 'next_cursor': None}
        rows = uow.fetch(
            f'{_BRAND} WHERE {_AFTER.format(alias="b")} ORDER BY b.created_at, b.id LIMIT CAST(:n AS integer)',
            n=limit + 1,
            **after,
        )
        prices = _prices(uow, [r['id'] for r in rows[:limit]])
        return _page(rows, limit, lambda r: render_brand(r, prices.get(r['id'], [])))

    return db.in_transaction(work, read_only=True)


def get_brand(subject: str, brand_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        if not auth.load_caller(uow, subject).sees_catalogue() or not auth.is_uuid(brand_id):
            raise errors.NotFound('No such brand.')
        row = uow.fetch_one(f'{_BRAND} WHERE b.id = CAST(:id AS uuid)', id=brand_id)
        if row is None:
            raise errors.NotFound('No such brand.')
        return render_brand(row, _prices(uow, [row['id']]).get(row['id'], []))

    return db.in_transaction(work, read_only=True)
