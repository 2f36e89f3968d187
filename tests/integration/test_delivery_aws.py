"""Deliveries the way they run in AWS, with SQS, SES and SNS through moto: provisioning commits and puts the
delivery on the queue, the deliver function sends what the queue names (SES e-mail, SNS SMS), a transient failure
comes back on the queue after its backoff, and SES refusing the message fails the delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from deliver_app import lambda_handler as deliver_handler
from giftcards import delivering, delivery_settings
from giftcards.config import get_settings
from giftcards.senders import SendFailed
from moto import mock_aws

from tests import delivery_support as ds
from tests import provisioning_support as ps
from tests import round_trips
from tests.events import LambdaContext

SENDER = 'gift-cards@example.com'


@dataclass
class Aws:
    sqs: Any
    queue_url: str
    ses: Any

    def received(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return list(answer.get('Messages', []))

    def delayed(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=['ApproximateNumberOfMessagesDelayed']
        )
        return int(attributes['Attributes']['ApproximateNumberOfMessagesDelayed'])

    def emails_sent(self) -> int:
        return int(self.ses.get_send_quota()['SentLast24Hours'])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Aws]:
    for name, value in (('AWS_ACCESS_KEY_ID', 'testing'), ('AWS_SECRET_ACCESS_KEY', 'testing')):
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client('sqs')
        queue_url = sqs.create_queue(QueueName='deliveries')['QueueUrl']
        ses = boto3.client('ses')
        ses.verify_email_identity(EmailAddress=SENDER)
        monkeypatch.setenv('DELIVERY_TRANSPORT', 'aws')
        monkeypatch.setenv('DELIVERY_QUEUE_URL', queue_url)
        monkeypatch.setenv('EMAIL_FROM', SENDER)
        get_settings.cache_clear()
        try:
            yield Aws(sqs, queue_url, ses)
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()


def as_lambda_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    event = ds.sqs_event(*(m['Body'] for m in messages))
    for record, message in zip(event['Records'], messages, strict=True):
        record['messageId'] = message['MessageId']
    return event


def test_a_provision_queues_its_delivery_and_the_deliver_function_sends_it_through_ses(owner: Any, aws: Aws) -> None:
    s = ds.stocked(owner)

    result = s.provision(delivery_method='email', delivery_address=ds.new_email())

    assert ds.delivery(result.redemption.id)['status'] == 'queued'
    messages = aws.received()
    assert [json.loads(m['Body']) for m in messages] == [{'delivery_id': result.redemption.id}]
    answer = deliver_handler(as_lambda_event(messages), LambdaContext())
    assert answer == {'batchItemFailures': []}
    row = ds.delivery(result.redemption.id)
    assert row['status'] == 'sent' and row['provider_message_id']
    assert aws.emails_sent() == 1


def test_a_provision_with_a_delivery_is_still_two_round_trips(
    owner: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery row is the trigger's, inside provision_card's call; the queue is told after, outside the
    database."""
    s = ds.stocked(owner, budget_mode='shared')
    with round_trips.recorded(monkeypatch) as sent:
        s.provision(delivery_method='email', delivery_address=ds.new_email())  # statements prepared
        sent.clear()
        result = s.provision(f'NOT-ISSUED-{ps.new_code()}', delivery_method='email', delivery_address=ds.new_email())

    assert [(r.what, r.words[:28]) for r in sent] == [
        ('execute', 'SELECT ctx.*, delivery_conse'),  # the context read, and whether the recipient may be messaged
        ('execute', 'SELECT * FROM provision_card'),
    ], sent
    assert ds.delivery(result.redemption.id)['status'] == 'queued'
    assert len(aws.received()) == 2


def test_an_sms_is_sent_through_sns(owner: Any, aws: Aws) -> None:
    s = ds.stocked(owner)
    phone = ds.new_phone()
    delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], phone, 'signup form')
    result = s.provision(delivery_method='sms', delivery_address=phone)

    deliver_handler(as_lambda_event(aws.received()), LambdaContext())

    row = ds.delivery(result.redemption.id)
    assert (row['channel'], row['status']) == ('sms', 'sent') and row['provider_message_id']
    assert aws.emails_sent() == 0


def test_a_transient_failure_puts_the_delivery_back_on_the_queue_after_its_backoff(
    owner: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ds.stocked(owner)
    result = s.provision(delivery_method='email', delivery_address=ds.new_email())
    messages = aws.received()

    with ds.fake_sender(monkeypatch, SendFailed('Throttling', permanent=False)):
        deliver_handler(as_lambda_event(messages), LambdaContext())

    row = ds.delivery(result.redemption.id)
    assert (row['status'], row['attempts'], float(row['backoff_s'])) == ('queued', 1, delivering.backoff_s(1))
    assert aws.delayed() == 1 and aws.received() == []


def test_ses_refusing_the_message_fails_the_delivery(owner: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ds.stocked(owner)
    monkeypatch.setenv('EMAIL_FROM', 'not-verified@example.com')
    get_settings.cache_clear()
    result = s.provision(delivery_method='email', delivery_address=ds.new_email())

    deliver_handler(as_lambda_event(aws.received()), LambdaContext())

    row = ds.delivery(result.redemption.id)
    assert (row['status'], row['last_error']) == ('failed', 'MessageRejected')
    assert aws.emails_sent() == 0
