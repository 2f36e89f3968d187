"""The allocate function: POST /allocate-credit and POST /reclaim-credit (routes in template.yaml)."""

from giftcards.api import ledger
from giftcards.api.app import http_handler, make_app
from giftcards.config import Need, require

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE)

app = make_app(ledger.router)
lambda_handler = http_handler(app)
