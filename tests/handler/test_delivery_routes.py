"""Deliveries through the Lambda handlers: the provision route refuses a bad recipient before charging, the
redemption routes show and resend deliveries, the settings and opt-in routes, the redeem page's link, and the deliver
function's SQS and SNS events."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from admin_app import lambda_handler as admin_handler
from dashboards_app import lambda_handler as dashboards_handler
from deliver_app import lambda_handler as deliver_handler
from giftcards import delivering
from provision_app import lambda_handler as provision_handler
from redeem_app import lambda_handler as redeem_handler

from tests import delivery_support as ds
from tests import factories
from tests import provisioning_support as ps
from tests import redeem_support as rs
from tests.delivery_support import sns_event, sqs_event
from tests.events import LambdaContext, call, http_event

FORM = 'application/x-www-form-urlencoded'


def provision(s: ps.Setup, **fields: Any) -> tuple[int, dict[str, str], Any]:
    body = {'campaignId': s.campaign_id, 'brandId': s.brand['id'], 'denomination': 25, 'redemptionCode': ps.new_code()}
    return call(
        provision_handler,
        http_event('POST', '/provision-gift-card', subject=s.tree.integration, body={**body, **fields}),
    )


def admin(method: str, path: str, subject: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(admin_handler, http_event(method, path, subject=subject, **kwargs))


def dashboard(path: str, subject: str) -> tuple[int, dict[str, str], Any]:
    return call(dashboards_handler, http_event('GET', path, subject=subject))


@pytest.fixture
def stocked(owner: Any) -> ps.Setup:
    return ds.stocked(owner)


# --- the provision route: the recipient is checked before anything is charged ------------------------------


@pytest.mark.parametrize(
    ('fields', 'field'),
    [
        ({'deliveryMethod': 'fax', 'deliveryAddress': 'a@example.com'}, 'deliveryMethod'),
        ({'deliveryMethod': 'EMAIL', 'deliveryAddress': 'a@example.com'}, 'deliveryMethod'),
        ({'deliveryMethod': 'email', 'deliveryAddress': 'not-an-address'}, 'deliveryAddress'),
        ({'deliveryMethod': 'email', 'deliveryAddress': 'a@localhost'}, 'deliveryAddress'),
        ({'deliveryMethod': 'email'}, 'deliveryAddress'),
        ({'deliveryMethod': 'sms', 'deliveryAddress': '415 555 0123'}, 'deliveryAddress'),
        ({'deliveryMethod': 'sms', 'deliveryAddress': '+0415550123'}, 'deliveryAddress'),
        ({'deliveryAddress': 'a@example.com'}, 'deliveryAddress'),
        ({'deliveryMethod': 'none', 'deliveryAddress': 'a@example.com'}, 'deliveryAddress'),
    ],
)
def test_a_bad_recipient_is_422_naming_its_field_and_nothing_is_charged_or_claimed(
    stocked: ps.Setup, fields: dict[str, str], field: str
) -> None:
    s = stocked
    balance = factories.balance_cents(s.paying_account)

    status, _, body = provision(s, **fields)

    assert status == 422, body
    assert body['error']['details'][0]['field'] == field
    assert factories.balance_cents(s.paying_account) == balance
    assert ps.redemptions_of(s.campaign_id) == []
    assert ps.query(
        'SELECT count(*) AS n FROM available_cards a JOIN card_pools p ON p.id = a.pool_id'
        ' WHERE p.brand_id = CAST(:b AS uuid)',
        b=s.brand['id'],
    ) == [{'n': 10}]


def test_the_recipient_is_stored_normalised(stocked: ps.Setup) -> None:
    s = stocked
    status, _, body = provision(s, deliveryMethod='email', deliveryAddress='  Ann.Lee+gift@Example.COM ')

    assert status == 200, body
    assert body['redemption']['deliveryMethod'] == 'email'
    assert ds.delivery(body['redemption']['id'])['address'] == 'Ann.Lee+gift@example.com'


def test_an_sms_without_opt_in_is_409_and_nothing_is_charged(stocked: ps.Setup) -> None:
    s = stocked
    balance = factories.balance_cents(s.paying_account)

    status, _, body = provision(s, deliveryMethod='sms', deliveryAddress=ds.new_phone())

    assert (status, body['error']['code']) == (409, 'recipient_not_consenting')
    assert factories.balance_cents(s.paying_account) == balance and ps.redemptions_of(s.campaign_id) == []


# --- the redemption routes -----------------------------------------------------------------------------------


def test_a_redemption_shows_its_delivery_to_its_clients_admins_only(stocked: ps.Setup, owner: Any) -> None:
    s = stocked
    address = ds.new_email()
    _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=address)
    redemption_id = provisioned['redemption']['id']
    path = f'/redemptions/{redemption_id}'

    status, _, body = admin('GET', path, s.tree.client_admin)
    listed = admin(
        'GET', '/redemptions', s.tree.client_admin, query={'client_id': s.tree.client['id'], 'delivery_status': 'sent'}
    )[2]

    assert status == 200, body
    delivery = body['delivery']
    assert (delivery['status'], delivery['channel'], delivery['send_number'], delivery['resends_left']) == (
        'sent',
        'email',
        1,
        3,
    )
    assert delivery['address'] == f'{address[0]}***@example.com' and address not in json.dumps(body)
    assert body['cost_basis'] is None  # a client admin sees no costs
    assert [item['delivery']['status'] for item in listed['items']] == ['sent']
    assert admin('GET', path, s.tree.agency_admin)[2]['cost_basis'] == 23.5
    assert admin('GET', path, factories.hierarchy_tree(owner).client_admin)[0] == 404
    assert admin('GET', path, s.tree.integration)[0] == 404
    assert admin('GET', f'/redemptions/{uuid.uuid4()}', s.admin)[0] == 404
    assert admin('GET', '/redemptions/not-an-id', s.admin)[0] == 404


def test_resend_answers_202_with_the_delivery_queued_again_then_429(stocked: ps.Setup, owner: Any) -> None:
    s = stocked
    _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=ds.new_email())
    path = f'/redemptions/{provisioned["redemption"]["id"]}/resend'
    ds.age_last_send(provisioned['redemption']['id'], owner)

    status, _, body = admin('POST', path, s.tree.client_admin)
    again = admin('POST', path, s.tree.client_admin)

    assert status == 202, body
    assert (body['delivery']['send_number'], body['delivery']['resends_left']) == (2, 2)
    assert body['delivery']['status'] in ('queued', 'sent')
    assert again[0] == 429 and int(again[1]['retry-after']) >= 1


# --- settings and opt-ins ------------------------------------------------------------------------------------


def test_campaign_content_and_brand_instructions_are_set_by_their_admins(stocked: ps.Setup) -> None:
    s = stocked
    content = admin('PUT', f'/campaigns/{s.campaign_id}/delivery', s.tree.client_admin, body={'content': 'card'})
    refused = admin('PUT', f'/campaigns/{s.campaign_id}/delivery', s.tree.client_admin, body={'content': 'fax'})
    brand = admin('PUT', f'/brands/{s.brand["id"]}/message', s.admin, body={'instructions': ' Use it online. '})
    not_theirs = admin('PUT', f'/brands/{s.brand["id"]}/message', s.tree.client_admin, body={'instructions': 'x'})

    assert (content[0], content[2]['content']) == (200, 'card')
    assert refused[0] == 422
    assert (brand[0], brand[2]['instructions']) == (200, 'Use it online.')
    assert not_theirs[0] == 403


def test_sms_opt_ins_are_recorded_listed_and_refused_after_stop(stocked: ps.Setup) -> None:
    s = stocked
    path = f'/clients/{s.tree.client["id"]}/sms-consents'
    phone = ds.new_phone()
    spaced = f'{phone[:2]} {phone[2:5]} {phone[5:]}'

    created = admin('POST', path, s.tree.client_admin, body={'phone': spaced, 'source': 'signup form'})
    bad = admin('POST', path, s.tree.client_admin, body={'phone': '555-0123', 'source': 'signup form'})
    future = admin(
        'POST', path, s.tree.client_admin, body={'phone': phone, 'source': 'x', 'opted_in_at': '2999-01-01T00:00:00Z'}
    )
    deliver_handler(sns_event({'originationNumber': phone, 'messageBody': 'STOP'}), LambdaContext())
    listed = admin('GET', path, s.tree.client_admin, query={'phone': phone})
    again = admin('POST', path, s.tree.client_admin, body={'phone': phone, 'source': 'signup form'})

    assert created[0] == 201 and created[2]['phone'] == phone and created[2]['opted_out_at'] is None
    assert (bad[0], bad[2]['error']['details'][0]['field']) == (422, 'phone')
    assert future[0] == 422
    ancient = admin(
        'POST',
        path,
        s.tree.client_admin,
        body={'phone': phone, 'source': 'x', 'opted_in_at': '0001-01-01T00:00:00+14:00'},
    )
    assert ancient[0] == 422
    (item,) = listed[2]['items']
    assert item['opted_out_at'] is not None and item['opt_out_source'] == 'STOP reply'
    assert (again[0], again[2]['error']['code']) == (409, 'recipient_opted_out')


# --- the redeem page's link ----------------------------------------------------------------------------------


def test_the_link_page_names_the_card_and_its_button_shows_it_once(stocked: ps.Setup) -> None:
    s = stocked
    address = ds.new_email()
    _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=address)
    token = ds.link_token(ds.messages_to(address)[0])
    ip = rs.unique_ip()

    pages = [
        call(redeem_handler, http_event('GET', '/redeem', query={'token': token}, content_type=None, source_ip=ip))
        for _ in range(2)
    ]
    shown = call(
        redeem_handler,
        http_event('POST', '/redeem', raw_body=urlencode({'token': token}), content_type=FORM, source_ip=ip),
    )
    used = call(
        redeem_handler,
        http_event('POST', '/redeem', raw_body=urlencode({'token': token}), content_type=FORM, source_ip=ip),
    )
    as_json = call(redeem_handler, http_event('POST', '/redeem', body={'token': token}, source_ip=ip))

    assert [p[0] for p in pages] == [200, 200]  # following the link uses nothing
    assert '$25.00' in pages[0][2] and provisioned['card']['cardCode'] not in pages[0][2]
    assert shown[0] == 200 and provisioned['card']['cardCode'] in shown[2] and 'works only once' in shown[2]
    assert used[0] == 404 and 'expired or was already used' in used[2] and token not in used[2]
    assert (as_json[0], as_json[2]['error']['code']) == (404, 'invalid_link')
    assert call(redeem_handler, http_event('GET', '/redeem', query={'token': token}, content_type=None))[0] == 404


def test_a_link_opened_as_json_answers_the_card(stocked: ps.Setup) -> None:
    s = stocked
    address = ds.new_email()
    _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=address)
    token = ds.link_token(ds.messages_to(address)[0])

    status, _, body = call(
        redeem_handler, http_event('POST', '/redeem', body={'token': token}, source_ip=rs.unique_ip())
    )

    assert status == 200, body
    assert body['card']['card_code'] == provisioned['card']['cardCode']
    assert body['redemption']['id'] == provisioned['redemption']['id']


# --- the deliver function ------------------------------------------------------------------------------------


def test_the_deliver_function_sends_what_the_queue_names_and_drops_what_names_nothing(
    stocked: ps.Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = stocked
    with ds.undispatched(monkeypatch):
        _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=ds.new_email())
    redemption_id = provisioned['redemption']['id']

    answer = deliver_handler(
        sqs_event(json.dumps({'delivery_id': redemption_id}), 'garbage', '{"delivery_id": 7}'), LambdaContext()
    )

    assert answer == {'batchItemFailures': []}
    assert ds.delivery(redemption_id)['status'] == 'sent'


def test_a_message_whose_handling_broke_is_reported_alone_for_the_queue_to_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(body: str) -> None:
        if 'second' in body:
            raise RuntimeError('the database is unreachable')

    monkeypatch.setattr(delivering, 'handle_queue_message', broken)

    answer = deliver_handler(sqs_event('first', 'second'), LambdaContext())

    assert answer == {'batchItemFailures': [{'itemIdentifier': 'm-1'}]}


def test_the_deliver_function_records_ses_bounces(stocked: ps.Setup) -> None:
    s = stocked
    _, _, provisioned = provision(s, deliveryMethod='email', deliveryAddress=ds.new_email())
    redemption_id = provisioned['redemption']['id']
    message_id = ds.delivery(redemption_id)['provider_message_id']
    bounce = {
        'eventType': 'Bounce',
        'mail': {'messageId': message_id, 'tags': {'delivery_id': [redemption_id]}},
        'bounce': {'bounceType': 'Permanent', 'bounceSubType': 'NoEmail'},
    }

    deliver_handler(sns_event(bounce), LambdaContext())

    assert (ds.delivery(redemption_id)['status'], ds.delivery(redemption_id)['last_error']) == (
        'bounced',
        'bounce: Permanent/NoEmail',
    )
    status, _, body = dashboard(f'/dashboards/clients/{s.tree.client["id"]}', s.tree.client_admin)
    assert status == 200 and body['deliveries'] == {'queued': 0, 'sent': 0, 'delivered': 0, 'bounced': 1, 'failed': 0}
