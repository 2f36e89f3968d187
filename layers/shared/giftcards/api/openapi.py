"""`GET /openapi.json`: the OpenAPI 3 description of every route of every function.

Each function serves only its own routers, but all routers live in this package, so the description is
assembled from all of them here (once per warm container) rather than written by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

import giftcards.api

router = Router()

TITLE = 'Gift card credit system'
VERSION = '1.0.0'


def all_routers() -> list[Router]:
    found: list[Router] = []
    for module_info in sorted(pkgutil.iter_modules(giftcards.api.__path__), key=lambda m: m.name):
        if module_info.name in ('app', 'openapi'):
            continue
        module = importlib.import_module(f'giftcards.api.{module_info.name}')
        found.extend(value for value in vars(module).values() if isinstance(value, Router) and value is not router)
    return found


@lru_cache(maxsize=1)
def openapi_document() -> str:
    # The OpenAPI models take longer to import than all of this function's routes: only this route needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from giftcards.api.app import make_app

    app = make_app(*all_routers())
    return app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description='Prepaid gift card credit: hierarchy ledger, CSV pools, vendor waterfall, redemption.',
        security_schemes={'bearer': HTTPBearer(bearerFormat='JWT', description='Cognito access or ID token')},
        security=[{'bearer': []}],
    )


@router.get('/openapi.json', include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type='application/json',
        body=openapi_document(),
        headers={'Cache-Control': 'public, max-age=300'},
    )
