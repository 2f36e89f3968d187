"""GET /docs: an interactive page for `GET /openapi.json` (Swagger UI, vendored under web/docs, which the layer
reaches through its `docs_page` link as it reaches migrations/), and GET /docs/{asset}: the page's own files.

Only the files named in ASSETS are served, so no path a caller sends reaches the file system. Nothing on the page
comes from elsewhere (its Content-Security-Policy says so), and it is public, like the description it shows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from giftcards import errors

router = Router()

PAGE_DIR = Path(__file__).resolve().parent.parent / 'docs_page'
PAGE = 'index.html'
ASSETS = {
    'docs.js': 'text/javascript; charset=utf-8',
    'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
    'swagger-ui.css': 'text/css; charset=utf-8',
    'swagger-ui.LICENSE': 'text/plain; charset=utf-8',
    'swagger-ui.NOTICE': 'text/plain; charset=utf-8',
    'swagger-ui-bundle.js.LICENSE.txt': 'text/plain; charset=utf-8',
}
# Swagger UI sets style attributes, so inline styles are allowed; scripts only from this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
}


@cache
def _file(name: str) -> str:
    return (PAGE_DIR / name).read_text(encoding='utf-8')


@router.get('/docs', include_in_schema=False)
def get_docs() -> Response[str]:
    return Response(
        status_code=200,
        content_type='text/html; charset=utf-8',
        body=_file(PAGE),
        headers={**HEADERS, 'Cache-Control': 'no-cache'},
    )


@router.get('/docs/<asset>', include_in_schema=False, compress=True)
def get_docs_asset(asset: str) -> Response[str]:
    content_type = ASSETS.get(asset)
    if content_type is None:
        raise errors.NotFound('No such file of the docs page.')
    return Response(
        status_code=200,
        content_type=content_type,
        body=_file(asset),
        headers={**HEADERS, 'Cache-Control': 'public, max-age=3600'},
    )
