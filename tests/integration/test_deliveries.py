"""Delivering cards to recipients through the outbox: the delivery row commits with the fulfilment or not at all, is
sent once after commit (or by the sweep, if the process died), retried with backoff, refused without consent, and
leaves no address, token or card in the logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from giftcards import db, deliveries, delivering, delivery_links, delivery_settings, errors, monitor, recipients
from giftcards.senders import SendFailed

from tests import delivery_support as ds
from tests import factories
from tests import provisioning_support as ps
from tests.http_support import together


def provision_to(s: ps.Setup, channel: str, address: str, **changes: Any) -> str:
    result = s.provision(delivery_method=channel, delivery_address=address, **changes)
    return result.redemption.id


# --- the outbox ------------------------------------------------------------------------------------------


def test_a_fulfilled_provision_writes_its_delivery_and_sends_it_after_commit(owner: Any) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()

    result = s.provision(delivery_method='email', delivery_address=address)

    row = ds.delivery(result.redemption.id)
    assert (row['channel'], row['address'], row['content'], row['status'], row['attempts']) == (
        'email',
        address,
        'link',
        'sent',
        1,
    )
    (message,) = ds.messages_to(address)
    assert message['subject'] == f'Your {s.brand["name"]} gift card ($25.00)'
    assert result.card.card_code not in json.dumps(message)  # a link, not the card
    assert delivery_links.token_hash(ds.link_token(message)) == bytes(row['link_token_hash'])


def test_a_provision_without_a_delivery_method_has_no_delivery(owner: Any) -> None:
    s = ds.stocked(owner)

    result = s.provision()

    assert ps.query('SELECT 1 FROM deliveries WHERE id = CAST(:id AS uuid)', id=result.redemption.id) == []


def test_a_rolled_back_provision_sends_nothing(owner: Any) -> None:
    """The charge is the last thing provision_card does: refused, it rolls back the redemption and its delivery."""
    s = ps.setup(owner, funds_cents=1_000)  # $10 for a $25 card
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    address = ds.new_email()

    with pytest.raises(errors.InsufficientCredit):
        s.provision(delivery_method='email', delivery_address=address)

    assert ds.deliveries_of(s.campaign_id) == []
    assert ds.messages_to(address) == []


def test_a_delivery_left_behind_by_a_process_that_died_after_commit_is_swept_and_sent_once(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()
    with ds.undispatched(monkeypatch):
        redemption_id = provision_to(s, 'email', address)
    deliveries.sweep()
    assert ds.delivery(redemption_id)['status'] == 'queued'  # within the sweep's grace: its dispatch may be under way

    ds.make_due(redemption_id, owner)
    result = monitor.run_monitor('cli')

    assert result.deliveries_swept >= 1
    assert ds.delivery(redemption_id)['status'] == 'sent'
    deliveries.sweep()  # again: nothing more for it
    assert delivering.handle_queue_message(json.dumps({'delivery_id': redemption_id})) == 'not_due'  # a late message
    assert len(ds.messages_to(address)) == 1


def test_duplicate_messages_for_one_delivery_send_it_once(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    with ds.undispatched(monkeypatch):
        redemption_id = provision_to(s, 'email', ds.new_email())

    with ds.fake_sender(monkeypatch) as sender:
        outcomes = together([lambda: delivering.deliver(redemption_id)] * 4)

    assert sorted(str(o) for o in outcomes) == ['not_due', 'not_due', 'not_due', 'sent']
    assert [o.delivery_id for o in sender.sent] == [redemption_id]


def test_the_vendor_path_writes_the_delivery_when_the_redemption_is_fulfilled(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner, funds_cents=10_000)  # no pool: the vendor sells the card
    address = ds.new_email()
    with ps.fake_vendors(monkeypatch, 'tango'):
        result = s.provision(delivery_method='email', delivery_address=address)

    assert (result.redemption.source, ds.delivery(result.redemption.id)['status']) == ('api', 'sent')
    assert len(ds.messages_to(address)) == 1


def test_with_nobody_signed_in_the_delivery_code_enters_the_scopes_it_needs(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the deliver function, on the redeem page and in the scheduled monitor: no caller's scope is set, and a
    transaction that entered none sees no tenant's rows (row-level security). The sweep, the send, the SES event and
    the link each enter their own."""
    s = ds.stocked(owner)
    address = ds.new_email()
    with ds.undispatched(monkeypatch):
        redemption_id = provision_to(s, 'email', address)
    ds.make_due(redemption_id, owner)

    with db.acting_as(None):
        swept = deliveries.sweep()
    message_id = ds.delivery(redemption_id)['provider_message_id']
    token = ds.link_token(ds.messages_to(address)[0])
    with db.acting_as(None):
        recorded = deliveries.handle_notification({'eventType': 'Delivery', 'mail': {'messageId': message_id}})
        peeked = delivery_links.peek(token)
        opened = delivery_links.open_link(token, source_ip=None, user_agent=None)

    assert swept >= 1 and recorded == 'delivered'
    assert peeked.brand_name == s.brand['name']
    assert opened.card is not None and opened.redemption_id == redemption_id
    row = ds.delivery(redemption_id)
    assert (row['status'], row['link_used_at'] is not None) == ('delivered', True)


# --- retries -------------------------------------------------------------------------------------------------


def test_backoff_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [delivering.backoff_s(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_transient_failure_is_retried_with_backoff_until_the_last_attempt_fails_it(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ds.stocked(owner)
    failures = [SendFailed('Throttling', permanent=False) for _ in range(delivering.MAX_ATTEMPTS)]
    with ds.fake_sender(monkeypatch, *failures) as sender:
        redemption_id = provision_to(s, 'email', ds.new_email())
        seen = [ds.delivery(redemption_id)]
        assert delivering.deliver(redemption_id) == 'not_due'  # not before its backoff
        for _ in range(delivering.MAX_ATTEMPTS - 1):
            ds.make_due(redemption_id, owner)
            delivering.deliver(redemption_id)
            seen.append(ds.delivery(redemption_id))

    assert [(r['status'], r['attempts']) for r in seen] == [('queued', n) for n in range(1, 6)] + [('failed', 6)]
    assert [float(r['backoff_s']) for r in seen[:-1]] == [30, 60, 120, 240, 480]
    assert seen[-1]['last_error'] == 'Throttling' and seen[-1]['failed_at'] is not None
    assert sender.calls == delivering.MAX_ATTEMPTS and sender.sent == []


def test_a_transient_failure_then_success_is_sent(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    with ds.fake_sender(monkeypatch, SendFailed('ServiceUnavailable', permanent=False)) as sender:
        redemption_id = provision_to(s, 'email', ds.new_email())
        ds.make_due(redemption_id, owner)
        assert delivering.deliver(redemption_id) == 'sent'

    row = ds.delivery(redemption_id)
    assert (row['status'], row['attempts'], row['last_error']) == ('sent', 2, None)
    assert len(sender.sent) == 1


def test_a_permanent_failure_fails_the_delivery_at_once(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    with ds.fake_sender(monkeypatch, SendFailed('MessageRejected', permanent=True)):
        redemption_id = provision_to(s, 'email', ds.new_email())

    row = ds.delivery(redemption_id)
    assert (row['status'], row['attempts'], row['last_error']) == ('failed', 1, 'MessageRejected')


# --- what the message holds ------------------------------------------------------------------------------


def test_a_campaign_set_to_send_the_card_sends_it_with_the_brands_instructions(owner: Any) -> None:
    s = ds.stocked(owner)
    delivery_settings.set_campaign_content(s.tree.client_admin, s.campaign_id, 'card')
    delivery_settings.set_brand_instructions(s.admin, s.brand['id'], 'Spend it at {brand} stores.')
    address = ds.new_email()

    result = s.provision(delivery_method='email', delivery_address=address)

    (message,) = ds.messages_to(address)
    assert result.card.card_code in message['text'] and result.card.card_number in message['text']
    assert f'Spend it at {s.brand["name"]} stores.' in message['text']
    assert 'token=' not in message['text']
    assert ds.delivery(result.redemption.id)['content'] == 'card'
    channels = ps.query(
        'SELECT channel FROM card_reveals WHERE redemption_id = CAST(:id AS uuid) ORDER BY id', id=result.redemption.id
    )
    assert [c['channel'] for c in channels] == ['api', 'delivery']


# --- consent -------------------------------------------------------------------------------------------------


def test_an_sms_without_a_recorded_opt_in_is_refused_before_anything_is_charged(owner: Any) -> None:
    s = ds.stocked(owner)
    before = factories.balance_cents(s.paying_account)

    with pytest.raises(errors.Conflict) as refused:
        s.provision(delivery_method='sms', delivery_address=ds.new_phone())

    assert refused.value.code == 'recipient_not_consenting'
    assert factories.balance_cents(s.paying_account) == before
    assert ps.redemptions_of(s.campaign_id) == []


def test_an_sms_goes_to_a_number_with_a_recorded_opt_in(owner: Any) -> None:
    s = ds.stocked(owner)
    phone = ds.new_phone()
    delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], phone, 'checkout form')

    result = s.provision(delivery_method='sms', delivery_address=phone)

    assert ds.delivery(result.redemption.id)['status'] == 'sent'
    (message,) = ds.messages_to(phone)
    assert message['channel'] == 'sms' and 'token=' in message['text']


def test_a_stop_reply_is_recorded_and_honoured(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    phone = ds.new_phone()
    delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], phone, 'checkout form')
    with ds.undispatched(monkeypatch):
        queued = provision_to(s, 'sms', phone)

    assert deliveries.handle_inbound_sms({'originationNumber': phone, 'messageBody': 'stop'}) == 'opted_out'

    assert delivering.deliver(queued) == 'failed'  # the queued one: refused at its send
    assert ds.delivery(queued)['last_error'] == recipients.CONSENT_REFUSALS['opted_out']
    with pytest.raises(errors.Conflict) as refused:
        s.provision(delivery_method='sms', delivery_address=phone)
    assert refused.value.code == 'recipient_not_consenting'
    with pytest.raises(errors.Conflict) as again:
        delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], phone, 'checkout form')
    assert again.value.code == 'recipient_opted_out'
    (listed,) = delivery_settings.list_sms_consents(s.tree.client_admin, s.tree.client['id'], phone=phone).items
    assert listed.opted_out_at is not None and listed.opt_out_source == 'STOP reply'
    assert ds.messages_to(phone) == []

    assert deliveries.handle_inbound_sms({'originationNumber': phone, 'messageBody': 'START'}) == 'opted_in_again'
    assert s.provision(delivery_method='sms', delivery_address=phone).redemption.delivery_method == 'sms'
    assert len(ds.messages_to(phone)) == 1


# --- resending -----------------------------------------------------------------------------------------------


def test_a_resend_sends_a_new_link_and_kills_the_old_one_within_limits(owner: Any) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()
    redemption_id = provision_to(s, 'email', address)

    with pytest.raises(errors.RateLimited):
        deliveries.resend(s.tree.client_admin, redemption_id)  # too soon after the first send
    tokens = [ds.link_token(ds.messages_to(address)[0])]
    for send in range(2, deliveries.MAX_RESENDS + 2):
        ds.age_last_send(redemption_id, owner)
        deliveries.resend(s.tree.client_admin, redemption_id)
        row = ds.delivery(redemption_id)
        assert (row['send_number'], row['status'], row['attempts']) == (send, 'sent', 1)
        tokens.append(ds.link_token(ds.messages_to(address)[-1]))
    ds.age_last_send(redemption_id, owner)
    with pytest.raises(errors.Conflict) as limit:
        deliveries.resend(s.tree.client_admin, redemption_id)

    assert limit.value.code == 'resend_limit'
    assert len(set(tokens)) == len(tokens) == deliveries.MAX_RESENDS + 1
    for old in tokens[:-1]:
        with pytest.raises(delivery_links.InvalidLink):
            delivery_links.peek(old)
    assert delivery_links.peek(tokens[-1]).redemption_id == redemption_id


def test_a_resend_is_refused_while_a_send_is_in_progress_and_for_others(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ds.stocked(owner)
    with ds.undispatched(monkeypatch):
        queued = provision_to(s, 'email', ds.new_email())
    plain = s.provision().redemption.id
    other = factories.hierarchy_tree(owner)

    with pytest.raises(errors.Conflict) as in_progress:
        deliveries.resend(s.tree.client_admin, queued)
    with pytest.raises(errors.Conflict) as none:
        deliveries.resend(s.tree.client_admin, plain)
    with pytest.raises(errors.NotFound):
        deliveries.resend(other.client_admin, queued)
    with pytest.raises(errors.NotFound):
        deliveries.resend(s.tree.integration, queued)

    assert (in_progress.value.code, none.value.code) == ('delivery_in_progress', 'no_delivery')


# --- the redeem link -----------------------------------------------------------------------------------------


def test_the_link_shows_the_card_once(owner: Any) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()
    result = s.provision(delivery_method='email', delivery_address=address)
    token = ds.link_token(ds.messages_to(address)[0])

    peeked = delivery_links.peek(token)
    opened = delivery_links.open_link(token, source_ip='198.51.100.9', user_agent='mail app')

    assert peeked.card is None and (peeked.brand_name, peeked.denomination_cents) == (s.brand['name'], 2500)
    assert opened.card is not None and opened.card.card_code == result.card.card_code
    with pytest.raises(delivery_links.InvalidLink):
        delivery_links.open_link(token, source_ip=None, user_agent=None)
    row = ds.delivery(result.redemption.id)
    assert row['link_used_at'] is not None and row['status'] == 'delivered'  # opening it proves it arrived
    reveals = ps.query(
        'SELECT host(source_ip) AS ip FROM card_reveals'
        " WHERE redemption_id = CAST(:id AS uuid) AND channel = 'delivery_link'",
        id=result.redemption.id,
    )
    assert reveals == [{'ip': '198.51.100.9'}]


def test_an_expired_link_shows_nothing(owner: Any) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()
    redemption_id = provision_to(s, 'email', address)
    token = ds.link_token(ds.messages_to(address)[0])
    owner.run(
        "UPDATE deliveries SET link_expires_at = now() - interval '1 second' WHERE id = CAST(:id AS uuid)",
        id=redemption_id,
    )

    with pytest.raises(delivery_links.InvalidLink):
        delivery_links.peek(token)
    with pytest.raises(delivery_links.InvalidLink):
        delivery_links.open_link(token, source_ip=None, user_agent=None)
    assert ds.delivery(redemption_id)['link_used_at'] is None


def test_the_link_expires_after_the_configured_time(owner: Any) -> None:
    s = ds.stocked(owner)
    redemption_id = provision_to(s, 'email', ds.new_email())

    [row] = ps.query(
        'SELECT extract(epoch FROM link_expires_at - sent_at) AS ttl FROM deliveries WHERE id = CAST(:id AS uuid)',
        id=redemption_id,
    )
    assert abs(float(row['ttl']) - 30 * 86400) < 60


def test_a_forged_token_is_refused_before_any_lookup() -> None:
    for token in ('', 'x' * 43 + '!', 'a' * 42, 'a' * 44, '\u00e9' * 43):
        with pytest.raises(delivery_links.InvalidLink):
            delivery_links.peek(token)


# --- what providers tell -------------------------------------------------------------------------------------


def test_ses_notifications_move_a_sent_email_to_delivered_or_bounced(owner: Any) -> None:
    s = ds.stocked(owner)
    delivered, bounced = (provision_to(s, 'email', ds.new_email()) for _ in range(2))

    for redemption_id, event in ((delivered, {'eventType': 'Delivery'}), (bounced, {'eventType': 'Bounce'})):
        message_id = ds.delivery(redemption_id)['provider_message_id']
        event = {
            **event,
            'mail': {'messageId': message_id},
            'bounce': {'bounceType': 'Permanent', 'bounceSubType': 'General'},
        }
        deliveries.handle_notification(event)

    assert ds.delivery(delivered)['status'] == 'delivered'
    row = ds.delivery(bounced)
    assert (row['status'], row['last_error']) == ('bounced', 'bounce: Permanent/General')
    assert deliveries.handle_notification({'eventType': 'Bounce', 'mail': {'messageId': 'unknown'}}) is None


def test_a_complaint_opts_the_address_out(owner: Any) -> None:
    s = ds.stocked(owner)
    address = ds.new_email()
    redemption_id = provision_to(s, 'email', address)
    message_id = ds.delivery(redemption_id)['provider_message_id']

    assert deliveries.handle_notification({'notificationType': 'Complaint', 'mail': {'messageId': message_id}}) == (
        'complaint'
    )

    assert ds.delivery(redemption_id)['complained_at'] is not None
    ds.age_last_send(redemption_id, owner)
    with pytest.raises(errors.Conflict):
        deliveries.resend(s.tree.client_admin, redemption_id)
    with pytest.raises(errors.Conflict):
        s.provision(delivery_method='email', delivery_address=address)


# --- the monitor ---------------------------------------------------------------------------------------------


def test_the_monitor_alerts_when_a_clients_deliveries_keep_failing(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    rejected = [SendFailed('MessageRejected', permanent=True) for _ in range(monitor.DELIVERY_PROBLEMS_WARNING)]
    with ds.fake_sender(monkeypatch, *rejected):
        for _ in range(monitor.DELIVERY_PROBLEMS_WARNING - 1):
            provision_to(s, 'email', ds.new_email())
        monitor.run_monitor('cli')
        assert open_alert(s.tree.client['id']) is None  # below the threshold
        provision_to(s, 'email', ds.new_email())

    result = monitor.run_monitor('cli')

    alert = open_alert(s.tree.client['id'])
    assert alert is not None and alert['severity'] == 'warning'
    assert result.breakdown['deliveries'] >= 1


def open_alert(client_id: str) -> dict[str, Any] | None:
    rows = ps.query(
        "SELECT severity, message FROM system_alerts WHERE type = 'deliveries_failing'"
        " AND entity_id = CAST(:id AS uuid) AND status <> 'resolved'",
        id=client_id,
    )
    return rows[0] if rows else None


# --- the walls -----------------------------------------------------------------------------------------------


def test_the_application_may_not_write_a_delivery_nor_readdress_one(owner: Any) -> None:
    s = ds.stocked(owner)
    redemption_id = provision_to(s, 'email', ds.new_email())
    other = s.provision().redemption.id

    def attempt(sql: str) -> str:
        with pytest.raises(Exception) as refused:
            db.in_transaction(lambda uow: uow.execute(sql, id=other, r=redemption_id))
        return str(refused.value)

    inserted = attempt(
        'INSERT INTO deliveries (id, client_id, campaign_id, channel, address, content)'
        " SELECT id, client_id, campaign_id, 'email', 'thief@example.com', 'card' FROM redemptions"
        ' WHERE id = CAST(:id AS uuid)'
    )
    readdressed = attempt("UPDATE deliveries SET address = 'thief@example.com' WHERE id = CAST(:r AS uuid)")

    assert 'permission denied' in inserted and 'permission denied' in readdressed
    assert ds.delivery(redemption_id)['address'] != 'thief@example.com'
    assert ps.query('SELECT 1 FROM deliveries WHERE id = CAST(:id AS uuid)', id=other) == []


def test_a_delivery_keeps_to_its_states(owner: Any) -> None:
    s = ds.stocked(owner)
    redemption_id = provision_to(s, 'email', ds.new_email())  # sent

    with pytest.raises(Exception, match='sent cannot become queued'):
        owner.run("UPDATE deliveries SET status = 'queued' WHERE id = CAST(:id AS uuid)", id=redemption_id)
