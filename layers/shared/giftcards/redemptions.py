"""Redemption listings with profit: what each redemption charged, what its card cost, and the totals of a scope.

Scopes: a campaign, a client or an agency (its admins and the platform admin), or everything (platform admin).
Cards appear masked (last 4 characters). Cost and profit are the platform's and agency's business: a client
admin sees what was charged, not what the cards cost.
"""

from __future__ import annotations

from typing import Any, Literal

from giftcards import auth, db, errors, pagination
from giftcards.db import UnitOfWork
from giftcards.money import to_dollars

Status = Literal['pending', 'fulfilled', 'failed']

_SCOPES = {
    'campaign': 'r.campaign_id = CAST(:scope AS uuid)',
    'client': 'r.client_id = CAST(:scope AS uuid)',
    'agency': 'r.client_id IN (SELECT id FROM clients WHERE agency_id = CAST(:scope AS uuid))',
    'all': 'CAST(:scope AS uuid) IS NULL',
}

_ROWS = """
SELECT r.id::text, r.campaign_id::text, r.client_id::text, r.brand_id::text, b.name AS brand_name,
       r.denomination_cents, r.status, r.source, r.code_last4, c.code_last4 AS card_last4, r.amount_charged_cents,
       r.cost_basis_cents, r.agency_price_cents, r.vendor, r.recipient_id, r.delivery_method, r.created_at,
       r.fulfilled_at, r.failed_at
  FROM redemptions r JOIN brands b ON b.id = r.brand_id LEFT JOIN cards c ON c.id = r.card_id
 WHERE {scope}
   AND (CAST(:status AS text) IS NULL OR r.status = :status)
   AND (CAST(:after_at AS timestamptz) IS NULL
        OR (r.created_at, r.id) < (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT CAST(:n AS integer)
"""

# Profit is counted on fulfilled redemptions: a pending one has no cost yet, a failed one was refunded.
_TOTALS = """
SELECT count(*) FILTER (WHERE r.status = 'fulfilled') AS fulfilled,
       count(*) FILTER (WHERE r.status = 'pending') AS pending,
       count(*) FILTER (WHERE r.status = 'failed') AS failed,
       coalesce(sum(r.amount_charged_cents) FILTER (WHERE r.status = 'fulfilled'), 0) AS charged,
       coalesce(sum(r.cost_basis_cents) FILTER (WHERE r.status = 'fulfilled'), 0) AS cost
  FROM redemptions r
 WHERE {scope}
"""


def _masked(last4: str | None) -> str | None:
    return f'****{last4}' if last4 else None


def render(row: dict[str, Any], *, show_costs: bool) -> dict[str, Any]:
    fulfilled = row['status'] == 'fulfilled'
    cost = row['cost_basis_cents']
    return {
        'id': row['id'],
        'campaign_id': row['campaign_id'],
        'client_id': row['client_id'],
        'brand_id': row['brand_id'],
        'brand_name': row['brand_name'],
        'denomination': to_dollars(row['denomination_cents']),
        'status': row['status'],
        'source': row['source'],
        'redemption_code': _masked(row['code_last4']),
        'card': _masked(row['card_last4']),
        'amount_charged': to_dollars(row['amount_charged_cents']),
        'cost_basis': to_dollars(cost) if show_costs and cost is not None else None,
        'agency_price': (
            to_dollars(row['agency_price_cents']) if show_costs and row['agency_price_cents'] is not None else None
        ),
        'profit': to_dollars(row['amount_charged_cents'] - cost)
        if show_costs and fulfilled and cost is not None
        else None,
        'vendor': row['vendor'],
        'recipient_id': row['recipient_id'],
        'delivery_method': row['delivery_method'],
        'created_at': pagination.iso(row['created_at']),
        'fulfilled_at': pagination.iso(row['fulfilled_at']),
        'failed_at': pagination.iso(row['failed_at']),
    }


def _scope(
    uow: UnitOfWork, caller: auth.Caller, campaign_id: str | None, client_id: str | None, agency_id: str | None
) -> tuple[str, str | None, bool]:
    """(scope kind, scope id, whether costs are shown), or 404/403 for a scope the caller may not list."""
    given = [
        (kind, value)
        for kind, value in (('campaign', campaign_id), ('client', client_id), ('agency', agency_id))
        if value is not None
    ]
    if len(given) > 1:
        raise errors.ValidationFailed('give at most one of campaign_id, client_id and agency_id')
    if not given:
        auth.require_platform_admin(caller)
        return 'all', None, True
    kind, value = given[0]
    if kind == 'agency':
        agency = auth.visible_agency(uow, caller, value)
        return kind, agency['id'], True
    row = auth.visible_campaign(uow, caller, value) if kind == 'campaign' else auth.visible_client(uow, caller, value)
    client = row['client_id'] if kind == 'campaign' else row['id']
    if not caller.administers_client(client, row['agency_id']):
        raise errors.Forbidden("Only the client's admins may list its redemptions.")
    return kind, row['id'], caller.sees_agency(row['agency_id'])


def list_redemptions(
    subject: str,
    *,
    campaign_id: str | None = None,
    client_id: str | None = None,
    agency_id: str | None = None,
    status: Status | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> dict[str, Any]:
    """`{items, next_cursor, totals: {redemptions, pending, failed, charged, cost, profit}}`, newest first. The
    totals cover the whole scope (every page answers the same); cost and profit are null for a client admin."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        caller = auth.load_caller(uow, subject)
        kind, scope, show_costs = _scope(uow, caller, campaign_id, client_id, agency_id)
        rows = uow.fetch(_ROWS.format(scope=_SCOPES[kind]), scope=scope, status=status, n=limit + 1, **after)
        totals = uow.fetch_one(_TOTALS.format(scope=_SCOPES[kind]), scope=scope)
        assert totals is not None
        answer = pagination.page(
            rows, limit, lambda r: (r['created_at'], r['id']), lambda r: render(r, show_costs=show_costs)
        )
        answer['totals'] = {
            'redemptions': int(totals['fulfilled']),
            'pending': int(totals['pending']),
            'failed': int(totals['failed']),
            'charged': to_dollars(int(totals['charged'])),
            'cost': to_dollars(int(totals['cost'])) if show_costs else None,
            'profit': to_dollars(int(totals['charged']) - int(totals['cost'])) if show_costs else None,
        }
        return answer

    return db.in_transaction(work, read_only=True)
