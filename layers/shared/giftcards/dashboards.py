"""Role dashboards: one read-only answer each, in one transaction, authorized by scope.

- Admin (platform admin): CSV inventory per brand and denomination with its health and the CSV/API split of recent
  redemptions, agencies with their balances, open alerts, profit, the platform's credit and the last monitor run.
- Agency (platform admin or the agency's admin; 404 for anyone else): its balance, its clients with their balance
  and this month's usage, and monthly metrics for the last six months.
- Client (anyone who may see the client): its balance and its campaigns with budget mode, balance, spend and the
  redemptions their paying account can still buy.

Each dashboard also counts its scope's deliveries of the last RECENT_DAYS days by status (queued, sent, delivered,
bounced, failed).

Each answers a domain value in cents, which its route renders. Months are calendar months in UTC. "Spend" is what
left the paying accounts and was not refunded (fulfilled and pending redemptions); "redemptions" counts fulfilled
ones. Platform profit is charged minus cost basis; an agency's profit is what its clients were charged minus the
agency price of the brand's price list (nothing where the list sets no agency price).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, NamedTuple

from giftcards import alerts, auth, db, deliveries, hierarchy, ledger, pools
from giftcards.db import UnitOfWork

LISTED = 100  # agencies on the admin dashboard, lowest balance first
ALERTS_LISTED = 10
CLIENTS_LISTED = 500
CAMPAIGNS_LISTED = 500
MONTHS = 6
RECENT_DAYS = 30

Health = Literal['green', 'yellow', 'red']  # red: no card available; yellow: low stock

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
            WHEN s.available < greatest({pools.LOW_STOCK_BELOW}, s.low_stock_threshold) THEN 'yellow'
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
       (SELECT coalesce(sum(balance_cents), 0) FROM credit_accounts
         WHERE owner_type = 'system' AND (system_name = 'spend' OR system_name LIKE 'spend:%')) AS spent_cents,
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

_RECENT_DELIVERIES = f'd.created_at > now() - make_interval(days => {RECENT_DAYS})'
_DELIVERIES = f'SELECT {deliveries.COUNTS} AS counts FROM deliveries d WHERE {_RECENT_DELIVERIES}'
_CLIENT_DELIVERIES = f'{_DELIVERIES} AND d.client_id = CAST(:client AS uuid)'
_AGENCY_DELIVERIES = (
    f'{_DELIVERIES} AND d.client_id IN (SELECT id FROM clients WHERE agency_id = CAST(:agency AS uuid))'
)

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
SELECT CAST(m.starts AT TIME ZONE 'UTC' AS date) AS month, coalesce(u.redemptions, 0) AS redemptions,
       coalesce(u.spend_cents, 0) AS spend_cents, coalesce(u.profit_cents, 0) AS profit_cents
  FROM months m LEFT JOIN usage u ON u.starts = m.starts
 ORDER BY m.starts
"""

_CLIENT_CAMPAIGNS = f"""
SELECT c.id::text, c.name, c.status, c.paused_reason, c.budget_mode, c.account_id::text,
       own_account.balance_cents, acc.balance_cents AS available_cents, s.redemptions, s.spend_cents,
       campaign_min_price_cents(c.id, NULL) AS cheapest_cents
  {ledger.PAYING_ACCOUNT}
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


# --- what the dashboards answer ----------------------------------------------------------------------------


class InventoryLine(NamedTuple):
    """CSV stock of one brand and denomination, with its health, and its recent redemptions by source."""

    brand_id: str
    brand: str
    denomination_cents: int
    health: Health
    pools: int
    available: int
    claimed: int
    low_stock_threshold: int | None  # the highest of its pools; None without pools
    recent_csv: int  # fulfilled redemptions in the last RECENT_DAYS days, from CSV pools
    recent_api: int  # ... and from vendors


class AgencyBalance(NamedTuple):
    id: str
    name: str
    account_id: str
    balance_cents: int
    clients: int


class Profit(NamedTuple):
    """Fulfilled redemptions of a period: what they charged and what their cards cost."""

    redemptions: int
    charged_cents: int
    cost_cents: int

    @property
    def profit_cents(self) -> int:
        return self.charged_cents - self.cost_cents

    @property
    def margin_percent(self) -> float | None:
        return round(100 * self.profit_cents / self.charged_cents, 2) if self.charged_cents else None


class MonitorStatus(NamedTuple):
    last_run_at: datetime | None
    last_run_succeeded: bool | None  # None: no run has finished
    running: bool


class AdminDashboard(NamedTuple):
    inventory: list[InventoryLine]
    agencies: int
    agencies_balance_cents: int  # of every agency
    lowest_balances: list[AgencyBalance]  # at most LISTED, lowest first
    open_alerts: dict[alerts.Severity, int]  # every severity, 0 where none is open
    latest_alerts: list[alerts.Alert]  # open ones, at most ALERTS_LISTED, newest first
    month_to_date: Profit
    recent: Profit  # the last RECENT_DAYS days
    credit_issued_cents: int  # what the platform has given out: minus its balance
    credit_spent_cents: int  # what redemptions consumed: the spend accounts' balances
    monitor: MonitorStatus
    deliveries: dict[deliveries.Status, int]  # of the last RECENT_DAYS days, every status


class AgencySummary(NamedTuple):
    id: str
    name: str
    account_id: str
    balance_cents: int
    low_balance_threshold_cents: int


class ClientUsage(NamedTuple):
    """A client of the agency with its balance, and its redemptions and spend this month."""

    id: str
    name: str
    account_id: str
    balance_cents: int
    campaigns: int
    active_campaigns: int
    month_redemptions: int
    month_spend_cents: int


class MonthUsage(NamedTuple):
    month: date  # its first day, UTC
    redemptions: int
    spend_cents: int
    profit_cents: int


class AgencyDashboard(NamedTuple):
    agency: AgencySummary
    clients: list[ClientUsage]  # at most CLIENTS_LISTED, oldest first
    monthly: list[MonthUsage]  # the last MONTHS months, oldest first
    deliveries: dict[deliveries.Status, int]  # of its clients, the last RECENT_DAYS days


class ClientSummary(NamedTuple):
    id: str
    agency_id: str
    name: str
    account_id: str
    balance_cents: int
    low_balance_threshold_cents: int


class CampaignUsage(NamedTuple):
    id: str
    name: str
    status: hierarchy.CampaignStatus
    paused_reason: hierarchy.PausedReason | None
    budget_mode: hierarchy.BudgetMode
    account_id: str
    balance_cents: int
    # what the campaign can spend: its own balance (isolated) or its client's, shared with the client's other
    # shared campaigns
    available_cents: int
    redemptions: int
    spend_cents: int
    cheapest_card_cents: int | None  # None: no card it deals in has a price
    estimated_redemptions_remaining: int | None


class ClientDashboard(NamedTuple):
    client: ClientSummary
    campaigns: list[CampaignUsage]  # at most CAMPAIGNS_LISTED, oldest first
    deliveries: dict[deliveries.Status, int]  # the last RECENT_DAYS days


def _profit(redemptions: Any, charged_cents: Any, cost_cents: Any) -> Profit:
    return Profit(int(redemptions), int(charged_cents), int(cost_cents))  # sums of bigint arrive as Decimal


# --- admin -------------------------------------------------------------------------------------------------


def admin_dashboard(subject: str) -> AdminDashboard:
    def work(uow: UnitOfWork) -> AdminDashboard:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        totals = uow.fetch_one(_AGENCY_TOTALS)
        profit = uow.fetch_one(_PROFIT)
        platform = uow.fetch_one(_PLATFORM)
        assert totals is not None and profit is not None and platform is not None
        open_alerts = {r['severity']: int(r['n']) for r in uow.fetch(_OPEN_ALERTS)}
        latest = [r['id'] for r in uow.fetch(_LATEST_ALERTS, n=ALERTS_LISTED)]
        return AdminDashboard(
            inventory=[_inventory(r) for r in uow.fetch(_INVENTORY)],
            agencies=int(totals['agencies']),
            agencies_balance_cents=int(totals['balance_cents']),
            lowest_balances=[
                AgencyBalance(r['id'], r['name'], r['account_id'], r['balance_cents'], int(r['clients']))
                for r in uow.fetch(_AGENCIES, n=LISTED)
            ],
            open_alerts={s: open_alerts.get(s, 0) for s in alerts.SEVERITIES},
            latest_alerts=alerts.find(uow, latest),
            month_to_date=_profit(profit['month_redemptions'], profit['month_charged'], profit['month_cost']),
            recent=_profit(profit['recent_redemptions'], profit['recent_charged'], profit['recent_cost']),
            credit_issued_cents=-int(platform['platform_balance_cents']),
            credit_spent_cents=int(platform['spent_cents']),
            monitor=MonitorStatus(
                last_run_at=platform['last_finished_at'],
                last_run_succeeded=None if platform['last_success'] is None else platform['last_success'] == 'true',
                running=bool(platform['running']),
            ),
            deliveries=deliveries.counts_of(uow.value(_DELIVERIES)),
        )

    return db.in_transaction(work, read_only=True)


def _inventory(row: dict[str, Any]) -> InventoryLine:
    return InventoryLine(
        brand_id=row['brand_id'],
        brand=row['brand'],
        denomination_cents=row['denomination_cents'],
        health=row['health'],
        pools=int(row['pools']),
        available=int(row['available']),
        claimed=int(row['claimed']),
        low_stock_threshold=row['low_stock_threshold'],
        recent_csv=int(row['recent_csv']),
        recent_api=int(row['recent_api']),
    )


# --- agency ------------------------------------------------------------------------------------------------


def agency_dashboard(subject: str, agency_id: str) -> AgencyDashboard:
    def work(uow: UnitOfWork) -> AgencyDashboard:
        agency = auth.visible_agency(uow, auth.load_caller(uow, subject), agency_id)
        balance = int(uow.value(_BALANCE, id=agency['account_id']))
        clients = uow.fetch(_AGENCY_CLIENTS, agency=agency['id'], n=CLIENTS_LISTED)
        return AgencyDashboard(
            agency=AgencySummary(
                id=agency['id'],
                name=agency['name'],
                account_id=agency['account_id'],
                balance_cents=balance,
                low_balance_threshold_cents=int(uow.value(_THRESHOLD, t='agency', id=agency['id'])),
            ),
            clients=[
                ClientUsage(
                    id=c['id'],
                    name=c['name'],
                    account_id=c['account_id'],
                    balance_cents=c['balance_cents'],
                    campaigns=int(c['campaigns']),
                    active_campaigns=int(c['active_campaigns']),
                    month_redemptions=int(c['redemptions']),
                    month_spend_cents=int(c['spend_cents']),
                )
                for c in clients
            ],
            monthly=[
                MonthUsage(m['month'], int(m['redemptions']), int(m['spend_cents']), int(m['profit_cents']))
                for m in uow.fetch(_AGENCY_MONTHS, agency=agency['id'])
            ],
            deliveries=deliveries.counts_of(uow.value(_AGENCY_DELIVERIES, agency=agency['id'])),
        )

    return db.in_transaction(work, read_only=True)


# --- client ------------------------------------------------------------------------------------------------


def client_dashboard(subject: str, client_id: str) -> ClientDashboard:
    def work(uow: UnitOfWork) -> ClientDashboard:
        client = auth.visible_client(uow, auth.load_caller(uow, subject), client_id)
        balance = int(uow.value(_BALANCE, id=client['account_id']))
        campaigns = uow.fetch(_CLIENT_CAMPAIGNS, client=client['id'], n=CAMPAIGNS_LISTED)
        return ClientDashboard(
            client=ClientSummary(
                id=client['id'],
                agency_id=client['agency_id'],
                name=client['name'],
                account_id=client['account_id'],
                balance_cents=balance,
                low_balance_threshold_cents=int(uow.value(_THRESHOLD, t='client', id=client['id'])),
            ),
            campaigns=[_campaign(c) for c in campaigns],
            deliveries=deliveries.counts_of(uow.value(_CLIENT_DELIVERIES, client=client['id'])),
        )

    return db.in_transaction(work, read_only=True)


def _campaign(row: dict[str, Any]) -> CampaignUsage:
    cheapest = None if row['cheapest_cents'] is None else int(row['cheapest_cents'])
    available = int(row['available_cents'])
    if row['status'] == 'ended':
        remaining: int | None = 0
    else:
        remaining = available // cheapest if cheapest else None
    return CampaignUsage(
        id=row['id'],
        name=row['name'],
        status=row['status'],
        paused_reason=row['paused_reason'],
        budget_mode=row['budget_mode'],
        account_id=row['account_id'],
        balance_cents=int(row['balance_cents']),
        available_cents=available,
        redemptions=int(row['redemptions']),
        spend_cents=int(row['spend_cents']),
        cheapest_card_cents=cheapest,
        estimated_redemptions_remaining=remaining,
    )
