"""`GET /openapi.json`: the OpenAPI 3 description of every route of every function.

Each function serves only its own routers, but all routers live in this package, so the description is
assembled from all of them here (once per warm container) rather than written by hand.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import lru_cache

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

import giftcards.api

router = Router()

TITLE = 'Gift card credit system'
VERSION = '1.0.0'

# What Powertools describes of its own validation errors. Every route declares its 422 in the error envelope
# (`app.answers`), the answer a refused caller really gets, so these describe nothing once no route refers to them.
# (The two that refer to ValidationError come first.)
POWERTOOLS_SCHEMAS = ('HTTPValidationError', 'ResponseValidationError', 'ValidationError')


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
    document = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description='Prepaid gift card credit: hierarchy ledger, CSV pools, vendor waterfall, redemption.',
            security_schemes={'bearer': HTTPBearer(bearerFormat='JWT', description='Cognito access or ID token')},
            security=[{'bearer': []}],
        )
    )
    for name in POWERTOOLS_SCHEMAS:
        if f'"#/components/schemas/{name}"' not in json.dumps(document):
            document['components']['schemas'].pop(name, None)
    return json.dumps(document, indent=2)


@router.get('/openapi.json', include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type='application/json',
        body=openapi_document(),
        headers={'Cache-Control': 'public, max-age=300'},
    )
