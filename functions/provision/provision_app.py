"""The provision function: its routes are declared in template.yaml; the logic lives in the giftcards layer."""

from giftcards.api import provision
from giftcards.api.app import http_handler, make_app

app = make_app(provision.router)
lambda_handler = http_handler(app)
