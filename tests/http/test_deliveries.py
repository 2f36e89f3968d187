"""Deliveries through a real `giftcard serve`: a provision with an e-mail address lands in the local outbox as the
recipient would see it, its link opens the card once on the redeem page, the client's admin sees and resends the
delivery, and nothing the server printed names the recipient, the link or the card."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from giftcard_local import app_clients
from giftcard_local.tokens import issue_token

from tests import delivery_support as ds
from tests import provisioning_support as ps
from tests.http_support import Live

FORM = {'Content-Type': 'application/x-www-form-urlencoded'}


def test_an_emailed_link_shows_the_card_once_and_nothing_secret_is_logged(live: Live, owner: Any) -> None:
    s = ds.stocked(owner)
    app_clients.add(s.tree.integration)  # the integration's own app client
    address = ds.new_email()
    provisioned = live.call(
        'POST',
        '/provision-gift-card',
        token=issue_token(s.tree.integration, client=True),
        json_body={
            'campaignId': s.campaign_id,
            'brandId': s.brand['id'],
            'denomination': 25,
            'redemptionCode': ps.new_code(),
            'deliveryMethod': 'email',
            'deliveryAddress': address,
        },
    )
    assert provisioned.status == 200, provisioned.text
    card = provisioned.json()['card']
    (message,) = ds.messages_to(address)
    token = ds.link_token(message)
    link = next(word for word in message['text'].split() if 'token=' in word)
    target = urlsplit(link)

    page = live.call('GET', f'{target.path}?{target.query}')
    shown = live.call('POST', '/redeem', body=urlencode({'token': token}).encode(), headers=FORM)
    again = live.call('POST', '/redeem', body=urlencode({'token': token}).encode(), headers=FORM)
    admin = issue_token(s.tree.client_admin)
    redemption = live.call('GET', f'/redemptions/{provisioned.json()["redemption"]["id"]}', token=admin)

    assert page.status == 200 and card['cardCode'] not in page.text
    assert shown.status == 200 and card['cardCode'] in shown.text
    assert again.status == 404 and card['cardCode'] not in again.text
    assert redemption.status == 200 and redemption.json()['delivery']['status'] == 'delivered'
    logged = ''.join(live.printed) + live.log.read_text()
    assert 'delivery sent' in logged and 'POST /redeem 404' in logged  # what the server logged is here
    assert [secret for secret in (address, token, card['cardCode'], card['cardNumber']) if secret in logged] == []
