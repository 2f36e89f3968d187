"""No address, link token or card in the logs: everything a delivery goes through (provisioning with e-mail and SMS,
a message holding the card, sending, a failed attempt, opening the link, a resend, a bounce, a STOP reply), with every
log record captured whole (its message and every field) and whatever reached the file descriptors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from giftcards import deliveries, delivery_links, delivery_settings
from giftcards.senders import SendFailed

from tests import delivery_support as ds


def test_no_address_token_or_card_is_logged(
    owner: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level('DEBUG')
    s = ds.stocked(owner)
    email, card_email, phone = ds.new_email(), ds.new_email(), ds.new_phone()
    delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], phone, 'signup form')

    linked = s.provision(delivery_method='email', delivery_address=email)
    texted = s.provision(delivery_method='sms', delivery_address=phone)
    with ds.fake_sender(monkeypatch, SendFailed('Throttling', permanent=False)):
        retried = s.provision(delivery_method='email', delivery_address=ds.new_email())
    delivery_settings.set_campaign_content(s.tree.client_admin, s.campaign_id, 'card')
    carded = s.provision(delivery_method='email', delivery_address=card_email)
    tokens = [ds.link_token(ds.messages_to(address)[0]) for address in (email, phone)]
    delivery_links.open_link(tokens[0], source_ip='198.51.100.7', user_agent='mail')
    ds.age_last_send(texted.redemption.id, owner)
    deliveries.resend(s.tree.client_admin, texted.redemption.id)
    tokens.append(ds.link_token(ds.messages_to(phone)[-1]))
    message_id = ds.delivery(linked.redemption.id)['provider_message_id']
    deliveries.handle_notification({'eventType': 'Bounce', 'mail': {'messageId': message_id}, 'bounce': {}})
    deliveries.handle_inbound_sms({'originationNumber': phone, 'messageBody': 'STOP'})

    out, err = capfd.readouterr()
    # Every record whole: its message and every attribute, the `extra` fields Powertools writes as JSON among them.
    records = '\n'.join(json.dumps(vars(record), default=str) for record in caplog.records)
    logged = out + err + records
    secrets = {'an address': [email, card_email, phone, phone[2:]], 'a token': tokens}
    for result in (linked, texted, retried, carded):
        secrets.setdefault('a card', []).extend(
            value for value in (result.card.card_code, result.card.card_number, result.card.pin) if value
        )
    assert 'delivery sent' in logged and 'delivery attempt failed; retrying' in logged  # the capture works
    assert {kind: [v for v in values if v in logged] for kind, values in secrets.items()} == {
        'an address': [],
        'a token': [],
        'a card': [],
    }
