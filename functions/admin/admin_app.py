"""The admin function: its routes are declared in template.yaml; the logic lives in the giftcards layer."""

from giftcards.api import alerts, codes, dashboards, deliveries, hierarchy, ledger, openapi, pools, redemptions
from giftcards.api.app import http_handler, make_app

# Each administration area is one router in giftcards.api; add new ones to this list.
ROUTERS = [
    hierarchy.router,
    pools.router,
    ledger.accounts_router,
    codes.router,
    redemptions.router,
    alerts.router,
    dashboards.router,
    deliveries.router,
    openapi.router,
]

app = make_app(*ROUTERS)
lambda_handler = http_handler(app)
