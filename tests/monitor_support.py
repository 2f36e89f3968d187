"""Test helpers for the monitor: pools at a given stock, the alerts of one entity, and an SNS topic (moto) with an
SQS queue subscribed to it, to read what the monitor announced.

The test session shares one database, so a monitor run sees every other test's entities too: tests look only at
the alerts and notifications of the entities they made. Tests that break the ledger do it in a database of their own
(`own_ledger`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native
import pytest
from giftcards import card_claims, card_import, db, monitor, pools
from giftcards.config import get_settings

from tests import factories, provisioning_support
from tests.scopes import migrate_for_tests


def run(trigger: monitor.Trigger = 'cli') -> dict[str, Any]:
    """One monitor run, as its answer."""
    result = monitor.run_monitor(trigger)
    assert result.success, result
    return result.as_json()


def stocked_pool(
    admin: str, cards_available: int, *, low_stock_threshold: int = 50, denomination_cents: int = 2500
) -> dict[str, Any]:
    """A CSV pool of a brand of its own holding `cards_available` cards: {id, brand_id, denomination_cents}."""
    brand = factories.brand(denominations_cents=(denomination_cents,))
    request = pools.PoolRequest(
        brand_id=uuid.UUID(brand['id']),
        denomination=provisioning_support.dollars(denomination_cents),
        cost_per_card=provisioning_support.dollars(denomination_cents - 100),
        low_stock_threshold=low_stock_threshold,
    )
    pool_id = str(db.in_transaction(lambda uow: pools.create_pool(uow, admin, request)).id)
    pool = {'id': pool_id, 'brand_id': brand['id'], 'brand': brand['name'], 'denomination_cents': denomination_cents}
    set_stock(admin, pool, cards_available)
    return pool


def available(pool: dict[str, Any]) -> int:
    return int(
        db.in_transaction(
            lambda uow: uow.value(
                'SELECT count(*) FROM available_cards WHERE pool_id = CAST(:id AS uuid)', id=pool['id']
            )
        )
    )


def set_stock(admin: str, pool: dict[str, Any], target: int) -> None:
    """Import cards (`pools`) or claim them (`card_claims`) until the pool holds exactly `target` available cards."""
    missing = target - available(pool)
    if missing > 0:
        rows = ''.join(f'CARD-{uuid.uuid4().hex},{uuid.uuid4().int % 10**16:016d}\n' for _ in range(missing))
        card_import.import_cards(admin, pool['id'], _csv(rows))

    def claim(uow: db.UnitOfWork) -> None:
        for _ in range(-missing):
            assert card_claims.claim_card(uow, pool['brand_id'], pool['denomination_cents']) is not None

    if missing < 0:
        db.in_transaction(claim)
    assert available(pool) == target


def _csv(rows: str) -> Any:
    import io

    return io.BytesIO(f'card_code,card_number\n{rows}'.encode())


def open_alert(type: str, entity_id: str | None, entity_type: str | None = None) -> dict[str, Any] | None:
    """The entity's alert of `type` that is not resolved, with its bookkeeping columns."""
    rows = alerts_of(type, entity_id, entity_type)
    current = [r for r in rows if r['status'] != 'resolved']
    assert len(current) <= 1, current
    return current[0] if current else None


def alerts_of(type: str, entity_id: str | None, entity_type: str | None = None) -> list[dict[str, Any]]:
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT id::text, type, severity, status, entity_type, entity_id::text, message, details, occurrences,'
            ' first_seen, last_seen, resolved_at, acknowledged_by, notified_status, notified_severity'
            ' FROM system_alerts WHERE type = :type AND entity_id IS NOT DISTINCT FROM CAST(:id AS uuid)'
            ' AND (CAST(:et AS text) IS NULL OR entity_type = :et) ORDER BY first_seen',
            type=type,
            id=entity_id,
            et=entity_type,
        )
    )


def severity_of(type: str, entity_id: str | None) -> str | None:
    alert = open_alert(type, entity_id)
    return alert['severity'] if alert else None


def set_threshold(entity_type: str, entity_id: str | None, cents: int) -> None:
    db.in_transaction(
        lambda uow: uow.execute(
            'INSERT INTO alert_thresholds (entity_type, entity_id, low_balance_cents, updated_by)'
            " VALUES (:t, CAST(:id AS uuid), :c, 'test') ON CONFLICT (entity_type, entity_id)"
            ' DO UPDATE SET low_balance_cents = EXCLUDED.low_balance_cents',
            t=entity_type,
            id=entity_id,
            c=cents,
        )
    )


# --- the alerts topic ------------------------------------------------------------------------------------


@dataclass
class Topic:
    """An SNS topic with an SQS queue subscribed: `messages()` drains what was published since the last call."""

    arn: str
    queue_url: str
    sqs: Any
    received: list[dict[str, Any]]

    def messages(self) -> list[dict[str, Any]]:
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=['All']
            )
            batch = answer.get('Messages', [])
            if not batch:
                break
            for message in batch:
                envelope = json.loads(message['Body'])
                self.received.append(
                    {
                        'subject': envelope.get('Subject'),
                        'body': json.loads(envelope['Message']),
                        'attributes': {k: v['Value'] for k, v in envelope.get('MessageAttributes', {}).items()},
                    }
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message['ReceiptHandle'])
        return self.received

    def about(self, entity_id: str) -> list[dict[str, Any]]:
        """(change, severity) of every message about this entity, oldest first."""
        return [m for m in self.messages() if m['body']['alert']['entity_id'] == entity_id]

    def changes(self, entity_id: str) -> list[tuple[str, str]]:
        return [(m['body']['change'], m['body']['alert']['severity']) for m in self.about(entity_id)]


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    """ALERTS_TOPIC_ARN pointing at a moto topic. Alerts that other tests left unannounced are announced first, to
    the log, so that this topic hears only about what the test does."""
    from moto import mock_aws

    monkeypatch.delenv('ALERTS_TOPIC_ARN', raising=False)
    get_settings.cache_clear()
    from giftcards import alerts

    while alerts.publish_pending():
        pass
    with mock_aws():
        import boto3

        sns = boto3.client('sns', region_name='us-east-1')
        sqs = boto3.client('sqs', region_name='us-east-1')
        arn = sns.create_topic(Name=f'alerts-{uuid.uuid4().hex[:8]}')['TopicArn']
        queue_url = sqs.create_queue(QueueName=f'alerts-{uuid.uuid4().hex[:8]}')['QueueUrl']
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
        sns.subscribe(TopicArn=arn, Protocol='sqs', Endpoint=queue_arn)
        monkeypatch.setenv('ALERTS_TOPIC_ARN', arn)
        get_settings.cache_clear()
        try:
            yield Topic(arn, queue_url, sqs, [])
        finally:
            monkeypatch.delenv('ALERTS_TOPIC_ARN')
            get_settings.cache_clear()


# --- a ledger of the test's own ---------------------------------------------------------------------------


@pytest.fixture
def own_ledger(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A migrated database of the test's own, which the application uses for the test (DATABASE_URL): violations
    planted there never reach the session's database, and its ledger holds only what the test wrote. Answers an
    owner connection to it; dropped afterwards."""
    name = f'gc_ledger_{uuid.uuid4().hex[:10]}'
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    owner = pg8000.native.Connection(**{**db.connection_params('owner'), 'database': name})
    migrate_for_tests(owner)
    monkeypatch.setenv('DATABASE_URL', urlunsplit(urlsplit(database_url)._replace(path=f'/{name}')))
    get_settings.cache_clear()
    db.reset_connections()
    try:
        yield owner
    finally:
        owner.close()
        db.reset_connections()
        monkeypatch.undo()
        get_settings.cache_clear()
        with db.owner_connection() as conn:
            conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def without_triggers(owner: Any, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run `statements` as the owner in one transaction with triggers and foreign keys off: the only way to change
    ledger rows, or a balance without entries, past the database's walls."""
    owner.run('BEGIN')
    try:
        owner.run('SET LOCAL session_replication_role = replica')
        for sql, params in statements:
            owner.run(sql, **params)
        owner.run('COMMIT')
    except BaseException:
        owner.run('ROLLBACK')
        raise


def entries_of(account_id: str) -> list[dict[str, Any]]:
    """The account's ledger entries, oldest first."""
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT id, transfer_id::text, account_id::text, amount_cents, balance_after_cents FROM credit_entries'
            ' WHERE account_id = CAST(:a AS uuid) ORDER BY id',
            a=account_id,
        )
    )


def ledger_watermark() -> int:
    """Every entry up to this id is checked by the monitor and final."""
    return int(db.in_transaction(lambda uow: uow.value('SELECT checked_through FROM ledger_check_state')))
