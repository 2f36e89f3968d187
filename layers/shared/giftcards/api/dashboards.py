"""Dashboards: GET /dashboards/admin, /dashboards/agencies/{agency_id}, /dashboards/clients/{client_id}."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from giftcards import alerts, dashboards, deliveries, hierarchy
from giftcards.api.alerts import AlertShown
from giftcards.api.app import SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Dollars, IsoTimestamp
from giftcards.money import to_dollars

router = Router()

# --- the admin dashboard -------------------------------------------------------------------------------


class CsvStock(Answer):
    pools: int
    available: int
    claimed: int
    low_stock_threshold: int | None = Field(description='the highest of its pools; null without pools')

    @classmethod
    def of(cls, line: dashboards.InventoryLine) -> CsvStock:
        return cls(
            pools=line.pools,
            available=line.available,
            claimed=line.claimed,
            low_stock_threshold=line.low_stock_threshold,
        )


class RecentSplit(Answer):
    csv: int
    api: int


class InventoryOut(Answer):
    brand_id: str
    brand: str
    denomination: Dollars
    health: dashboards.Health
    csv: CsvStock
    # The window is dashboards.RECENT_DAYS: the answer names it in its keys.
    redemptions_last_30_days: RecentSplit = Field(description='fulfilled redemptions by source')

    @classmethod
    def of(cls, line: dashboards.InventoryLine) -> InventoryOut:
        return cls(
            brand_id=line.brand_id,
            brand=line.brand,
            denomination=to_dollars(line.denomination_cents),
            health=line.health,
            csv=CsvStock.of(line),
            redemptions_last_30_days=RecentSplit(csv=line.recent_csv, api=line.recent_api),
        )


class AgencyBalance(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    clients: int

    @classmethod
    def of(cls, agency: dashboards.AgencyBalance) -> AgencyBalance:
        return cls(
            id=agency.id,
            name=agency.name,
            account_id=agency.account_id,
            balance=to_dollars(agency.balance_cents),
            clients=agency.clients,
        )


class DeliveryCounts(Answer):
    """Deliveries to recipients of the last 30 days, by status."""

    queued: int
    sent: int
    delivered: int
    bounced: int
    failed: int

    @classmethod
    def of(cls, counts: dict[deliveries.Status, int]) -> DeliveryCounts:
        return cls.model_validate(counts)


class AgenciesOut(Answer):
    count: int
    total_balance: Dollars
    lowest_balances: list[AgencyBalance]


class OpenAlertCounts(Answer):
    info: int
    warning: int
    critical: int

    @classmethod
    def of(cls, counts: dict[alerts.Severity, int]) -> OpenAlertCounts:
        return cls(info=counts['info'], warning=counts['warning'], critical=counts['critical'])


class AlertsOut(Answer):
    open: OpenAlertCounts
    latest: list[AlertShown]


class ProfitOut(Answer):
    redemptions: int
    charged: Dollars
    cost: Dollars
    profit: Dollars
    margin_percent: float | None

    @classmethod
    def of(cls, profit: dashboards.Profit) -> ProfitOut:
        return cls(
            redemptions=profit.redemptions,
            charged=to_dollars(profit.charged_cents),
            cost=to_dollars(profit.cost_cents),
            profit=to_dollars(profit.profit_cents),
            margin_percent=profit.margin_percent,
        )


class ProfitsOut(Answer):
    month_to_date: ProfitOut
    last_30_days: ProfitOut


class PlatformCredit(Answer):
    credit_issued: Dollars = Field(description='what the platform has given out (minus its balance)')
    credit_spent: Dollars = Field(description='what redemptions have consumed of it')
    credit_outstanding: Dollars = Field(description='issued and not spent: held by agencies, clients and campaigns')

    @classmethod
    def of(cls, dashboard: dashboards.AdminDashboard) -> PlatformCredit:
        return cls(
            credit_issued=to_dollars(dashboard.credit_issued_cents),
            credit_spent=to_dollars(dashboard.credit_spent_cents),
            credit_outstanding=to_dollars(dashboard.credit_issued_cents - dashboard.credit_spent_cents),
        )


class MonitorStatus(Answer):
    last_run_at: IsoTimestamp | None
    last_run_succeeded: bool | None
    running: bool

    @classmethod
    def of(cls, status: dashboards.MonitorStatus) -> MonitorStatus:
        return cls(last_run_at=status.last_run_at, last_run_succeeded=status.last_run_succeeded, running=status.running)


class AdminDashboard(Answer):
    inventory: list[InventoryOut]
    agencies: AgenciesOut
    alerts: AlertsOut
    profit: ProfitsOut
    platform: PlatformCredit
    monitor: MonitorStatus
    deliveries: DeliveryCounts

    @classmethod
    def of(cls, dashboard: dashboards.AdminDashboard) -> AdminDashboard:
        return cls(
            inventory=[InventoryOut.of(line) for line in dashboard.inventory],
            agencies=AgenciesOut(
                count=dashboard.agencies,
                total_balance=to_dollars(dashboard.agencies_balance_cents),
                lowest_balances=[AgencyBalance.of(agency) for agency in dashboard.lowest_balances],
            ),
            alerts=AlertsOut(
                open=OpenAlertCounts.of(dashboard.open_alerts),
                latest=[AlertShown.of(alert) for alert in dashboard.latest_alerts],
            ),
            profit=ProfitsOut(
                month_to_date=ProfitOut.of(dashboard.month_to_date), last_30_days=ProfitOut.of(dashboard.recent)
            ),
            platform=PlatformCredit.of(dashboard),
            monitor=MonitorStatus.of(dashboard.monitor),
            deliveries=DeliveryCounts.of(dashboard.deliveries),
        )


# --- the agency dashboard ------------------------------------------------------------------------------


class DashboardAgency(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    low_balance_threshold: Dollars

    @classmethod
    def of(cls, agency: dashboards.AgencySummary) -> DashboardAgency:
        return cls(
            id=agency.id,
            name=agency.name,
            account_id=agency.account_id,
            balance=to_dollars(agency.balance_cents),
            low_balance_threshold=to_dollars(agency.low_balance_threshold_cents),
        )


class MonthUsage(Answer):
    redemptions: int
    spend: Dollars


class ClientUsage(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    campaigns: int
    active_campaigns: int
    month_to_date: MonthUsage

    @classmethod
    def of(cls, client: dashboards.ClientUsage) -> ClientUsage:
        return cls(
            id=client.id,
            name=client.name,
            account_id=client.account_id,
            balance=to_dollars(client.balance_cents),
            campaigns=client.campaigns,
            active_campaigns=client.active_campaigns,
            month_to_date=MonthUsage(redemptions=client.month_redemptions, spend=to_dollars(client.month_spend_cents)),
        )


class MonthOut(Answer):
    month: str = Field(description='YYYY-MM, UTC')
    redemptions: int
    spend: Dollars
    profit: Dollars

    @classmethod
    def of(cls, usage: dashboards.MonthUsage) -> MonthOut:
        return cls(
            month=f'{usage.month:%Y-%m}',
            redemptions=usage.redemptions,
            spend=to_dollars(usage.spend_cents),
            profit=to_dollars(usage.profit_cents),
        )


class AgencyDashboard(Answer):
    agency: DashboardAgency
    clients: list[ClientUsage]
    monthly: list[MonthOut]
    deliveries: DeliveryCounts

    @classmethod
    def of(cls, dashboard: dashboards.AgencyDashboard) -> AgencyDashboard:
        return cls(
            agency=DashboardAgency.of(dashboard.agency),
            clients=[ClientUsage.of(client) for client in dashboard.clients],
            monthly=[MonthOut.of(month) for month in dashboard.monthly],
            deliveries=DeliveryCounts.of(dashboard.deliveries),
        )


# --- the client dashboard ------------------------------------------------------------------------------


class DashboardClient(Answer):
    id: str
    agency_id: str
    name: str
    account_id: str
    balance: Dollars
    low_balance_threshold: Dollars

    @classmethod
    def of(cls, client: dashboards.ClientSummary) -> DashboardClient:
        return cls(
            id=client.id,
            agency_id=client.agency_id,
            name=client.name,
            account_id=client.account_id,
            balance=to_dollars(client.balance_cents),
            low_balance_threshold=to_dollars(client.low_balance_threshold_cents),
        )


class CampaignUsage(Answer):
    id: str
    name: str
    status: hierarchy.CampaignStatus
    paused_reason: str | None
    budget_mode: hierarchy.BudgetMode
    account_id: str
    balance: Dollars
    available_credit: Dollars = Field(description="its own balance (isolated) or its client's (shared)")
    redemptions: int
    spend: Dollars
    cheapest_card: Dollars | None
    estimated_redemptions_remaining: int | None

    @classmethod
    def of(cls, campaign: dashboards.CampaignUsage) -> CampaignUsage:
        return cls(
            id=campaign.id,
            name=campaign.name,
            status=campaign.status,
            paused_reason=campaign.paused_reason,
            budget_mode=campaign.budget_mode,
            account_id=campaign.account_id,
            balance=to_dollars(campaign.balance_cents),
            available_credit=to_dollars(campaign.available_cents),
            redemptions=campaign.redemptions,
            spend=to_dollars(campaign.spend_cents),
            cheapest_card=None if campaign.cheapest_card_cents is None else to_dollars(campaign.cheapest_card_cents),
            estimated_redemptions_remaining=campaign.estimated_redemptions_remaining,
        )


class ClientDashboard(Answer):
    client: DashboardClient
    campaigns: list[CampaignUsage]
    deliveries: DeliveryCounts

    @classmethod
    def of(cls, dashboard: dashboards.ClientDashboard) -> ClientDashboard:
        return cls(
            client=DashboardClient.of(dashboard.client),
            campaigns=[CampaignUsage.of(campaign) for campaign in dashboard.campaigns],
            deliveries=DeliveryCounts.of(dashboard.deliveries),
        )


# --- routes --------------------------------------------------------------------------------------------


@router.get(
    '/dashboards/admin',
    summary='Inventory health, agencies, open alerts, profit (platform admin)',
    description='Inventory per brand and denomination: CSV stock and health (red: none, yellow: below the low-stock '
    'threshold or 10, green), and the CSV/API split of the last 30 days of redemptions.',
    responses=answers(SIGNED_IN | {403: '`forbidden`: only a platform admin may'}),
)
def get_admin_dashboard() -> AdminDashboard:
    return AdminDashboard.of(dashboards.admin_dashboard(caller_subject(router)))


@router.get(
    '/dashboards/agencies/<agency_id>',
    summary="An agency's balance, its clients' balances and usage, monthly metrics",
    description="Platform admin or the agency's admin. Profit: what clients were charged minus the agency price.",
    responses=answers(SIGNED_IN | {404: '`not_found`: no such agency for this caller'}),
)
def get_agency_dashboard(agency_id: str) -> AgencyDashboard:
    return AgencyDashboard.of(dashboards.agency_dashboard(caller_subject(router), agency_id))


@router.get(
    '/dashboards/clients/<client_id>',
    summary="A client's balance and its campaigns: budget mode, balance, spend, estimated redemptions remaining",
    description='Estimated redemptions remaining: the paying account balance over the cheapest card the campaign '
    'deals in (shared campaigns share their client balance).',
    responses=answers(SIGNED_IN | {404: '`not_found`: no such client for this caller'}),
)
def get_client_dashboard(client_id: str) -> ClientDashboard:
    return ClientDashboard.of(dashboards.client_dashboard(caller_subject(router), client_id))
