"""Deployed, the console signs in through Cognito's hosted UI with the authorization code flow and PKCE. Here the
hosted UI is played by routes of the browser context (config.json names it), so the console's own code does the
whole exchange: it sends an S256 challenge and a state, accepts only its own state back, proves the code with the
verifier, signs in with the ID token, and leaves no code in the address bar."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, Site

HOSTED_UI = 'https://auth.console.test'
CLIENT_ID = 'console-client-id'


class FakeHostedUi:
    """Cognito's /oauth2/authorize and /oauth2/token, remembering what the console sent."""

    def __init__(self, site: Site, id_token: str) -> None:
        self.site = site
        self.id_token = id_token
        self.authorize: dict[str, str] = {}
        self.exchange: dict[str, str] = {}

    @property
    def redirect_uri(self) -> str:
        return f'{self.site.url}/console/'

    def config(self, route: Any) -> None:
        cognito = {
            'domain': HOSTED_UI,
            'client_id': CLIENT_ID,
            'redirect_uri': self.redirect_uri,
            'logout_uri': self.redirect_uri,
            'scope': 'openid email',
        }
        route.fulfill(json={'auth': 'cognito', 'api': '', 'cognito': cognito})

    def handle(self, route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.path == '/oauth2/authorize':
            self.authorize = {k: v[0] for k, v in parse_qs(url.query).items()}
            back = urlencode({'code': 'the-code', 'state': self.authorize['state']})
            route.fulfill(status=302, headers={'Location': f'{self.authorize["redirect_uri"]}?{back}'})
        elif url.path == '/oauth2/token':
            self.exchange = {k: v[0] for k, v in parse_qs(route.request.post_data or '').items()}
            challenge = base64.urlsafe_b64encode(hashlib.sha256(self.exchange['code_verifier'].encode()).digest())
            proven = challenge.rstrip(b'=').decode() == self.authorize.get('code_challenge')
            route.fulfill(
                status=200 if proven else 400,
                headers={'Access-Control-Allow-Origin': self.site.url},
                content_type='application/json',
                body=json.dumps({'id_token': self.id_token} if proven else {'error': 'invalid_grant'}),
            )
        else:
            route.fulfill(status=404)


def test_signing_in_through_the_hosted_ui_uses_the_code_flow_with_pkce(site: Site, browser: Any) -> None:
    hosted = FakeHostedUi(site, site.tokens['agency_admin'])
    # The local server's Content-Security-Policy allows connections to its own origin only; deployed, the console's
    # allows the user pool's domain (template.yaml), which this test's stand-in for it is not.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.route(f'{site.url}/console/config.json', hosted.config)
    context.route(f'{HOSTED_UI}/**', hosted.handle)
    page = context.new_page()
    page.goto(f'{site.url}/console/#/agencies/{site.demo["agency_id"]}')

    page.get_by_role('button', name='Sign in').click()

    agency = site.api('agency_admin', 'GET', f'/agencies/{site.demo["agency_id"]}')
    expect(page.get_by_role('heading', level=1)).to_have_text(agency['name'])
    assert hosted.authorize['response_type'] == 'code' and hosted.authorize['code_challenge_method'] == 'S256'
    assert hosted.authorize['client_id'] == CLIENT_ID and hosted.authorize['redirect_uri'] == hosted.redirect_uri
    assert len(hosted.authorize['state']) >= 16
    assert hosted.exchange['grant_type'] == 'authorization_code' and hosted.exchange['code'] == 'the-code'
    assert (hosted.exchange['client_id'], hosted.exchange['redirect_uri']) == (CLIENT_ID, hosted.redirect_uri)
    assert 'code=' not in page.url and page.url.endswith(f'#/agencies/{site.demo["agency_id"]}')

    with page.expect_request(f'{HOSTED_UI}/logout?**') as logout:
        page.get_by_role('button', name='Sign out').click()
    assert parse_qs(urlsplit(logout.value.url).query) == {'client_id': [CLIENT_ID], 'logout_uri': [hosted.redirect_uri]}
    context.close()


def test_a_code_that_comes_back_with_another_state_is_refused(site: Site, browser: Any) -> None:
    hosted = FakeHostedUi(site, site.tokens['agency_admin'])
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.route(f'{site.url}/console/config.json', hosted.config)
    context.route(f'{HOSTED_UI}/**', hosted.handle)
    page = context.new_page()

    page.goto(f'{site.url}/console/?code=stolen-code&state=not-ours')

    expect(page.get_by_role('alert')).to_contain_text('That sign-in did not start here')
    expect(page.get_by_role('button', name='Sign in')).to_be_visible()
    assert hosted.exchange == {} and 'code=' not in page.url
    context.close()
