"""The redeem function (public): the redeem page and POST /redeem; the logic lives in the giftcards layer."""

from giftcards.api import redeem
from giftcards.api.app import http_handler, make_app
from giftcards.config import Need, require

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE, Need.CODE_HASH, Need.CARD_KEYS, Need.CARD_REVEAL, Need.VENDORS, Need.DELIVERY_QUEUE)

app = make_app(redeem.router)
lambda_handler = http_handler(app)
