"""Credit routes: `router` moves credit (allocate, reclaim: the allocate function); `accounts_router` reads
accounts and their ledger entries (the admin function)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from giftcards import allocation, errors, ledger, limits, pagination
from giftcards.api.app import BODY, COMMITS, SIGNED_IN, answers, caller_subject
from giftcards.api.models import Answer, Body, Dollars, IsoTimestamp, Page
from giftcards.money import Amount, to_dollars

router = Router()
accounts_router = Router()

IDEMPOTENCY_HEADER = 'Idempotency-Key'
_MAX_KEY_LENGTH = limits.IDEMPOTENCY_KEY.max_length


class MoveCreditBody(Body):
    """The seed's body (camelCase). Allocation: parent -> child; reclaim: child -> parent."""

    fromAccountId: UUID  # the seed's field names
    toAccountId: UUID
    amount: Amount
    notes: limits.NotesText | None = None


class EntryOut(Answer):
    """A ledger entry: one side of a transfer (snake_case, dollars; negative: credit left the account)."""

    id: int
    transfer_id: str
    account_id: str
    counter_account_id: str
    kind: ledger.Kind
    amount: Dollars
    balance_after: Dollars
    notes: str | None
    initiator: str
    created_at: IsoTimestamp

    @classmethod
    def of(cls, entry: allocation.LedgerEntry) -> EntryOut:
        return cls(
            id=entry.id,
            transfer_id=entry.transfer_id,
            account_id=entry.account_id,
            counter_account_id=entry.counter_account_id,
            kind=entry.kind,
            amount=to_dollars(entry.amount_cents),
            balance_after=to_dollars(entry.balance_after_cents),
            notes=entry.notes,
            initiator=entry.initiator,
            created_at=entry.created_at,
        )


class MoveAnswer(Answer):
    """The seed's answer (camelCase): both entries of the transfer and both balances after it."""

    success: Literal[True]
    outTransaction: EntryOut  # the seed's field names
    inTransaction: EntryOut
    fromAccountBalance: Dollars
    toAccountBalance: Dollars

    @classmethod
    def of(cls, movement: allocation.Movement) -> MoveAnswer:
        return cls(
            success=True,
            outTransaction=EntryOut.of(movement.out_entry),
            inTransaction=EntryOut.of(movement.in_entry),
            fromAccountBalance=to_dollars(movement.out_entry.balance_after_cents),
            toAccountBalance=to_dollars(movement.in_entry.balance_after_cents),
        )


class AccountOut(Answer):
    account_id: str
    owner_type: Literal['platform', 'agency', 'client', 'campaign', 'system']
    owner_id: str | None
    system_name: str | None  # system accounts: spend, spend:1 ... spend:31
    parent_account_id: str | None
    balance: Dollars
    created_at: IsoTimestamp

    @classmethod
    def of(cls, account: allocation.Account) -> AccountOut:
        return cls(
            account_id=account.account_id,
            owner_type=account.owner_type,
            owner_id=account.owner_id,
            system_name=account.system_name,
            parent_account_id=account.parent_account_id,
            balance=to_dollars(account.balance_cents),
            created_at=account.created_at,
        )


def _idempotency_key() -> str | None:
    key = router.current_event.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not (1 <= len(key) <= _MAX_KEY_LENGTH and key.isprintable()):
        message = f'must be 1 to {_MAX_KEY_LENGTH} printable characters'
        raise errors.ValidationFailed(
            f'{IDEMPOTENCY_HEADER}: {message}', details=[{'field': IDEMPOTENCY_HEADER, 'message': message}]
        )
    return key


def _move(direction: allocation.Direction, body: MoveCreditBody) -> Response[MoveAnswer]:
    request = allocation.MoveRequest(direction, str(body.fromAccountId), str(body.toAccountId), body.amount, body.notes)
    outcome = allocation.move_credit(caller_subject(router), request, _idempotency_key())
    headers = {'Cache-Control': 'no-store'}
    if outcome.replayed:
        headers['Idempotent-Replayed'] = 'true'
    return Response(
        status_code=200, content_type='application/json', body=MoveAnswer.of(outcome.movement), headers=headers
    )


RETRY_SAFETY = (
    'Retries are safe by construction. Send an `Idempotency-Key` header (1-255 printable characters): the same '
    'key with the same body answers the first answer again and moves nothing (header `Idempotent-Replayed: '
    'true`); the same key with another body is 409 `idempotency_conflict`.\n\n'
    'A 503 `service_unavailable` or `busy` means nothing was moved: try again. A 503 `outcome_unknown` means the '
    'database connection broke while the movement was being committed, so it may or may not have been made. With '
    'an Idempotency-Key, send the same request with the same key. Without one, look for the transfer the message '
    'names in `GET /accounts/{fromAccountId}/transactions` before moving the credit again.'
)
MOVE_RESPONSES = answers(
    SIGNED_IN
    | BODY
    | COMMITS
    | {
        403: '`forbidden`: the caller does not administer the parent account',
        404: '`not_found`: no such account for this caller',
        409: '`insufficient_credit`, or `idempotency_conflict`',
        422: '`validation_error` (the body or the Idempotency-Key header), or `invalid_hierarchy`: not a direct '
        'parent and child',
        503: '`service_unavailable` or `busy` (nothing moved), or `outcome_unknown` (see above)',
    },
    description='The transfer: both entries and both balances after it (header `Idempotent-Replayed: true` on a '
    'replay)',
)


@router.post(
    '/allocate-credit',
    summary='Allocate credit from an account to its direct child',
    description=RETRY_SAFETY,
    responses=MOVE_RESPONSES,
)
def allocate_credit(body: MoveCreditBody) -> Response[MoveAnswer]:
    return _move('allocation', body)


@router.post(
    '/reclaim-credit',
    summary='Reclaim unused credit from a direct child account to its parent',
    description=RETRY_SAFETY,
    responses=MOVE_RESPONSES,
)
def reclaim_credit(body: MoveCreditBody) -> Response[MoveAnswer]:
    return _move('reclaim', body)


NO_SUCH_ACCOUNT = {404: '`not_found`: no such account for this caller'}


@accounts_router.get(
    '/accounts/<account_id>', summary='An account and its balance', responses=answers(SIGNED_IN | NO_SUCH_ACCOUNT)
)
def get_account(account_id: str) -> AccountOut:
    return AccountOut.of(allocation.get_account(caller_subject(accounts_router), account_id))


@accounts_router.get(
    '/accounts/<account_id>/transactions',
    summary="An account's ledger entries, newest first",
    responses=answers(SIGNED_IN | NO_SUCH_ACCOUNT),
)
def list_account_transactions(
    account_id: str,
    limit: Annotated[int, Query(ge=1, le=pagination.MAX_LIMIT)] = pagination.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query()] = None,
) -> Page[EntryOut]:
    entries = allocation.list_entries(caller_subject(accounts_router), account_id, limit, cursor)
    return Page[EntryOut].of(entries, EntryOut.of)
