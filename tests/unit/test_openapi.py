"""GET /openapi.json describes every route template.yaml declares, with the method it is declared for."""

from __future__ import annotations

import json
from pathlib import Path

from giftcard_local.template import http_routes, load_template

from tests.events import call, http_event

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_describes_every_declared_route():
    import admin_app

    status, headers, document = call(admin_app.lambda_handler, http_event('GET', '/openapi.json'))
    assert status == 200
    assert headers['content-type'] == 'application/json'
    assert document['openapi'].startswith('3.')
    described = {(method.upper(), path) for path, ops in document['paths'].items() for method in ops}
    declared = {(r.method, r.path) for r in http_routes(load_template(ROOT / 'template.yaml'))}
    declared -= {('GET', '/openapi.json'), ('GET', '/docs'), ('GET', '/docs/{asset}')}  # the document and its page
    assert declared - described == set()
    assert described - declared == set()


def test_openapi_document_is_valid_json_with_components():
    from giftcards.api.openapi import openapi_document

    document = json.loads(openapi_document())
    assert 'bearer' in document['components']['securitySchemes']
