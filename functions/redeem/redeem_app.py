"""The redeem function (public): the redeem page and POST /redeem; the logic lives in the giftcards layer."""

from giftcards.api import redeem
from giftcards.api.app import http_handler, make_app

app = make_app(redeem.router)
lambda_handler = http_handler(app)
