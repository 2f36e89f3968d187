"""POST /monitor-gift-card-system: one monitor run on demand (platform admin). The schedule runs it directly."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from giftcards import auth, db, monitor
from giftcards.api.app import caller_subject

router = Router()

API_GATEWAY_TIMEOUT_S = 29.0  # an HTTP API integration answers within 30 s or the caller gets 503


@router.post(
    '/monitor-gift-card-system',
    summary='Run the monitor now (platform admin)',
    description=(
        'Checks CSV pool stock, agency/client/campaign balances, depleted campaigns and provisioning failures, '
        'reconciles the alerts and announces new, escalated and resolved ones. `alerts_generated` counts alerts '
        'opened by this run, `breakdown` the conditions found per category, `alerts` what changed (at most 100). '
        'While another run is in progress the answer is `{"success": true, "skipped": true, "reason": ...}`.'
    ),
)
def post_monitor() -> dict[str, Any]:
    subject = caller_subject(router)
    db.in_transaction(lambda uow: auth.require_platform_admin(auth.load_caller(uow, subject)), read_only=True)
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    return monitor.run_monitor('http', time_budget_s=min(remaining_s, API_GATEWAY_TIMEOUT_S)).as_json()
