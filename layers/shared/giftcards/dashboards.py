"""Role dashboards: one read-only answer each, in one transaction, authorized by scope.

- Admin (platform admin): CSV inventory per brand and denomination with its health and the CSV/API split of recent
  redemptions, agencies with their balances, open alerts, profit, the platform's credit and the last monitor run.
- Agency (platform admin or the agency's admin; 404 for anyone else): its balance, its clients with their balance
  and this month's usage, and monthly metrics for the last six months.
- Client (anyone who may see the client): its balance and its campaigns with budget mode, balance, spend and the
  redemptions their paying account can still buy.

Money is whole cents inside and dollars in the answers. Months are calendar months in UTC. "Spend" is what left
the paying accounts and was not refunded (fulfilled and pending redemptions); "redemptions" counts fulfilled ones.
Platform profit is charged minus cost basis; an agency's profit is what its clients were charged minus the agency
price of the brand's price list (nothing where the list sets no agency price).
"""

from __future__ import annotations

from typing import Any

from giftcards import alerts, auth, db, monitor, pagination
from giftcards.db import UnitOfWork
from giftcards.money import to_dollars

LISTED = 100  # agencies on the admin dashboard, lowest balance first
ALERTS_LISTED = 10
CLIENTS_LISTED = 500
CAMPAIGNS_LISTED = 500
MONTHS = 6
RECENT_DAYS = 30

_MONTH_START = "date_trunc('month', now(), 'UTC')"
_SPENT = "r.status IN ('fulfilled', 'pending')"

_INVENTORY = f"""
WITH stock AS (
    SELECT p.brand_id, p.denomination_cents, count(*) AS pools, sum(p.card_count) AS imported,
           sum(coalesce(s.available, 0)) AS available, max(p.low_stock_threshold) AS low_stock_threshold
      FROM card_pools p
      LEFT JOIN (SELECT pool_id, count(*) AS available FROM available_cards GROUP BY pool_id) s ON s.pool_id = p.id
     GROUP BY p.brand_id, p.denomination_cents
), recent AS (
    SELECT brand_id, denomination_cents, count(*) FILTER (WHERE source = 'csv') AS csv,
           count(*) FILTER (WHERE source = 'api') AS api
      FROM redemptions
     WHERE status = 'fulfilled' AND created_at > now() - make_interval(days => {RECENT_DAYS})
     GROUP BY brand_id, denomination_cents
), pairs AS (
    SELECT brand_id, denomination_cents FROM stock UNION SELECT brand_id, denomination_cents FROM recent
)
SELECT b.id::text AS brand_id, b.name AS brand, k.denomination_cents, coalesce(s.pools, 0) AS pools,
       coalesce(s.available, 0) AS available, coalesce(s.imported, 0) - coalesce(s.available, 0) AS claimed,
       s.low_stock_threshold, coalesce(r.csv, 0) AS recent_csv, coalesce(r.api, 0) AS recent_api,
       CASE WHEN coalesce(s.available, 0) = 0 THEN 'red'
            WHEN s.available < greatest({monitor.POOL_WARNING_BELOW}, s.low_stock_threshold) THEN 'yellow'
            ELSE 'green' END AS health
  FROM pairs k
  JOIN brands b ON b.id = k.brand_id
  LEFT JOIN stock s ON s.brand_id = k.brand_id AND s.denomination_cents = k.denomination_cents
  LEFT JOIN recent r ON r.brand_id = k.brand_id AND r.denomination_cents = k.denomination_cents
 ORDER BY b.name, b.id, k.denomination_cents
"""

_AGENCIES = """
SELECT a.id::text, a.name, a.account_id::text, acc.balance_cents,
       (SELECT count(*) FROM clients c WHERE c.agency_id = a.id) AS clients
  FROM agencies a JOIN credit_accounts acc ON acc.id = a.account_id
 ORDER BY acc.balance_cents, a.created_at, a.id
 LIMIT CAST(:n AS integer)
"""

_AGENCY_TOTALS = """
SELECT count(*) AS agencies, coalesce(sum(acc.balance_cents), 0) AS balance_cents
  FROM agencies a JOIN credit_accounts acc ON acc.id = a.account_id
"""

_OPEN_ALERTS = "SELECT severity, count(*) AS n FROM system_alerts WHERE status <> 'resolved' GROUP BY severity"
_LATEST_ALERTS = """
SELECT id::text FROM system_alerts WHERE status <> 'resolved'
 ORDER BY first_seen DESC, id DESC LIMIT CAST(:n AS integer)
"""

_PROFIT = f"""
SELECT count(*) FILTER (WHERE r.created_at >= {_MONTH_START}) AS month_redemptions,
       coalesce(sum(r.amount_charged_cents) FILTER (WHERE r.created_at >= {_MONTH_START}), 0) AS month_charged,
       coalesce(sum(r.cost_basis_cents) FILTER (WHERE r.created_at >= {_MONTH_START}), 0) AS month_cost,
       count(*) AS recent_redemptions, coalesce(sum(r.amount_charged_cents), 0) AS recent_charged,
       coalesce(sum(r.cost_basis_cents), 0) AS recent_cost
  FROM redemptions r
 WHERE r.status = 'fulfilled' AND r.created_at >= least({_MONTH_START}, now() - make_interval(days => {RECENT_DAYS}))
"""

_PLATFORM = """
SELECT (SELECT balance_cents FROM credit_accounts WHERE owner_type = 'platform') AS platform_balance_cents,
       last_finished_at, (run_token IS NOT NULL AND lease_until > now()) AS running,
       last_result->>'success' AS last_success
  FROM monitor_state WHERE id
"""

_THRESHOLD = """
SELECT coalesce(
    (SELECT low_balance_cents FROM alert_thresholds WHERE entity_type = :t AND entity_id = CAST(:id AS uuid)),
    (SELECT low_balance_cents FROM alert_thresholds WHERE entity_type = :t AND entity_id IS NULL))
"""

_BALANCE = 'SELECT balance_cents FROM credit_accounts WHERE id = CAST(:id AS uuid)'

_AGENCY_CLIENTS = f"""
SELECT c.id::text, c.name, c.account_id::text, acc.balance_cents,
       (SELECT count(*) FROM campaigns k WHERE k.client_id = c.id) AS campaigns,
       (SELECT count(*) FROM campaigns k WHERE k.client_id = c.id AND k.status = 'active') AS active_campaigns,
       m.redemptions, m.spend_cents
  FROM clients c
  JOIN credit_accounts acc ON acc.id = c.account_id
 CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status = 'fulfilled') AS redemptions,
           coalesce(sum(r.amount_charged_cents) FILTER (WHERE {_SPENT}), 0) AS spend_cents
      FROM redemptions r WHERE r.client_id = c.id AND r.created_at >= {_MONTH_START}
 ) m
 WHERE c.agency_id = CAST(:agency AS uuid)
 ORDER BY c.created_at, c.id
 LIMIT CAST(:n AS integer)
"""

_AGENCY_MONTHS = f"""
WITH months AS (
    SELECT generate_series({_MONTH_START} - make_interval(months => {MONTHS - 1}), {_MONTH_START},
                           interval '1 month') AS starts
), usage AS (
    SELECT date_trunc('month', r.created_at, 'UTC') AS starts,
           count(*) FILTER (WHERE r.status = 'fulfilled') AS redemptions,
           coalesce(sum(r.amount_charged_cents) FILTER (WHERE {_SPENT}), 0) AS spend_cents,
           coalesce(sum(r.amount_charged_cents - r.agency_price_cents)
                    FILTER (WHERE r.status = 'fulfilled' AND r.agency_price_cents IS NOT NULL), 0) AS profit_cents
      FROM clients c JOIN redemptions r ON r.client_id = c.id
     WHERE c.agency_id = CAST(:agency AS uuid)
       AND r.created_at >= {_MONTH_START} - make_interval(months => {MONTHS - 1})
     GROUP BY 1
)
SELECT to_char(m.starts AT TIME ZONE 'UTC', 'YYYY-MM') AS month, coalesce(u.redemptions, 0) AS redemptions,
       coalesce(u.spend_cents, 0) AS spend_cents, coalesce(u.profit_cents, 0) AS profit_cents
  FROM months m LEFT JOIN usage u ON u.starts = m.starts
 ORDER BY m.starts
"""

_CLIENT_CAMPAIGNS = f"""
SELECT c.id::text, c.name, c.status, c.paused_reason, c.budget_mode, c.account_id::text,
       own_account.balance_cents, acc.balance_cents AS available_cents, s.redemptions, s.spend_cents,
       campaign_min_price_cents(c.id, NULL) AS cheapest_cents
  {monitor.PAYING_ACCOUNT}
  JOIN credit_accounts own_account ON own_account.id = c.account_id
 CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status = 'fulfilled') AS redemptions,
           coalesce(sum(r.amount_charged_cents) FILTER (WHERE {_SPENT}), 0) AS spend_cents
      FROM redemptions r WHERE r.campaign_id = c.id
 ) s
 WHERE c.client_id = CAST(:client AS uuid)
 ORDER BY c.created_at, c.id
 LIMIT CAST(:n AS integer)
"""


def _money(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name.removesuffix('_cents'): to_dollars(int(row[name])) for name in names}


def _profit(redemptions: int, charged_cents: Any, cost_cents: Any) -> dict[str, Any]:
    charged, cost = int(charged_cents), int(cost_cents)  # sums of bigint arrive as Decimal
    profit = charged - cost
    return {
        'redemptions': int(redemptions),
        'charged': to_dollars(charged),
        'cost': to_dollars(cost),
        'profit': to_dollars(profit),
        'margin_percent': round(100 * profit / charged, 2) if charged else None,
    }


# --- admin -------------------------------------------------------------------------------------------------


def admin_dashboard(subject: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        totals = uow.fetch_one(_AGENCY_TOTALS)
        profit = uow.fetch_one(_PROFIT)
        platform = uow.fetch_one(_PLATFORM)
        assert totals is not None and profit is not None and platform is not None
        open_alerts = {r['severity']: int(r['n']) for r in uow.fetch(_OPEN_ALERTS)}
        latest = [r['id'] for r in uow.fetch(_LATEST_ALERTS, n=ALERTS_LISTED)]
        return {
            'inventory': [_inventory(r) for r in uow.fetch(_INVENTORY)],
            'agencies': {
                'count': int(totals['agencies']),
                'total_balance': to_dollars(int(totals['balance_cents'])),
                'lowest_balances': [
                    {
                        'id': r['id'],
                        'name': r['name'],
                        'account_id': r['account_id'],
                        'balance': to_dollars(r['balance_cents']),
                        'clients': int(r['clients']),
                    }
                    for r in uow.fetch(_AGENCIES, n=LISTED)
                ],
            },
            'alerts': {
                'open': {s: open_alerts.get(s, 0) for s in alerts.SEVERITIES},
                'latest': alerts.fetch(uow, latest),
            },
            'profit': {
                'month_to_date': _profit(profit['month_redemptions'], profit['month_charged'], profit['month_cost']),
                f'last_{RECENT_DAYS}_days': _profit(
                    profit['recent_redemptions'], profit['recent_charged'], profit['recent_cost']
                ),
            },
            'platform': {'credit_issued': to_dollars(-int(platform['platform_balance_cents']))},
            'monitor': {
                'last_run_at': pagination.iso(platform['last_finished_at']),
                'last_run_succeeded': None if platform['last_success'] is None else platform['last_success'] == 'true',
                'running': bool(platform['running']),
            },
        }

    return db.in_transaction(work, read_only=True)


def _inventory(row: dict[str, Any]) -> dict[str, Any]:
    return {
        'brand_id': row['brand_id'],
        'brand': row['brand'],
        'denomination': to_dollars(row['denomination_cents']),
        'health': row['health'],
        'csv': {
            'pools': int(row['pools']),
            'available': int(row['available']),
            'claimed': int(row['claimed']),
            'low_stock_threshold': row['low_stock_threshold'],
        },
        f'redemptions_last_{RECENT_DAYS}_days': {'csv': int(row['recent_csv']), 'api': int(row['recent_api'])},
    }


# --- agency ------------------------------------------------------------------------------------------------


def agency_dashboard(subject: str, agency_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        agency = auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        balance = int(uow.value(_BALANCE, id=agency['account_id']))
        clients = uow.fetch(_AGENCY_CLIENTS, agency=agency['id'], n=CLIENTS_LISTED)
        return {
            'agency': {
                'id': agency['id'],
                'name': agency['name'],
                'account_id': agency['account_id'],
                'balance': to_dollars(balance),
                'low_balance_threshold': to_dollars(int(uow.value(_THRESHOLD, t='agency', id=agency['id']))),
            },
            'clients': [
                {
                    'id': c['id'],
                    'name': c['name'],
                    'account_id': c['account_id'],
                    'balance': to_dollars(c['balance_cents']),
                    'campaigns': int(c['campaigns']),
                    'active_campaigns': int(c['active_campaigns']),
                    'month_to_date': {'redemptions': int(c['redemptions']), 'spend': to_dollars(int(c['spend_cents']))},
                }
                for c in clients
            ],
            'monthly': [
                {'month': m['month'], 'redemptions': int(m['redemptions']), **_money(m, 'spend_cents', 'profit_cents')}
                for m in uow.fetch(_AGENCY_MONTHS, agency=agency['id'])
            ],
        }

    return db.in_transaction(work, read_only=True)


# --- client ------------------------------------------------------------------------------------------------


def client_dashboard(subject: str, client_id: str) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        client = auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        balance = int(uow.value(_BALANCE, id=client['account_id']))
        campaigns = uow.fetch(_CLIENT_CAMPAIGNS, client=client['id'], n=CAMPAIGNS_LISTED)
        return {
            'client': {
                'id': client['id'],
                'agency_id': client['agency_id'],
                'name': client['name'],
                'account_id': client['account_id'],
                'balance': to_dollars(balance),
                'low_balance_threshold': to_dollars(int(uow.value(_THRESHOLD, t='client', id=client['id']))),
            },
            'campaigns': [_campaign(c) for c in campaigns],
        }

    return db.in_transaction(work, read_only=True)


def _campaign(row: dict[str, Any]) -> dict[str, Any]:
    cheapest = row['cheapest_cents']
    available = int(row['available_cents'])
    if row['status'] == 'ended':
        remaining: int | None = 0
    else:
        remaining = available // int(cheapest) if cheapest else None
    return {
        'id': row['id'],
        'name': row['name'],
        'status': row['status'],
        'paused_reason': row['paused_reason'],
        'budget_mode': row['budget_mode'],
        'account_id': row['account_id'],
        'balance': to_dollars(int(row['balance_cents'])),
        # what the campaign can spend: its own balance (isolated) or its client's, shared with the client's other
        # shared campaigns
        'available_credit': to_dollars(available),
        'redemptions': int(row['redemptions']),
        'spend': to_dollars(int(row['spend_cents'])),
        'cheapest_card': None if cheapest is None else to_dollars(int(cheapest)),
        'estimated_redemptions_remaining': remaining,
    }
