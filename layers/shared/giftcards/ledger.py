"""The double-entry ledger: `transfer_credit` is the one function every movement of credit goes through.

A transfer debits its source with a conditional UPDATE (`balance_cents >= amount`, so the database, not
Python, decides whether the money is there), credits its destination, and writes the transfer and its
two entries, all in the caller's transaction. Both account rows are locked in id order first, so two
transfers in opposite directions cannot deadlock. The database re-checks at commit that every transfer
has exactly two entries summing to zero, and refuses UPDATE/DELETE of ledger rows.

The movement is the database function `ledger_transfer` (migrations 0007, 0008, 0011), with its statement plans
cached for the connection rather than planned on every call. A refused transfer is an error in the database, so
it aborts the transaction. `move_credit` is a movement in a transaction of its own: one call of `ledger_move`
(0017), one round trip, which the server commits.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any, Literal, NamedTuple

from giftcards import db, errors, ids
from giftcards.db import UnitOfWork

Kind = Literal['allocation', 'reclaim', 'redemption', 'refund', 'reversal']

db.register_constraint('credit_accounts_balance_nonnegative', errors.InsufficientCredit)
db.register_constraint('ledger_transfer_accounts_exist', lambda: errors.NotFound('No such account.'))
db.register_constraint(
    'credit_transfers_reversed_once',
    lambda: errors.Conflict('This transfer was already reversed.', code='already_reversed'),
)


class Entry(NamedTuple):
    id: int
    account_id: str
    amount_cents: int
    balance_after_cents: int


class Transfer(NamedTuple):
    id: str
    kind: Kind
    amount_cents: int
    created_at: datetime
    debit: Entry  # the source's entry (negative amount)
    credit: Entry  # the destination's entry (positive amount)


_MOVE = (
    'SELECT debit_entry_id, debit_balance_after, credit_entry_id, credit_balance_after, transferred_at'
    ' FROM ledger_transfer(CAST(:tid AS uuid), :kind, CAST(:from_id AS uuid), CAST(:to_id AS uuid),'
    ' CAST(:amount AS bigint), :initiator, :notes, CAST(:reverses AS uuid))'
)
_MOVE_ALONE = (
    'SELECT debit_entry_id, debit_balance_after, credit_entry_id, credit_balance_after, transferred_at'
    ' FROM ledger_move(CAST(:scope AS text), CAST(:tid AS uuid), :kind, CAST(:from_id AS uuid), CAST(:to_id AS uuid),'
    ' CAST(:amount AS bigint), :initiator, :notes, CAST(:campaign AS uuid))'
)


def transfer_credit(
    uow: UnitOfWork,
    from_account_id: str,
    to_account_id: str,
    amount_cents: int,
    kind: Kind,
    *,
    initiator: str,
    notes: str | None = None,
    reverses_id: str | None = None,
    commit: bool = False,
    transfer_id: str | None = None,
    into_campaign: str | None = None,
) -> Transfer:
    """Move `amount_cents` from one account to another inside `uow`'s transaction.

    Raises InsufficientCredit when the source (other than the platform) holds less than the amount, and
    NotFound when either account does not exist; the transaction is then aborted, and nothing of it is kept.

    `commit=True`: the transfer is the transaction's last statement, and COMMIT travels with it in one round
    trip, so the two account rows are unlocked one exchange sooner (a hot account serves one transfer at a
    time, for as long as its row stays locked).

    `transfer_id`: the id to give the transfer, for a caller that wrote a row referring to it first (through a
    foreign key checked at commit), or that must name it before the commit; a new one otherwise.

    `into_campaign`: the destination is this campaign's account, which must still be isolated once its account is
    locked (the rule of `ledger_move`, migration 0017; InvalidHierarchy otherwise).
    """
    if amount_cents <= 0:
        raise errors.ValidationFailed('amount must be greater than 0')
    if from_account_id == to_account_id:
        raise errors.InvalidHierarchy('Credit cannot move from an account to itself.')
    tid = transfer_id or ids.time_ordered()
    params = {
        'tid': tid,
        'kind': kind,
        'from_id': from_account_id,
        'to_id': to_account_id,
        'amount': amount_cents,
        'initiator': initiator,
        'notes': notes,
    }
    if into_campaign is not None:
        assert reverses_id is None, 'a reversal moves credit back, never into a campaign'
        statement, params = _MOVE_ALONE, {**params, 'campaign': into_campaign, 'scope': None}
    else:
        statement, params = _MOVE, {**params, 'reverses': reverses_id}
    (row,) = uow.fetch_and_commit(statement, **params) if commit else uow.fetch(statement, **params)
    return _transfer(tid, kind, from_account_id, to_account_id, amount_cents, row)


def move_credit(
    from_account_id: str,
    to_account_id: str,
    amount_cents: int,
    kind: Kind,
    *,
    initiator: str,
    transfer_id: str,
    notes: str | None = None,
    into_campaign: str | None = None,
    scope: db.Scope,
) -> Transfer:
    """Move credit in a transaction of its own: one call of the database's `ledger_move` (migration 0017), which
    the server commits. `into_campaign`: the destination is this campaign's account, and it must still be isolated
    once its account is locked (InvalidHierarchy otherwise); `ledger_move` reads it in `scope` (migration 0026).
    A lost connection is OutcomeUnknown."""
    if amount_cents <= 0:
        raise errors.ValidationFailed('amount must be greater than 0')
    if from_account_id == to_account_id:
        raise errors.InvalidHierarchy('Credit cannot move from an account to itself.')
    (row,) = db.call(
        _MOVE_ALONE,
        scope=scope.text,
        tid=transfer_id,
        kind=kind,
        from_id=from_account_id,
        to_id=to_account_id,
        amount=amount_cents,
        initiator=initiator,
        notes=notes,
        campaign=into_campaign,
    )
    return _transfer(transfer_id, kind, from_account_id, to_account_id, amount_cents, row)


def _transfer(tid: str, kind: Kind, from_id: str, to_id: str, amount_cents: int, row: dict[str, Any]) -> Transfer:
    return Transfer(
        id=tid,
        kind=kind,
        amount_cents=amount_cents,
        created_at=row['transferred_at'],
        debit=Entry(row['debit_entry_id'], from_id, -amount_cents, row['debit_balance_after']),
        credit=Entry(row['credit_entry_id'], to_id, amount_cents, row['credit_balance_after']),
    )


def reverse_transfer(
    uow: UnitOfWork, transfer_id: str, *, kind: Kind, initiator: str, notes: str | None = None
) -> Transfer:
    """Undo a transfer with a new one in the opposite direction (a refund of a redemption, a correction)."""
    original = uow.fetch_one(
        'SELECT from_account_id::text, to_account_id::text, amount_cents'
        ' FROM credit_transfers WHERE id = CAST(:id AS uuid)',
        id=transfer_id,
    )
    if original is None:
        raise errors.NotFound('No such transfer.')
    return transfer_credit(
        uow,
        original['to_account_id'],
        original['from_account_id'],
        original['amount_cents'],
        kind,
        initiator=initiator,
        notes=notes,
        reverses_id=transfer_id,
    )


SPEND_SHARDS = 32  # the spend accounts redemptions are credited to (migration 0012)


def spend_account_name(shard: int | None = None) -> str:
    """The system name of one of the spend accounts: `shard`, or one at random. Redemptions spread over them, so
    that no single account row is locked by every redemption of the platform."""
    shard = random.randrange(SPEND_SHARDS) if shard is None else shard
    return 'spend' if shard == 0 else f'spend:{shard}'


def system_account(uow: UnitOfWork, name: str = 'spend') -> str:
    return str(uow.value('SELECT id::text FROM credit_accounts WHERE system_name = :n', n=name))


def platform_account(uow: UnitOfWork) -> str:
    return str(uow.value("SELECT id::text FROM credit_accounts WHERE owner_type = 'platform'"))


# Campaigns `c` with their client `cl` and the account that pays for their cards, `acc`: the campaign's own account when
# its budget is isolated, its client's when shared (the monitor's pauses and checks, the client dashboard).
PAYING_ACCOUNT = """
  FROM campaigns c
  JOIN clients cl ON cl.id = c.client_id
  JOIN credit_accounts acc ON acc.id = CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END
"""


def switch_budget_mode(uow: UnitOfWork, campaign_id: str, new_mode: str, *, initiator: str) -> Transfer | None:
    """Change a campaign's budget mode in the caller's transaction.

    isolated -> shared returns the campaign's whole balance to its client; shared -> isolated starts the
    campaign at 0 (a shared campaign holds nothing: allocations into it are refused).
    """
    if new_mode not in ('shared', 'isolated'):
        raise errors.ValidationFailed("budget_mode must be 'shared' or 'isolated'")
    row = uow.fetch_one(
        'SELECT c.budget_mode, c.account_id::text AS account_id, cl.account_id::text AS client_account_id,'
        ' a.balance_cents FROM campaigns c JOIN clients cl ON cl.id = c.client_id'
        ' JOIN credit_accounts a ON a.id = c.account_id WHERE c.id = CAST(:id AS uuid) FOR UPDATE OF c, a',
        id=campaign_id,
    )
    if row is None:
        raise errors.NotFound('No such campaign.')
    if row['budget_mode'] == new_mode:
        return None
    transfer = None
    if new_mode == 'shared' and row['balance_cents'] > 0:
        transfer = transfer_credit(
            uow,
            row['account_id'],
            row['client_account_id'],
            row['balance_cents'],
            'reclaim',
            initiator=initiator,
            notes='budget mode switched to shared: remaining balance returned to the client',
        )
    uow.execute(
        'UPDATE campaigns SET budget_mode = :m, updated_at = now() WHERE id = CAST(:id AS uuid)',
        m=new_mode,
        id=campaign_id,
    )
    return transfer
