"""POST /monitor-gift-card-system: one monitor run on demand (platform admin). The schedule runs it directly."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from giftcards import alerts, auth, db, monitor
from giftcards.api.alerts import AlertShown
from giftcards.api.app import COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Absent, Answer, absent

router = Router()

API_GATEWAY_TIMEOUT_S = 29.0  # an HTTP API integration answers within 30 s or the caller gets 503


class Breakdown(Answer):
    """The conditions found, per category."""

    csv_pools: int
    campaigns: int
    agencies: int
    clients: int
    provisioning_failures: int
    ledger: int
    deliveries: int


class RecoveryOut(Answer):
    """What the run did about redemptions left pending by a vendor: how many it examined and how each ended, or why
    it did not try. Only the fields that apply are present."""

    examined: int | Absent = Field(None, exclude_if=absent)
    fulfilled: int | Absent = Field(None, exclude_if=absent)
    failed: int | Absent = Field(None, exclude_if=absent)
    still_pending: int | Absent = Field(None, exclude_if=absent)
    errors: int | Absent = Field(None, exclude_if=absent)
    skipped: str | Absent = Field(None, exclude_if=absent, description='why no redemption was retried')
    error: str | Absent = Field(None, exclude_if=absent, description='the recovery failed; the next run tries again')


class LedgerCheckOut(Answer):
    """The run's ledger check: every balance and their sum, and the entries with ids in (`entries_after`,
    `entries_through`] with those found in violation before. `watermark`: every entry up to it is checked and final;
    `behind`: entries beyond this run's range, left for the next runs. Absent when the run was skipped."""

    entries_after: int | Absent = Field(None, exclude_if=absent)
    entries_through: int | Absent = Field(None, exclude_if=absent)
    watermark: int | Absent = Field(None, exclude_if=absent)
    behind: int | Absent = Field(None, exclude_if=absent)
    violations: int | Absent = Field(
        None, exclude_if=absent, description='problems found, alerted per account, transfer or sum'
    )


class ChangedAlert(AlertShown):
    change: alerts.Change


class MonitorAnswer(Answer):
    """A monitor run. A run skipped because another held the lease says so (`skipped: true` and `reason`) and
    counts nothing."""

    success: bool
    duration_ms: int
    alerts_generated: int
    alerts_escalated: int
    alerts_resolved: int
    alerts_open: int
    breakdown: Breakdown
    alerts: list[ChangedAlert] = Field(description='what changed, at most 100')
    campaigns_paused: list[str]
    notifications_sent: int
    recovery: RecoveryOut
    ledger: LedgerCheckOut
    deliveries_swept: int = Field(description='queued deliveries past their due time, handed to the queue again')
    skipped: Literal[True] | Absent = Field(None, exclude_if=absent)
    reason: str | Absent = Field(None, exclude_if=absent)

    @classmethod
    def of(cls, result: monitor.MonitorResult) -> MonitorAnswer:
        """The run's result. Its breakdown, changed alerts and recovery report are the JSON objects the monitor also
        logs and keeps as its last result."""
        return cls(
            success=result.success,
            duration_ms=result.duration_ms,
            alerts_generated=result.alerts_generated,
            alerts_escalated=result.alerts_escalated,
            alerts_resolved=result.alerts_resolved,
            alerts_open=result.alerts_open,
            breakdown=Breakdown.model_validate(result.breakdown),
            alerts=[ChangedAlert.model_validate(alert) for alert in result.alerts],
            campaigns_paused=result.campaigns_paused,
            notifications_sent=result.notifications_sent,
            recovery=RecoveryOut.model_validate(result.recovery),
            ledger=LedgerCheckOut.model_validate(result.ledger),
            deliveries_swept=result.deliveries_swept,
            skipped=True if result.skipped else None,
            reason=result.reason if result.skipped else None,
        )


@router.post(
    '/monitor-gift-card-system',
    summary='Run the monitor now (platform admin)',
    description=(
        'Checks CSV pool stock, agency/client/campaign balances, depleted campaigns, provisioning failures, failing '
        'deliveries and the ledger (every balance against its newest entry, their sum, the entries written since the '
        'last run), '
        'reconciles the alerts and announces new, escalated and resolved ones. `alerts_generated` counts alerts '
        'opened by this run, `breakdown` the conditions found per category, `alerts` what changed (at most 100). '
        'While another run is in progress the answer is `{"success": true, "skipped": true, "reason": ...}`.'
    ),
    responses=answers(SIGNED_IN | COMMITS | {403: '`forbidden`: only a platform admin may'}),
)
def post_monitor() -> MonitorAnswer:
    subject = caller_subject(router)
    db.in_transaction(lambda uow: auth.require_platform_admin(auth.load_caller(uow, subject)), read_only=True)
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    result = monitor.run_monitor('http', time_budget_s=min(remaining_s, API_GATEWAY_TIMEOUT_S))
    return MonitorAnswer.of(result)
