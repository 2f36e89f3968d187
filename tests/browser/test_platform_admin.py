"""The platform admin in the console: the numbers the API reports, funding an agency, importing cards (with the
line-numbered refusal of a bad file), and acknowledging an alert."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from giftcards import alerts, db
from playwright.sync_api import expect

from tests.browser.conftest import Site, dollars


def listed(page: Any, section: str, has: Any) -> Any:
    """The row of a paged list that holds `has`, paging on with "Show more" until it is listed."""
    rows = page.locator(f'{section} tbody tr')
    rows.first.wait_for()
    row = rows.filter(has=has)
    while not row.count():
        shown = rows.count()
        page.locator(section).get_by_role('button', name='Show more').click()
        expect(rows).not_to_have_count(shown)
    return row


def agency_row(page: Any, name: str) -> Any:
    return listed(page, '#agencies', page.get_by_role('link', name=name, exact=True))


def stat(page: Any, label: str) -> Any:
    return page.locator('.stat', has=page.locator('.stat-label', has_text=label)).locator('.stat-value')


def test_the_overview_shows_the_credit_and_inventory_the_api_reports(site: Site, signed_in: Any) -> None:
    page = signed_in('platform_admin')
    expect(page.get_by_role('heading', level=1)).to_have_text('Platform overview')
    expect(stat(page, 'Credit issued')).not_to_have_text('')

    dashboard = site.api('platform_admin', 'GET', '/dashboards/admin')
    expect(stat(page, 'Credit issued')).to_have_text(dollars(dashboard['platform']['credit_issued']))
    expect(stat(page, 'Spent')).to_have_text(dollars(dashboard['platform']['credit_spent']))
    expect(stat(page, 'Outstanding')).to_have_text(dollars(dashboard['platform']['credit_outstanding']))
    expect(stat(page, 'Profit this month')).to_have_text(dollars(dashboard['profit']['month_to_date']['profit']))
    [line] = [i for i in dashboard['inventory'] if i['brand'] == demo_brand(site) and i['denomination'] == 25]
    row = page.locator('#inventory tbody tr', has_text=demo_brand(site)).filter(has_text='$25.00')
    expect(row.locator('td').nth(2)).to_have_text(str(line['csv']['available']))
    expect(row.locator('.health')).to_have_class(f'health health-{line["health"]}')


def test_funding_an_agency_moves_the_credit_and_shows_its_new_balance(site: Site, signed_in: Any) -> None:
    page = signed_in('platform_admin')
    agency = site.api('platform_admin', 'GET', f'/agencies/{site.demo["agency_id"]}')
    row = agency_row(page, agency['name'])
    expect(row.locator('td').first).to_have_text(dollars(agency['balance']))

    row.get_by_role('button', name=f'Fund {agency["name"]}').click()
    dialog = page.get_by_role('dialog', name=f'Fund {agency["name"]}')
    dialog.get_by_label('Amount (USD)').fill('12.345')
    dialog.get_by_role('button', name='Fund').click()
    expect(dialog.get_by_role('alert')).to_contain_text('at most 2 decimals')
    dialog.get_by_label('Amount (USD)').fill('1,234.56')
    dialog.get_by_label('Notes (optional)').fill('funded from the console')
    dialog.get_by_role('button', name='Fund').click()

    expect(dialog).to_be_hidden()
    after = Decimal(str(agency['balance'])) + Decimal('1234.56')
    expect(page.get_by_role('status')).to_contain_text('Allocated $1,234.56: Platform now has')
    expect(agency_row(page, agency['name']).locator('td').first).to_have_text(dollars(after))
    assert Decimal(str(site.api('platform_admin', 'GET', f'/agencies/{agency["id"]}')['balance'])) == after
    issued = site.api('platform_admin', 'GET', '/dashboards/admin')['platform']['credit_issued']
    expect(stat(page, 'Credit issued')).to_have_text(dollars(issued))
    [entry] = site.api('platform_admin', 'GET', f'/accounts/{agency["account_id"]}/transactions?limit=1')['items']
    assert (entry['amount'], entry['notes']) == (1234.56, 'funded from the console')


def test_a_card_import_with_a_bad_line_names_the_line_and_imports_nothing(site: Site, signed_in: Any) -> None:
    page = signed_in('platform_admin')
    pool_id = site.demo['pool_id']
    before = site.api('platform_admin', 'GET', f'/pools/{pool_id}')['available']
    page.get_by_role('link', name='Pools').click()
    import_button = page.get_by_role('button', name=f'Import cards into {demo_brand(site)} $25.00')
    listed(page, '#pools', import_button)

    import_button.click()
    dialog = page.get_by_role('dialog')
    good = [f'CONSOLE-{uuid.uuid4().hex[:12].upper()},{uuid.uuid4().int % 10**16:016d}' for _ in range(2)]
    bad_file = '\n'.join(['card_code,card_number', good[0], 'CONSOLE-WITHOUT-A-NUMBER', good[1]]) + '\n'
    dialog.get_by_label('CSV file').set_input_files(files(bad_file))
    dialog.get_by_role('button', name='Import').click()

    expect(dialog.get_by_role('alert')).to_contain_text('Line 3')
    assert site.api('platform_admin', 'GET', f'/pools/{pool_id}')['available'] == before

    dialog.get_by_label('CSV file').set_input_files(files('\n'.join(['card_code,card_number', *good]) + '\n'))
    dialog.get_by_role('button', name='Import').click()
    expect(page.get_by_role('status')).to_contain_text('Imported 2 cards')
    assert site.api('platform_admin', 'GET', f'/pools/{pool_id}')['available'] == before + 2
    expect(listed(page, '#pools', import_button).locator('td').nth(1)).to_have_text(str(before + 2))


def test_acknowledging_an_alert_marks_it_acknowledged(site: Site, signed_in: Any) -> None:
    message = f'Console check {uuid.uuid4().hex[:8]}'
    raised = db.in_transaction(
        lambda uow: alerts.raise_alert(uow, 'console_check', 'warning', 'agency', site.demo['agency_id'], message)
    )
    page = signed_in('platform_admin')
    page.get_by_role('link', name='Alerts').click()
    item = page.locator('li.alert', has_text=message)
    expect(item).to_contain_text('Open')

    item.get_by_role('button', name=f'Acknowledge: {message}').click()

    expect(page.get_by_role('status')).to_contain_text(f'Alert acknowledged: {message}')
    expect(page.locator('li.alert', has_text=message)).to_contain_text('Acknowledged by')
    shown = [
        a for a in site.api('platform_admin', 'GET', '/alerts?status=open&limit=500')['items'] if a['id'] == raised.id
    ]
    assert shown[0]['status'] == 'acknowledged'


def demo_brand(site: Site) -> str:
    [brand] = [
        b for b in site.api('platform_admin', 'GET', '/brands?limit=500')['items'] if b['id'] == site.demo['brand_id']
    ]
    return str(brand['name'])


def files(text: str) -> dict[str, Any]:
    return {'name': 'cards.csv', 'mimeType': 'text/csv', 'buffer': text.encode()}
