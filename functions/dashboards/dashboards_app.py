"""The dashboards function: what administrators watch (the dashboards, the alerts, an account and its statement);
its routes are declared in template.yaml, the logic lives in the giftcards layer.

Apart from the admin function so that each cold start builds only its own routes' models (bench/README.md,
`bench.imports`), and so that it holds none of the admin function's rights to seal cards, hash codes or queue
deliveries."""

from giftcards.api import alerts, dashboards, ledger
from giftcards.api.app import http_handler, make_app
from giftcards.config import Need, require

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE)

ROUTERS = [dashboards.router, alerts.router, ledger.accounts_router]

app = make_app(*ROUTERS)
lambda_handler = http_handler(app)
