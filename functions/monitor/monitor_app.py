"""The monitor function: its routes are declared in template.yaml; the logic lives in the giftcards layer."""

from giftcards.api.app import http_handler, make_app

app = make_app()
lambda_handler = http_handler(app)
