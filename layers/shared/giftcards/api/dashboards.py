"""Dashboards: GET /dashboards/admin, /dashboards/agencies/{agency_id}, /dashboards/clients/{client_id}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from giftcards import dashboards
from giftcards.api.app import caller_subject

router = Router()


@router.get(
    '/dashboards/admin',
    summary='Inventory health, agencies, open alerts, profit (platform admin)',
    description='Inventory per brand and denomination: CSV stock and health (red: none, yellow: below the low-stock '
    'threshold or 10, green), and the CSV/API split of the last 30 days of redemptions.',
)
def get_admin_dashboard() -> dict[str, Any]:
    return dashboards.admin_dashboard(caller_subject(router))


@router.get(
    '/dashboards/agencies/<agency_id>',
    summary="An agency's balance, its clients' balances and usage, monthly metrics",
    description="Platform admin or the agency's admin. Profit: what clients were charged minus the agency price.",
)
def get_agency_dashboard(agency_id: str) -> dict[str, Any]:
    return dashboards.agency_dashboard(caller_subject(router), agency_id)


@router.get(
    '/dashboards/clients/<client_id>',
    summary="A client's balance and its campaigns: budget mode, balance, spend, estimated redemptions remaining",
    description='Estimated redemptions remaining: the paying account balance over the cheapest card the campaign '
    'deals in (shared campaigns share their client balance).',
)
def get_client_dashboard(client_id: str) -> dict[str, Any]:
    return dashboards.client_dashboard(caller_subject(router), client_id)
