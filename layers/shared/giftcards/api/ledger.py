"""Credit routes: `router` moves credit (allocate, reclaim: the allocate function); `accounts_router` reads
accounts and their ledger entries (the admin function)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict

from giftcards import allocation, errors, limits, pagination
from giftcards.api.app import caller_subject, error_responses
from giftcards.money import Amount

router = Router()
accounts_router = Router()

IDEMPOTENCY_HEADER = 'Idempotency-Key'
_MAX_KEY_LENGTH = limits.IDEMPOTENCY_KEY.max_length


class MoveCreditBody(BaseModel):
    """The seed's body (camelCase). Allocation: parent -> child; reclaim: child -> parent."""

    model_config = ConfigDict(extra='forbid')

    fromAccountId: UUID  # the seed's field names
    toAccountId: UUID
    amount: Amount
    notes: limits.NotesText | None = None


def _idempotency_key() -> str | None:
    key = router.current_event.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= _MAX_KEY_LENGTH and key.isprintable()):
        message = f'must be 1 to {_MAX_KEY_LENGTH} printable characters'
        raise errors.ValidationFailed(
            f'{IDEMPOTENCY_HEADER}: {message}', details=[{'field': IDEMPOTENCY_HEADER, 'message': message}]
        )
    return key


def _move(direction: allocation.Direction, body: MoveCreditBody) -> Response[str]:
    request = allocation.MoveRequest(direction, str(body.fromAccountId), str(body.toAccountId), body.amount, body.notes)
    outcome = allocation.move_credit(caller_subject(router), request, _idempotency_key())
    headers = {'Cache-Control': 'no-store'}
    if outcome.replayed:
        headers['Idempotent-Replayed'] = 'true'
    return Response(status_code=200, content_type='application/json', body=json.dumps(outcome.answer), headers=headers)


RETRY_SAFETY = (
    'Retries are safe by construction. Send an `Idempotency-Key` header (1-255 printable characters): the same '
    'key with the same body answers the first answer again and moves nothing (header `Idempotent-Replayed: '
    'true`); the same key with another body is 409 `idempotency_conflict`.\n\n'
    'A 503 `service_unavailable` or `busy` means nothing was moved: try again. A 503 `outcome_unknown` means the '
    'database connection broke while the movement was being committed, so it may or may not have been made. With '
    'an Idempotency-Key, send the same request with the same key. Without one, look for the transfer the message '
    'names in `GET /accounts/{fromAccountId}/transactions` before moving the credit again.'
)
MOVE_RESPONSES = error_responses(
    {
        409: '`insufficient_credit`, or `idempotency_conflict`',
        503: '`service_unavailable` or `busy` (nothing moved), or `outcome_unknown` (see above)',
    }
)


@router.post(
    '/allocate-credit',
    summary='Allocate credit from an account to its direct child',
    description=RETRY_SAFETY,
    responses=MOVE_RESPONSES,
)
def allocate_credit(body: MoveCreditBody) -> Response[str]:
    return _move('allocation', body)


@router.post(
    '/reclaim-credit',
    summary='Reclaim unused credit from a direct child account to its parent',
    description=RETRY_SAFETY,
    responses=MOVE_RESPONSES,
)
def reclaim_credit(body: MoveCreditBody) -> Response[str]:
    return _move('reclaim', body)


@accounts_router.get('/accounts/<account_id>', summary='An account and its balance')
def get_account(account_id: str) -> dict[str, Any]:
    return allocation.get_account(caller_subject(accounts_router), account_id)


@accounts_router.get('/accounts/<account_id>/transactions', summary="An account's ledger entries, newest first")
def list_account_transactions(
    account_id: str,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    return allocation.list_entries(caller_subject(accounts_router), account_id, limit, cursor)
