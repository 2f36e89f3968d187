"""Alerts: GET /alerts?status=open|resolved and POST /alerts/{alert_id}/acknowledge (platform admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from giftcards import alerts, pagination
from giftcards.api.app import COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, IsoTimestamp

router = Router()

Limit = Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT, description='page size')]
Cursor = Annotated[str | None, Query(max_length=512, description='next_cursor of the previous page')]
Status = Annotated[alerts.ListStatus, Query(description='open (including acknowledged) or resolved')]


class AlertOut(Answer):
    id: str
    type: str
    severity: alerts.Severity
    entity_type: str
    entity_id: str | None
    message: str
    status: alerts.Status
    occurrences: int
    details: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, alert: alerts.Alert) -> Self:
        return cls(
            id=alert.id,
            type=alert.type,
            severity=alert.severity,
            entity_type=alert.entity_type,
            entity_id=alert.entity_id,
            message=alert.message,
            status=alert.status,
            occurrences=alert.occurrences,
            details=alert.details,
            first_seen=alert.first_seen,
            last_seen=alert.last_seen,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
            resolved_at=alert.resolved_at,
        )


class AlertShown(AlertOut):
    """An alert as the admin dashboard and the monitor's answer show it: its times as Python writes them."""

    first_seen: IsoTimestamp
    last_seen: IsoTimestamp
    acknowledged_at: IsoTimestamp | None
    resolved_at: IsoTimestamp | None


class AlertPage(Answer):
    items: list[AlertOut]
    next_cursor: str | None

    @classmethod
    def of(cls, page: pagination.Page[alerts.Alert]) -> AlertPage:
        return cls(items=[AlertOut.of(alert) for alert in page.items], next_cursor=page.next_cursor)


PLATFORM_ONLY = {403: '`forbidden`: only a platform admin may'}


@router.get(
    '/alerts',
    summary='Open alerts newest first, or resolved ones most recently resolved first',
    responses=answers(SIGNED_IN | PLATFORM_ONLY),
)
def get_alerts(status: Status = 'open', limit: Limit = pagination.DEFAULT_LIMIT, cursor: Cursor = None) -> AlertPage:
    return AlertPage.of(alerts.list_alerts(caller_subject(router), status, limit, cursor))


@router.post(
    '/alerts/<alert_id>/acknowledge',
    summary='Mark an open alert as seen (platform admin)',
    responses=answers(
        SIGNED_IN
        | COMMITS
        | PLATFORM_ONLY
        | {404: '`not_found`: no such alert', 409: '`alert_resolved`: the alert is already resolved'}
    ),
)
def post_acknowledge(alert_id: str) -> AlertOut:
    return AlertOut.of(alerts.acknowledge(caller_subject(router), alert_id))
