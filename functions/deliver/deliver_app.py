"""The deliver function: sends cards to their recipients, and hears back from the providers.

- SQS (the delivery queue): each message names a delivery to send (`giftcards.delivering.deliver`). A message whose
  handling raised (the database was unreachable) is reported failed alone and comes back after the queue's
  visibility timeout; after maxReceiveCount it goes to the dead-letter queue, and the monitor's sweep sends its
  delivery all the same, since the delivery row is the outbox, not the message.
- SNS: SES events of the configuration set (delivery, bounce, complaint) and inbound SMS (STOP, START).
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from giftcards import deliveries, delivering, delivery_queue
from giftcards.config import Need, require
from giftcards.observability import capture_lambda_handler, logger, metrics

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE, Need.CODE_HASH, Need.CARD_REVEAL, Need.DELIVERY_QUEUE, Need.MESSAGING)

processor = BatchProcessor(event_type=EventType.SQS)


class NotDelivered(Exception):
    """A queue message whose handling broke: reported failed alone, so that the queue sends it again. Its text is
    the failure's kind only (the batch utility logs it, and a database error's detail can quote an address)."""


def _deliver(record: SQSRecord) -> None:
    try:
        delivering.handle_queue_message(record.body)
    except Exception as exc:
        raise NotDelivered(json.dumps(delivery_queue.failure(exc, 1))) from None


def _notification(record: dict[str, Any]) -> None:
    try:
        message = json.loads(record['Sns']['Message'])
    except (KeyError, TypeError, ValueError):
        logger.warning('an SNS record was not understood')
        return
    if not isinstance(message, dict):
        logger.warning('an SNS message was not an object')
    elif 'originationNumber' in message:
        deliveries.handle_inbound_sms(message)
    else:
        deliveries.handle_notification(message)


@logger.inject_lambda_context(clear_state=True)
@capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get('Records') or []
    if records and records[0].get('eventSource') == 'aws:sqs':
        return process_partial_response(event=event, record_handler=_deliver, processor=processor, context=context)
    for record in records:
        if record.get('EventSource') == 'aws:sns':
            _notification(record)
    return {}
