"""The agency and client admins in the console: their numbers as the API reports them, allocating and reclaiming
(with the API's refusal in words), switching a campaign's budget mode after being shown what moves, issuing codes and
downloading them as CSV, and the redemptions with their totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from giftcard_local.tokens import issue_token
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import DESKTOP, Site, dollars


def cells(row: Any) -> Any:
    return row.locator('td')


def test_the_agency_screen_shows_the_api_numbers_and_allocates_and_reclaims(site: Site, signed_in: Any) -> None:
    page = signed_in('agency_admin')
    dashboard = site.api('agency_admin', 'GET', f'/dashboards/agencies/{site.demo["agency_id"]}')
    client = next(c for c in dashboard['clients'] if c['id'] == site.demo['client_id'])
    expect(page.get_by_role('heading', level=1)).to_have_text(dashboard['agency']['name'])
    row = page.locator('#agency tbody tr', has=page.get_by_role('link', name=client['name'], exact=True))
    expect(cells(row).first).to_have_text(dollars(client['balance']))
    chart = page.get_by_role('img', name=f'{dashboard["agency"]["name"]}: redemptions, spend and profit by month')
    expect(chart.locator('.chart-label')).to_have_text([m['month'] for m in dashboard['monthly']])

    row.get_by_role('button', name=f'Allocate to {client["name"]}').click()
    dialog = page.get_by_role('dialog')
    dialog.get_by_label('Amount (USD)').fill('100')
    dialog.get_by_role('button', name='Allocate').click()
    expect(page.get_by_role('status')).to_contain_text('Allocated $100.00')
    after_allocation = Decimal(str(client['balance'])) + 100
    expect(cells(row).first).to_have_text(dollars(after_allocation))

    row.get_by_role('button', name=f'Reclaim from {client["name"]}').click()
    dialog = page.get_by_role('dialog')
    dialog.get_by_label('Amount (USD)').fill('999999999')
    dialog.get_by_role('button', name='Reclaim').click()
    expect(dialog.get_by_role('alert')).to_contain_text('not enough credit')
    dialog.get_by_label('Amount (USD)').fill('40.50')
    dialog.get_by_role('button', name='Reclaim').click()

    expect(page.get_by_role('status')).to_contain_text('Reclaimed $40.50')
    expect(cells(row).first).to_have_text(dollars(after_allocation - Decimal('40.50')))
    assert Decimal(
        str(site.api('agency_admin', 'GET', f'/clients/{client["id"]}')['balance'])
    ) == after_allocation - Decimal('40.50')


def campaign_row(page: Any, name: str) -> Any:
    return page.locator('#client tbody tr', has=page.locator('th', has_text=name))


def test_switching_the_budget_mode_says_what_moves_and_moves_it(site: Site, signed_in: Any) -> None:
    page = signed_in('client_admin')
    dashboard = site.api('client_admin', 'GET', f'/dashboards/clients/{site.demo["client_id"]}')
    campaign = next(c for c in dashboard['campaigns'] if c['id'] == site.demo['campaign_id'])
    assert campaign['budget_mode'] == 'isolated' and campaign['balance'] > 0
    row = campaign_row(page, campaign['name'])
    expect(cells(row).nth(2)).to_have_text(dollars(campaign['balance']))
    expect(cells(row).nth(6)).to_have_text(str(campaign['estimated_redemptions_remaining']))

    row.get_by_role('button', name=f'Switch to shared: {campaign["name"]}').click()
    dialog = page.get_by_role('dialog')
    expect(dialog).to_contain_text(
        f'remaining balance of {dollars(campaign["balance"])} returns to {dashboard["client"]["name"]}'
    )
    dialog.get_by_role('button', name='Switch to shared').click()

    expect(page.get_by_role('status')).to_contain_text(f'{dollars(campaign["balance"])} returned')
    expect(cells(row).nth(1)).to_have_text('Shared with the client')
    client_balance = Decimal(str(dashboard['client']['balance'])) + Decimal(str(campaign['balance']))
    expect(page.locator('#client .stat-value').first).to_have_text(dollars(client_balance))
    switched = site.api('client_admin', 'GET', f'/campaigns/{campaign["id"]}')
    assert (switched['budget_mode'], switched['balance']) == ('shared', 0)

    row.get_by_role('button', name=f'Switch to isolated: {campaign["name"]}').click()
    page.get_by_role('dialog').get_by_role('button', name='Switch to isolated').click()
    expect(cells(row).nth(1)).to_have_text('Isolated')
    row.get_by_role('button', name=f'Allocate to {campaign["name"]}').click()
    dialog = page.get_by_role('dialog')
    dialog.get_by_label('Amount (USD)').fill(str(campaign['balance']))
    dialog.get_by_role('button', name='Allocate').click()
    expect(cells(row).nth(2)).to_have_text(dollars(campaign['balance']))


def test_pausing_and_resuming_a_campaign(site: Site, signed_in: Any) -> None:
    page = signed_in('client_admin')
    name = site.api('client_admin', 'GET', f'/campaigns/{site.demo["shared_campaign_id"]}')['name']
    row = campaign_row(page, name)

    row.get_by_role('button', name=f'Pause {name}').click()
    expect(cells(row).first).to_have_text('paused (manual)')
    assert site.api('client_admin', 'GET', f'/campaigns/{site.demo["shared_campaign_id"]}')['status'] == 'paused'
    row.get_by_role('button', name=f'Resume {name}').click()
    expect(cells(row).first).to_have_text('active')


def test_issued_codes_download_as_csv_and_redeem(site: Site, signed_in: Any) -> None:
    page = signed_in('client_admin')
    name = site.api('client_admin', 'GET', f'/campaigns/{site.demo["campaign_id"]}')['name']
    campaign_row(page, name).get_by_role('button', name=f'Issue codes for {name}').click()
    dialog = page.get_by_role('dialog')
    expect(dialog.get_by_label('Card')).to_contain_text('$25.00')
    dialog.get_by_label('How many').fill('3')
    dialog.get_by_role('button', name='Issue codes').click()

    codes_dialog = page.get_by_role('dialog', name=f'3 codes for {name}')
    expect(codes_dialog.get_by_role('list', name='Issued codes').get_by_role('listitem')).to_have_count(3)
    with page.expect_download() as download:
        codes_dialog.get_by_role('button', name='Download CSV').click()
    lines = download.value.path().read_text().splitlines()
    assert lines[0] == 'code,campaign,card' and len(lines) == 4
    codes = [line.split(',')[0] for line in lines[1:]]
    assert codes == codes_dialog.get_by_role('list', name='Issued codes').get_by_role('listitem').all_text_contents()
    codes_dialog.get_by_role('button', name='Done').click()
    expect(codes_dialog).to_be_hidden()

    redeemed = site.live.call('POST', '/redeem', json_body={'code': codes[0]})
    assert redeemed.status == 200, redeemed.text
    page.reload()
    totals = site.api('client_admin', 'GET', f'/redemptions?client_id={site.demo["client_id"]}')['totals']
    redemptions = page.locator('#redemptions')
    expect(redemptions.locator('.stat-value').first).to_have_text(str(totals['redemptions']))
    expect(redemptions.locator('.stat-value').nth(1)).to_have_text(dollars(totals['charged']))
    expect(redemptions.locator('tbody tr').first).to_contain_text(codes[0][-4:])


def test_an_agency_below_its_threshold_is_warned_of_low_credit(site: Site, browser: Any, owner: Any) -> None:
    agency = factories.agency()
    factories.fund(500_00, agency['account_id'])
    subject = factories.agency_admin(owner, agency['id'])
    threshold = site.api('platform_admin', 'GET', f'/dashboards/agencies/{agency["id"]}')['agency'][
        'low_balance_threshold'
    ]
    assert threshold > 500
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f'{site.url}/console/#token={issue_token(subject)}')

    expect(page.get_by_role('heading', level=1)).to_have_text(agency['name'])
    expect(page.locator('#agency').get_by_role('alert')).to_have_text(
        f'Low credit: the balance is below {dollars(threshold)}. Ask the platform to add credit.'
    )
    expect(page.locator('#agency')).to_contain_text('No clients yet.')
    page.close()
