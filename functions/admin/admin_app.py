"""The admin function: administration (the hierarchy, pools, codes, redemptions and their deliveries), the OpenAPI
description and its /docs page, /me; its routes are declared in template.yaml, the logic lives in the giftcards
layer. The dashboards, the alerts and account statements are the dashboards function's."""

from giftcards.api import codes, deliveries, docs, hierarchy, me, openapi, pools, redemptions
from giftcards.api.app import http_handler, make_app
from giftcards.config import Need, require

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE, Need.CODE_HASH, Need.CARD_KEYS, Need.DELIVERY_QUEUE)

# Each administration area is one router in giftcards.api; add new ones to this list.
ROUTERS = [
    hierarchy.router,
    pools.router,
    codes.router,
    redemptions.router,
    deliveries.router,
    openapi.router,
    docs.router,
    me.router,
]

app = make_app(*ROUTERS)
lambda_handler = http_handler(app)
