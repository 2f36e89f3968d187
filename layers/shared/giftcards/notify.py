"""Delivering alert notifications to the alerts SNS topic (`ALERTS_TOPIC_ARN`); without a topic, locally, to the log.

The SNS client uses short timeouts and few retries: the caller (`alerts.publish_pending`) keeps whatever was not
delivered for its next run, so waiting long on the topic gains nothing. Messages carry `severity`, `change` and
`type` as message attributes, so subscriptions can filter (for example, pages only for critical alerts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from giftcards.config import get_settings
from giftcards.observability import logger

BATCH = 10  # SNS PublishBatch takes at most 10 entries
SUBJECT_MAX = 100

ChangeKind = Literal['new', 'escalated', 'resolved']


class Notification(NamedTuple):
    change: ChangeKind
    alert: dict[str, Any]  # as `alerts.Alert.as_json` writes it

    @property
    def subject(self) -> str:
        verb = {'new': 'New', 'escalated': 'Escalated', 'resolved': 'Resolved'}[self.change]
        text = f'[{self.alert["severity"].upper()}] {verb}: {self.alert["message"]}'
        # SNS subjects: printable ASCII, no line breaks, at most 100 characters.
        text = ''.join(ch if 32 <= ord(ch) < 127 else '?' for ch in text)
        return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3] + '...'

    def message(self) -> str:
        return json.dumps({'change': self.change, 'alert': self.alert}, default=str, sort_keys=True)

    def attributes(self) -> dict[str, dict[str, str]]:
        return {
            name: {'DataType': 'String', 'StringValue': str(value)}
            for name, value in (
                ('severity', self.alert['severity']),
                ('change', self.change),
                ('type', self.alert['type']),
            )
        }


def publish(notifications: Sequence[Notification]) -> list[Notification]:
    """Deliver the notifications; answers those the topic accepted (all of them when only logging)."""
    if not notifications:
        return []
    settings = get_settings()
    topic = settings.alerts_topic_arn
    if not topic and not settings.is_local:
        # Never "delivered" to the log where an operator expects a page: they stay pending until the topic is set.
        logger.error(
            'ALERTS_TOPIC_ARN is not set: alert notifications stay pending', extra={'pending': len(notifications)}
        )
        return []
    if not topic:
        for n in notifications:
            logger.info(
                'alert notification (no ALERTS_TOPIC_ARN: logged only)',
                extra={
                    'change': n.change,
                    'alert_id': n.alert['id'],
                    'severity': n.alert['severity'],
                    'type': n.alert['type'],
                    'subject': n.subject,
                },
            )
        return list(notifications)
    try:
        client = _client(topic)
    except Exception:
        logger.exception('could not create the SNS client')
        return []
    delivered: list[Notification] = []
    for start in range(0, len(notifications), BATCH):
        batch = list(notifications[start : start + BATCH])
        entries = [
            {'Id': str(i), 'Subject': n.subject, 'Message': n.message(), 'MessageAttributes': n.attributes()}
            for i, n in enumerate(batch)
        ]
        try:
            answer = client.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
        except Exception as exc:  # network, throttling, permissions: keep the rest for the next run
            logger.warning('publishing alert notifications failed', extra={'error': type(exc).__name__})
            break
        accepted = {entry['Id'] for entry in answer.get('Successful', [])}
        for failure in answer.get('Failed', []):
            logger.warning(
                'the alerts topic refused a notification',
                extra={'code': failure.get('Code'), 'alert_id': batch[int(failure['Id'])].alert['id']},
            )
        delivered.extend(n for i, n in enumerate(batch) if str(i) in accepted)
    return delivered


def _client(topic_arn: str) -> Any:
    import boto3
    from botocore.config import Config

    parts = topic_arn.split(':')
    region = parts[3] if len(parts) > 5 and parts[3] else None
    config = Config(connect_timeout=2, read_timeout=5, retries={'max_attempts': 2, 'mode': 'standard'})
    return boto3.client('sns', region_name=region, config=config)
