"""Dashboards: GET /dashboards/admin, /dashboards/agencies/{agency_id}, /dashboards/clients/{client_id}."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from giftcards import dashboards, hierarchy
from giftcards.api.alerts import AlertShown
from giftcards.api.app import SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Dollars, IsoTimestamp

router = Router()

# --- the admin dashboard -------------------------------------------------------------------------------


class CsvStock(Answer):
    pools: int
    available: int
    claimed: int
    low_stock_threshold: int | None = Field(description='the highest of its pools; null without pools')


class RecentSplit(Answer):
    csv: int
    api: int


class InventoryOut(Answer):
    brand_id: str
    brand: str
    denomination: Dollars
    health: Literal['green', 'yellow', 'red']
    csv: CsvStock
    # The window is dashboards.RECENT_DAYS: the answer names it in its keys.
    redemptions_last_30_days: RecentSplit = Field(description='fulfilled redemptions by source')


class AgencyBalance(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    clients: int


class AgenciesOut(Answer):
    count: int
    total_balance: Dollars
    lowest_balances: list[AgencyBalance]


class OpenAlertCounts(Answer):
    info: int
    warning: int
    critical: int


class AlertsOut(Answer):
    open: OpenAlertCounts
    latest: list[AlertShown]


class ProfitOut(Answer):
    redemptions: int
    charged: Dollars
    cost: Dollars
    profit: Dollars
    margin_percent: float | None


class ProfitsOut(Answer):
    month_to_date: ProfitOut
    last_30_days: ProfitOut


class PlatformCredit(Answer):
    credit_issued: Dollars


class MonitorStatus(Answer):
    last_run_at: IsoTimestamp | None
    last_run_succeeded: bool | None
    running: bool


class AdminDashboard(Answer):
    inventory: list[InventoryOut]
    agencies: AgenciesOut
    alerts: AlertsOut
    profit: ProfitsOut
    platform: PlatformCredit
    monitor: MonitorStatus


# --- the agency dashboard ------------------------------------------------------------------------------


class DashboardAgency(Answer):
    id: str
    name: str
    account_id: str
    balance: Dollars
    low_balance_threshold: Dollars


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


class MonthOut(Answer):
    month: str = Field(description='YYYY-MM, UTC')
    redemptions: int
    spend: Dollars
    profit: Dollars


class AgencyDashboard(Answer):
    agency: DashboardAgency
    clients: list[ClientUsage]
    monthly: list[MonthOut]


# --- the client dashboard ------------------------------------------------------------------------------


class DashboardClient(Answer):
    id: str
    agency_id: str
    name: str
    account_id: str
    balance: Dollars
    low_balance_threshold: Dollars


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


class ClientDashboard(Answer):
    client: DashboardClient
    campaigns: list[CampaignUsage]


# --- routes --------------------------------------------------------------------------------------------


@router.get(
    '/dashboards/admin',
    summary='Inventory health, agencies, open alerts, profit (platform admin)',
    description='Inventory per brand and denomination: CSV stock and health (red: none, yellow: below the low-stock '
    'threshold or 10, green), and the CSV/API split of the last 30 days of redemptions.',
    responses=answers(SIGNED_IN | {403: '`forbidden`: only a platform admin may'}),
)
def get_admin_dashboard() -> AdminDashboard:
    return AdminDashboard.model_validate(dashboards.admin_dashboard(caller_subject(router)))


@router.get(
    '/dashboards/agencies/<agency_id>',
    summary="An agency's balance, its clients' balances and usage, monthly metrics",
    description="Platform admin or the agency's admin. Profit: what clients were charged minus the agency price.",
    responses=answers(SIGNED_IN | {404: '`not_found`: no such agency for this caller'}),
)
def get_agency_dashboard(agency_id: str) -> AgencyDashboard:
    return AgencyDashboard.model_validate(dashboards.agency_dashboard(caller_subject(router), agency_id))


@router.get(
    '/dashboards/clients/<client_id>',
    summary="A client's balance and its campaigns: budget mode, balance, spend, estimated redemptions remaining",
    description='Estimated redemptions remaining: the paying account balance over the cheapest card the campaign '
    'deals in (shared campaigns share their client balance).',
    responses=answers(SIGNED_IN | {404: '`not_found`: no such client for this caller'}),
)
def get_client_dashboard(client_id: str) -> ClientDashboard:
    return ClientDashboard.model_validate(dashboards.client_dashboard(caller_subject(router), client_id))
