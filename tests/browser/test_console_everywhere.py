"""What holds on every screen: the ledger paginated newest first, a 401 asking to sign in again, each role seeing what
the API gives it and no more, empty and error states, keyboard use, phone width (with a screenshot of every screen
at both widths), and the API's /docs page."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from giftcard_local.tokens import issue_token
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import DESKTOP, PHONE, Site, dollars


def test_an_accounts_ledger_pages_newest_first_with_counter_accounts_and_balances(site: Site, signed_in: Any) -> None:
    agency = site.api('agency_admin', 'GET', f'/agencies/{site.demo["agency_id"]}')
    client = site.api('agency_admin', 'GET', f'/clients/{site.demo["client_id"]}')
    for i in range(26):  # more than a page of 25
        site.api(
            'agency_admin',
            'POST',
            '/allocate-credit',
            {
                'fromAccountId': agency['account_id'],
                'toAccountId': client['account_id'],
                'amount': 1,
                'notes': f'page {i}',
            },
        )
    first = site.api('agency_admin', 'GET', f'/accounts/{client["account_id"]}/transactions?limit=25')
    second = site.api(
        'agency_admin', 'GET', f'/accounts/{client["account_id"]}/transactions?limit=25&cursor={first["next_cursor"]}'
    )
    page = signed_in('agency_admin')

    page.locator('#agency tbody tr', has=page.get_by_role('link', name=client['name'], exact=True)).get_by_role(
        'link', name=f'Ledger of {client["name"]}'
    ).click()

    expect(page.get_by_role('heading', level=1)).to_have_text(f'Ledger: {client["name"]}')
    rows = page.locator('#entries tbody tr')
    expect(rows).to_have_count(25)
    expect(rows.locator('td:nth-child(5)')).to_have_text([dollars(e['balance_after']) for e in first['items']])
    expect(rows.first.locator('td').nth(2)).to_have_text(agency['name'])  # the counter-account, by name
    page.get_by_role('button', name='Older').click()
    expect(rows.first.locator('td').nth(4)).to_have_text(second['items'][0]['notes'] or '')
    expect(rows.locator('td:nth-child(5)')).to_have_text([dollars(e['balance_after']) for e in second['items']])
    page.get_by_role('button', name='Newer').click()
    expect(rows.first.locator('td').nth(4)).to_have_text('page 25')


def test_a_401_asks_to_sign_in_again_and_returns_where_the_person_was(site: Site, browser: Any) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    forged = forge(site.tokens['agency_admin'])
    page.goto(f'{site.url}/console/#token={forged}')

    expect(page.get_by_role('alert')).to_contain_text('Your session has ended. Sign in again')
    expect(page.get_by_role('heading', level=1)).to_have_text('Sign in (local)')
    page.get_by_label('Bearer token').fill(site.tokens['agency_admin'])
    page.get_by_role('button', name='Sign in').click()

    agency = site.api('agency_admin', 'GET', f'/agencies/{site.demo["agency_id"]}')
    expect(page.get_by_role('heading', level=1)).to_have_text(agency['name'])
    context.close()


def test_each_role_sees_only_what_its_memberships_allow(site: Site, signed_in: Any, owner: Any) -> None:
    page = signed_in('client_admin')
    client = site.api('client_admin', 'GET', f'/clients/{site.demo["client_id"]}')
    expect(page.locator('#nav a')).to_have_text([client['name']])

    page.goto(f'{site.url}/console/#/admin')
    expect(page.locator('#credit').get_by_role('alert')).to_contain_text('Only a platform admin may do this.')
    other = factories.client(factories.agency()['id'])
    page.goto(f'{site.url}/console/#/clients/{other["id"]}')
    expect(page.locator('#client').get_by_role('alert')).to_contain_text('No such client.')
    expect(page.locator('body')).not_to_contain_text(other['name'])
    page.goto(f'{site.url}/console/#/agencies/{site.demo["agency_id"]}')
    expect(page.locator('#agency').get_by_role('alert')).to_contain_text('No such agency.')


def test_empty_and_error_states_and_a_retry(site: Site, browser: Any, owner: Any) -> None:
    client = factories.client(factories.agency()['id'])
    subject = factories.client_admin(owner, client['id'])
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f'{site.url}/console/#token={issue_token(subject)}')

    expect(page.get_by_role('heading', level=1)).to_have_text(client['name'])
    expect(page.locator('#client')).to_contain_text('No campaigns yet.')
    expect(page.locator('#redemptions')).to_contain_text('No redemptions yet.')
    page.goto(f'{site.url}/console/#/accounts/{uuid.uuid4()}')
    error = page.locator('#account').get_by_role('alert')
    expect(error).to_contain_text('No such account')
    error.get_by_role('button', name='Try again').click()
    expect(error).to_contain_text('No such account')

    stranger = factories.stranger()
    page.goto(f'{site.url}/console/#token={issue_token(stranger)}')
    page.reload()
    expect(page.get_by_role('heading', level=1)).to_have_text('No access yet')
    context.close()


def test_allocating_works_from_the_keyboard_alone(site: Site, signed_in: Any) -> None:
    page = signed_in('agency_admin')
    client = site.api('agency_admin', 'GET', f'/clients/{site.demo["client_id"]}')
    allocate = page.get_by_role('button', name=f'Allocate to {client["name"]}')
    allocate.wait_for()
    for _ in range(40):
        if allocate.evaluate('node => node === document.activeElement'):
            break
        page.keyboard.press('Tab')
    else:
        pytest.fail('Tab never reached the Allocate button')

    page.keyboard.press('Enter')
    amount = page.get_by_role('dialog').get_by_label('Amount (USD)')
    expect(amount).to_be_focused()
    page.keyboard.type('2.25')
    page.keyboard.press('Enter')

    expect(page.get_by_role('status')).to_contain_text('Allocated $2.25')
    page.keyboard.press('Tab')  # focus is back in the page, not lost with the dialog
    expect(page.locator(':focus')).to_have_count(1)


SCREENS = {
    'platform_admin': ['#/admin', '#/admin/alerts', '#/admin/pools', '#/admin/brands'],
    'agency_admin': ['#/agencies/{agency_id}'],
    'client_admin': ['#/clients/{client_id}', '#/accounts/{client_account}'],
}


@pytest.mark.parametrize('viewport', [DESKTOP, PHONE], ids=['desktop', 'phone'])
def test_every_screen_fits_its_width_and_is_photographed(site: Site, signed_in: Any, viewport: dict[str, int]) -> None:
    width = 'desktop' if viewport is DESKTOP else 'phone'
    ids = {
        **site.demo,
        'client_account': site.api('client_admin', 'GET', f'/clients/{site.demo["client_id"]}')['account_id'],
    }
    for role, screens in SCREENS.items():
        page = signed_in(role, viewport)
        for screen in screens:
            page.goto(f'{site.url}/console/{screen.format(**ids)}')
            expect(page.locator('[aria-busy="true"]')).to_have_count(0)
            expect(page.locator('.state.error')).to_have_count(0)
            name = (
                screen.strip('#/').split('/')[0] if role != 'platform_admin' else screen.strip('#/').replace('/', '-')
            )
            page.screenshot(path=site.screenshots / f'{role}-{name}-{width}.png', full_page=True)
            overflow = page.evaluate('document.documentElement.scrollWidth - window.innerWidth')
            assert overflow <= 0, f'{role} {screen} is {overflow}px wider than the {width} window'
            labelless = page.evaluate(
                "[...document.querySelectorAll('input, select, textarea')].filter(e => !e.labels.length).length"
            )
            assert labelless == 0


def test_the_docs_page_shows_the_apis_description(site: Site, browser: Any) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f'{site.url}/docs')

    expect(page.get_by_role('heading', level=1)).to_contain_text('Gift card credit system')
    expect(page.locator('.opblock-summary-path', has_text='/allocate-credit').first).to_be_visible()
    page.screenshot(path=site.screenshots / 'docs-desktop.png')
    page.close()


def forge(token: str) -> str:
    """The token with its signature replaced: well formed, unexpired, and refused by the API."""
    header, payload, _ = token.split('.')
    claims = json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
    assert claims['exp'] > 0
    return f'{header}.{payload}.{base64.urlsafe_b64encode(b"forged" * 40).rstrip(b"=").decode()}'
