"""The delivery queue (SQS, DELIVERY_QUEUE_URL): how a delivery reaches the deliver function.

`deliveries.dispatch` hands it the deliveries a commit wrote, and a send that failed for now is handed to it again,
due after its backoff (`delivering`). Nothing waits on the queue: a delivery that is not handed over stays queued in
the database, and the monitor's sweep dispatches it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from giftcards import db
from giftcards.observability import logger

SQS_MAX_DELAY_S = 900
SQS_BATCH = 10


def hand_over(queue_url: str, delivery_ids: Sequence[str], *, delay_s: int = 0) -> None:
    """One message per delivery, each due `delay_s` from now (at most SQS_MAX_DELAY_S). Raises what SQS raised;
    a message the queue refuses is logged and left to the sweep."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={'max_attempts': 2, 'mode': 'standard'})
    client = boto3.client('sqs', config=config)
    for start in range(0, len(delivery_ids), SQS_BATCH):
        batch = delivery_ids[start : start + SQS_BATCH]
        answer = client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    'Id': str(i),
                    'MessageBody': json.dumps({'delivery_id': delivery_id}),
                    'DelaySeconds': min(max(delay_s, 0), SQS_MAX_DELAY_S),
                }
                for i, delivery_id in enumerate(batch)
            ],
        )
        if answer.get('Failed'):
            logger.warning(
                'the queue refused deliveries; the monitor sweeps them', extra={'count': len(answer['Failed'])}
            )


def failure(exc: BaseException, count: int) -> dict[str, Any]:
    """What a log may say about a failure around deliveries: its kind, never its text (a database error's detail
    can quote a whole row, address included)."""
    return {'error': type(exc).__name__, 'sqlstate': db.sqlstate(exc), 'count': count}
