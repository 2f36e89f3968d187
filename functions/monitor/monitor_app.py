"""The monitor function: POST /monitor-gift-card-system over HTTP, and the EventBridge schedule (every 5 minutes).

A scheduled event (`source: aws.events`) runs the monitor directly; anything else is an HTTP API request.
"""

from typing import Any

from giftcards import monitor
from giftcards.api import monitor as monitor_routes
from giftcards.api.app import http_handler, make_app
from giftcards.config import Need, require
from giftcards.observability import capture_lambda_handler, logger, metrics

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE, Need.CODE_HASH, Need.CARD_KEYS, Need.VENDORS, Need.ALERTS, Need.DELIVERY_QUEUE)

app = make_app(monitor_routes.router)
_http = http_handler(app)


@logger.inject_lambda_context(clear_state=True)
@capture_lambda_handler
@metrics.log_metrics
def _scheduled(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(correlation_id=event.get('id'))
    return monitor.run_monitor('schedule', time_budget_s=context.get_remaining_time_in_millis() / 1000).as_json()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get('source') == 'aws.events':
        return _scheduled(event, context)
    return _http(event, context)
