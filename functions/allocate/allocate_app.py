"""The allocate function: POST /allocate-credit and POST /reclaim-credit (routes in template.yaml)."""

from giftcards.api import ledger
from giftcards.api.app import http_handler, make_app

app = make_app(ledger.router)
lambda_handler = http_handler(app)
