"""Redemption listings with profit: what each redemption charged, what its card cost, its delivery, and the totals
of a scope.

Scopes: a campaign, a client or an agency (its admins and the platform admin), or everything (platform admin).
Cards and codes are known by their last 4 characters only. Cost and profit are the platform's and agency's
business: a client admin sees what was charged, not what the cards cost. Answers are `Redemption` and `Totals`
values in cents; the route renders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from giftcards import auth, db, deliveries, errors, pagination, recipients
from giftcards.db import UnitOfWork
from giftcards.pagination import Page

Status = Literal['pending', 'fulfilled', 'failed']

_SCOPES = {
    'campaign': 'r.campaign_id = CAST(:scope AS uuid)',
    'client': 'r.client_id = CAST(:scope AS uuid)',
    'agency': 'r.client_id IN (SELECT id FROM clients WHERE agency_id = CAST(:scope AS uuid))',
    'all': 'CAST(:scope AS uuid) IS NULL',
}

# A redemption's delivery `d`, as columns of its row (`LEFT JOIN deliveries d ON d.id = r.id`); `_delivery` reads them
# back.
_DELIVERY_COLUMNS = """d.status AS delivery_status, d.channel AS delivery_channel, d.address AS delivery_to,
       d.content AS delivery_content, d.send_number AS delivery_send_number, d.attempts AS delivery_attempts,
       d.last_error AS delivery_last_error, d.next_attempt_at AS delivery_next_attempt_at,
       d.queued_at AS delivery_queued_at, d.sent_at AS delivery_sent_at, d.delivered_at AS delivery_delivered_at,
       d.bounced_at AS delivery_bounced_at, d.failed_at AS delivery_failed_at,
       d.complained_at AS delivery_complained_at, d.link_used_at AS delivery_link_used_at"""

_ROWS = f"""
SELECT r.id::text, r.campaign_id::text, r.client_id::text, r.brand_id::text, b.name AS brand_name,
       r.denomination_cents, r.status, r.source, r.code_last4, c.code_last4 AS card_last4, r.amount_charged_cents,
       r.cost_basis_cents, r.agency_price_cents, r.vendor, r.recipient_id, r.delivery_method, r.created_at,
       r.fulfilled_at, r.failed_at, {_DELIVERY_COLUMNS}
  FROM redemptions r JOIN brands b ON b.id = r.brand_id LEFT JOIN cards c ON c.id = r.card_id
  LEFT JOIN deliveries d ON d.id = r.id
 WHERE {{scope}}
   AND (CAST(:status AS text) IS NULL OR r.status = :status)
   AND (CAST(:delivery_status AS text) IS NULL OR d.status = :delivery_status)
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


class Delivery(NamedTuple):
    """A redemption's delivery as the API shows it: the address masked, the current send's times."""

    status: deliveries.Status
    channel: recipients.Channel
    address: str  # masked
    content: deliveries.Content
    send_number: int
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None  # queued only
    queued_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    bounced_at: datetime | None
    failed_at: datetime | None
    complained_at: datetime | None
    link_used_at: datetime | None

    @property
    def resends_left(self) -> int:
        return max(deliveries.MAX_RESENDS - (self.send_number - 1), 0)


class Redemption(NamedTuple):
    """A redemption as a lister sees it: its card and code by their last 4 characters only, and its cost and agency
    price only for a caller who may see costs (None otherwise)."""

    id: str
    campaign_id: str
    client_id: str
    brand_id: str
    brand_name: str
    denomination_cents: int
    status: Status
    source: Literal['csv', 'api'] | None
    code_last4: str | None
    card_last4: str | None
    amount_charged_cents: int
    cost_basis_cents: int | None  # None while pending, or hidden
    agency_price_cents: int | None  # None where the price list sets none, or hidden
    vendor: str | None
    recipient_id: str | None
    delivery_method: str | None
    created_at: datetime
    fulfilled_at: datetime | None
    failed_at: datetime | None
    delivery: Delivery | None  # None: it asked for no delivery, or is not fulfilled yet

    @property
    def profit_cents(self) -> int | None:
        """What a fulfilled redemption made (None for any other, or where its cost is hidden)."""
        if self.status != 'fulfilled' or self.cost_basis_cents is None:
            return None
        return self.amount_charged_cents - self.cost_basis_cents


class Totals(NamedTuple):
    """The whole scope's: counts by status; charged and cost of fulfilled redemptions (cost None where hidden)."""

    redemptions: int  # fulfilled
    pending: int
    failed: int
    charged_cents: int
    cost_cents: int | None

    @property
    def profit_cents(self) -> int | None:
        return None if self.cost_cents is None else self.charged_cents - self.cost_cents


class Listing(NamedTuple):
    page: Page[Redemption]
    totals: Totals  # the same on every page


def _redemption(row: dict[str, Any], *, show_costs: bool) -> Redemption:
    return Redemption(
        id=row['id'],
        campaign_id=row['campaign_id'],
        client_id=row['client_id'],
        brand_id=row['brand_id'],
        brand_name=row['brand_name'],
        denomination_cents=row['denomination_cents'],
        status=row['status'],
        source=row['source'],
        code_last4=row['code_last4'],
        card_last4=row['card_last4'],
        amount_charged_cents=row['amount_charged_cents'],
        cost_basis_cents=row['cost_basis_cents'] if show_costs else None,
        agency_price_cents=row['agency_price_cents'] if show_costs else None,
        vendor=row['vendor'],
        recipient_id=row['recipient_id'],
        delivery_method=row['delivery_method'],
        created_at=row['created_at'],
        fulfilled_at=row['fulfilled_at'],
        failed_at=row['failed_at'],
        delivery=_delivery(row),
    )


def _delivery(row: dict[str, Any]) -> Delivery | None:
    if row.get('delivery_status') is None:
        return None
    status = row['delivery_status']
    return Delivery(
        status=status,
        channel=row['delivery_channel'],
        address=recipients.masked(row['delivery_channel'], row['delivery_to']),
        content=row['delivery_content'],
        send_number=int(row['delivery_send_number']),
        attempts=int(row['delivery_attempts']),
        last_error=row['delivery_last_error'],
        next_attempt_at=row['delivery_next_attempt_at'] if status == 'queued' else None,
        queued_at=row['delivery_queued_at'],
        sent_at=row['delivery_sent_at'],
        delivered_at=row['delivery_delivered_at'],
        bounced_at=row['delivery_bounced_at'],
        failed_at=row['delivery_failed_at'],
        complained_at=row['delivery_complained_at'],
        link_used_at=row['delivery_link_used_at'],
    )


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
    delivery_status: deliveries.Status | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Listing:
    """Redemptions newest first, a page at a time, and the totals of the whole scope (every page answers the same);
    cost, agency price and profit are hidden (None) from a client admin."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> Listing:
        caller = auth.load_caller(uow, subject)
        kind, scope, show_costs = _scope(uow, caller, campaign_id, client_id, agency_id)
        rows = uow.fetch(
            _ROWS.format(scope=_SCOPES[kind]),
            scope=scope,
            status=status,
            delivery_status=delivery_status,
            n=limit + 1,
            **after,
        )
        totals = uow.fetch_one(_TOTALS.format(scope=_SCOPES[kind]), scope=scope)
        assert totals is not None
        page = pagination.page_of(
            rows, limit, lambda r: (r['created_at'], r['id']), lambda r: _redemption(r, show_costs=show_costs)
        )
        return Listing(
            page,
            Totals(
                redemptions=int(totals['fulfilled']),
                pending=int(totals['pending']),
                failed=int(totals['failed']),
                charged_cents=int(totals['charged']),
                cost_cents=int(totals['cost']) if show_costs else None,
            ),
        )

    return db.in_transaction(work, read_only=True)


_SCOPE_OF = """
SELECT r.client_id::text, cl.agency_id::text FROM redemptions r JOIN clients cl ON cl.id = r.client_id
 WHERE r.id = CAST(:id AS uuid)
"""


def get_redemption(subject: str, redemption_id: str) -> Redemption:
    """One redemption with its delivery, for its client's admins (404 for anyone else); cost, agency price and profit
    hidden (None) from a client admin."""
    if not auth.is_uuid(redemption_id):
        raise errors.NotFound('No such redemption.')

    def work(uow: UnitOfWork) -> Redemption:
        caller = auth.load_caller(uow, subject)
        scope = uow.fetch_one(_SCOPE_OF, id=redemption_id)
        if scope is None or not caller.sees_client(scope['client_id'], scope['agency_id']):
            raise errors.NotFound('No such redemption.')
        row = uow.fetch_one(
            _ROWS.format(scope='r.id = CAST(:scope AS uuid)'),
            scope=redemption_id,
            status=None,
            delivery_status=None,
            n=1,
            after_at=None,
            after_id=None,
        )
        assert row is not None
        return _redemption(row, show_costs=caller.sees_agency(scope['agency_id']))

    return db.in_transaction(work, read_only=True)
