"""GET /me names what the caller administers (and nothing of anyone else's); GET /docs and /docs/{asset} serve the
API description's page, its own files only, under a policy that loads nothing from elsewhere."""

from __future__ import annotations

import base64
import gzip
from pathlib import Path
from typing import Any

import pytest
from admin_app import lambda_handler

from tests import factories
from tests.events import LambdaContext, call, http_event

DOCS = Path(__file__).resolve().parents[2] / 'web' / 'docs'


def send(method: str, path: str, subject: str | None, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event(method, path, subject=subject, **kwargs))


def test_me_names_the_agency_and_client_the_caller_administers(owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.hierarchy_tree(owner)  # another tenant, which no answer names
    both = factories.agency_admin(owner, tree.agency['id'])
    factories.member(owner, 'client_admin', client_id=tree.client['id'])
    owner.run(
        "INSERT INTO memberships (subject, role, client_id) VALUES (:s, 'client_admin', CAST(:c AS uuid))",
        s=both,
        c=tree.client['id'],
    )

    status, _, body = send('GET', '/me', both)

    assert status == 200
    assert body == {
        'subject': both,
        'platform_admin': False,
        'agencies': [{'id': tree.agency['id'], 'name': tree.agency['name'], 'account_id': tree.agency['account_id']}],
        'clients': [
            {
                'id': tree.client['id'],
                'agency_id': tree.agency['id'],
                'name': tree.client['name'],
                'account_id': tree.client['account_id'],
            }
        ],
    }


@pytest.mark.parametrize('who', ['integration', 'stranger'])
def test_me_shows_nothing_administered_to_an_integration_or_a_stranger(owner: Any, who: str) -> None:
    tree = factories.hierarchy_tree(owner)
    subject = tree.integration if who == 'integration' else factories.stranger()

    status, _, body = send('GET', '/me', subject)

    assert status == 200
    assert body == {'subject': subject, 'platform_admin': False, 'agencies': [], 'clients': []}


def test_me_says_who_is_a_platform_admin(owner: Any) -> None:
    admin = factories.platform_admin(owner)

    assert send('GET', '/me', admin)[2]['platform_admin'] is True


def test_me_needs_a_signed_in_caller() -> None:
    status, _, body = send('GET', '/me', None)

    assert status == 401 and body['error']['code'] == 'unauthorized'


def test_the_docs_page_loads_swagger_ui_from_its_own_files_only() -> None:
    status, headers, body = send('GET', '/docs', None)

    assert status == 200 and headers['content-type'].startswith('text/html')
    assert 'docs/swagger-ui-bundle.js' in body and 'docs/docs.js' in body
    policy = headers['content-security-policy']
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-eval'" not in policy and 'http' not in policy


def test_a_docs_asset_is_served_compressed_to_a_client_that_accepts_gzip() -> None:
    event = http_event('GET', '/docs/swagger-ui-bundle.js', headers={'Accept-Encoding': 'gzip'})

    result = lambda_handler(event, LambdaContext())

    headers = {k.lower(): v for k, v in result['headers'].items()}
    assert result['statusCode'] == 200 and headers['content-type'].startswith('text/javascript')
    assert headers['content-encoding'] == 'gzip' and result['isBase64Encoded']
    assert gzip.decompress(base64.b64decode(result['body'])) == (DOCS / 'swagger-ui-bundle.js').read_bytes()


@pytest.mark.parametrize('asset', ['README.md', 'index.html', '..', '%2e%2e%2ftemplate.yaml', 'nope.js'])
def test_only_the_pages_own_assets_are_served(asset: str) -> None:
    status, _, body = send('GET', f'/docs/{asset}', None)

    assert status == 404 and body['error']['code'] == 'not_found'
