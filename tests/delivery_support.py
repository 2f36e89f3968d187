"""Test helpers for deliveries: a funded campaign with cards in stock, unique recipients, what the database and the
local outbox hold about a delivery, and senders that fail on demand."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from giftcards import deliveries, senders
from giftcards.senders import Outgoing, SendFailed

from tests import provisioning_support as ps

_LINK = re.compile(r'https?://\S+[?&]token=[A-Za-z0-9_-]+')


def new_email() -> str:
    return f'recipient-{uuid.uuid4().hex[:12]}@example.com'


def new_phone() -> str:
    return f'+1415{uuid.uuid4().int % 10**7:07d}'


def stocked(owner: Any, *, cards: int = 10, budget_mode: str = 'isolated') -> ps.Setup:
    """A funded campaign ($1,000) whose $25 cards are in stock."""
    s = ps.setup(owner, budget_mode=budget_mode, funds_cents=100_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, cards)
    return s


def delivery(delivery_id: str) -> dict[str, Any]:
    """The delivery row, with its times as seconds from now (negative: past) where the tests compare them."""
    rows = ps.query(
        'SELECT id::text, client_id::text, channel, address, content, status, send_number, attempts, last_error,'
        ' provider_message_id, link_token_hash, link_used_at, sent_at, delivered_at, bounced_at, failed_at,'
        ' complained_at, extract(epoch FROM next_attempt_at - updated_at) AS backoff_s'
        ' FROM deliveries WHERE id = CAST(:id AS uuid)',
        id=delivery_id,
    )
    assert rows, f'no delivery {delivery_id}'
    return rows[0]


def deliveries_of(campaign_id: str) -> list[dict[str, Any]]:
    return ps.query(
        'SELECT id::text, status FROM deliveries WHERE campaign_id = CAST(:c AS uuid) ORDER BY created_at',
        c=campaign_id,
    )


def messages_to(address: str) -> list[dict[str, Any]]:
    """What the local outbox holds for `address`, oldest first."""
    return list(reversed([m for m in senders.outbox_messages() if m['to'] == address]))


def link_token(message: dict[str, Any]) -> str:
    """The token of the redeem link a message carries."""
    found = _LINK.search(message['text'])
    assert found, message['text']
    return parse_qs(urlsplit(found.group(0)).query)['token'][0]


def make_due(delivery_id: str, owner: Any) -> None:
    """As if the delivery's next attempt (or the sweeper's grace) had come."""
    owner.run(
        "UPDATE deliveries SET next_attempt_at = now() - interval '2 minutes' WHERE id = CAST(:id AS uuid)",
        id=delivery_id,
    )


def age_last_send(delivery_id: str, owner: Any) -> None:
    """As if the last send had been queued long ago (past the resend interval)."""
    owner.run(
        "UPDATE deliveries SET queued_at = now() - interval '1 hour' WHERE id = CAST(:id AS uuid)", id=delivery_id
    )


@dataclass
class FakeSender:
    """Stands in for `senders.send`: records each message, and fails while `failures` holds errors."""

    failures: list[SendFailed] = field(default_factory=list)
    sent: list[Outgoing] = field(default_factory=list)
    calls: int = 0

    def __call__(self, outgoing: Outgoing) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(outgoing)
        return f'fake-{uuid.uuid4().hex}'


@contextmanager
def fake_sender(monkeypatch: pytest.MonkeyPatch, *failures: SendFailed) -> Iterator[FakeSender]:
    fake = FakeSender(list(failures))
    with monkeypatch.context() as patch:
        patch.setattr(senders, 'send', fake)
        yield fake


@contextmanager
def undispatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if the process died right after its commit: nothing is handed to the queue."""
    with monkeypatch.context() as patch:
        patch.setattr(deliveries, 'dispatch', lambda *args, **kwargs: None)
        yield


# --- the deliver function's events ------------------------------------------------------------------------


def sns_event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        'Records': [
            {
                'EventSource': 'aws:sns',
                'EventVersion': '1.0',
                'Sns': {'Type': 'Notification', 'MessageId': str(uuid.uuid4()), 'Message': json.dumps(message)},
            }
        ]
    }


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        'Records': [
            {
                'messageId': f'm-{i}',
                'receiptHandle': f'r-{i}',
                'body': body,
                'attributes': {'ApproximateReceiveCount': '1'},
                'messageAttributes': {},
                'md5OfBody': '',
                'eventSource': 'aws:sqs',
                'eventSourceARN': 'arn:aws:sqs:us-east-1:123456789012:deliveries',
                'awsRegion': 'us-east-1',
            }
            for i, body in enumerate(bodies)
        ]
    }
