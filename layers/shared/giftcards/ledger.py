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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from giftcards import db, errors, ids
from giftcards.db import UnitOfWork

Kind = Literal['allocation', 'reclaim', 'redemption', 'refund', 'reversal']

db.register_constraint('credit_accounts_balance_nonnegative', errors.InsufficientCredit)
db.register_constraint('ledger_transfer_accounts_exist', lambda: errors.NotFound('No such account.'))
db.register_constraint(
    'credit_transfers_reversed_once',
    lambda: errors.Conflict('This transfer was already reversed.', code='already_reversed'),
)


@dataclass(frozen=True)
class Entry:
    id: int
    account_id: str
    amount_cents: int
    balance_after_cents: int


@dataclass(frozen=True)
class Transfer:
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


@dataclass(frozen=True)
class CheckReport:
    accounts: int
    transfers: int
    balance_mismatches: list[str]
    unbalanced_transfers: list[str]
    total_balance_cents: int

    @property
    def ok(self) -> bool:
        return not self.balance_mismatches and not self.unbalanced_transfers and self.total_balance_cents == 0

    def summary(self) -> str:
        verdict = 'ledger ok' if self.ok else 'LEDGER VIOLATION'
        return (
            f'{verdict}: {self.accounts} accounts, {self.transfers} transfers, '
            f'{len(self.balance_mismatches)} balance mismatches, {len(self.unbalanced_transfers)} unbalanced '
            f'transfers, sum of balances {self.total_balance_cents} cents'
        )


def check(uow: UnitOfWork) -> CheckReport:
    """Recompute every invariant from the entries: balances, two balanced entries per transfer, sum zero."""
    mismatches = uow.fetch(
        'SELECT a.id::text FROM credit_accounts a LEFT JOIN ('
        '  SELECT account_id, sum(amount_cents) AS total FROM credit_entries GROUP BY account_id) e'
        ' ON e.account_id = a.id WHERE a.balance_cents <> coalesce(e.total, 0) ORDER BY a.id'
    )
    unbalanced = uow.fetch(
        'SELECT t.id::text FROM credit_transfers t LEFT JOIN credit_entries e ON e.transfer_id = t.id'
        ' GROUP BY t.id, t.from_account_id, t.to_account_id, t.amount_cents'
        ' HAVING count(e.id) <> 2 OR coalesce(sum(e.amount_cents), 0) <> 0'
        '  OR count(*) FILTER (WHERE (e.account_id = t.from_account_id AND e.amount_cents = -t.amount_cents)'
        '                         OR (e.account_id = t.to_account_id AND e.amount_cents = t.amount_cents)) <> 2'
        ' ORDER BY t.id'
    )
    counts = uow.fetch_one(
        'SELECT (SELECT count(*) FROM credit_accounts) AS accounts,'
        ' (SELECT count(*) FROM credit_transfers) AS transfers,'
        ' (SELECT coalesce(sum(balance_cents), 0) FROM credit_accounts) AS total'
    )
    assert counts is not None
    return CheckReport(
        accounts=int(counts['accounts']),
        transfers=int(counts['transfers']),
        balance_mismatches=[r['id'] for r in mismatches],
        unbalanced_transfers=[r['id'] for r in unbalanced],
        total_balance_cents=int(counts['total']),
    )


# --- the monitor's check: on every run, at a cost that does not grow with the ledger's history ---------------

RECENT_BATCH = 100_000  # entry ids the watermark may pass in one run: a long ledger is caught up run by run

ProblemKind = Literal['balance_differs', 'entry_chain_broken', 'transfer_unbalanced', 'balances_sum_nonzero']
# Problems found on entries: their entries are suspects, checked again on every run until they are sound.
_ENTRY_PROBLEMS = ('entry_chain_broken', 'transfer_unbalanced')


@dataclass(frozen=True)
class Problem:
    """One broken invariant. `expected` and `found` are cents, except for an unbalanced transfer: how many of its
    entries match it (2 expected: the source debited and the destination credited by its amount)."""

    kind: ProblemKind
    account_id: str | None
    transfer_id: str | None
    entry_id: int | None  # the entry that breaks its chain, the balance's newest entry, a checked entry of the transfer
    expected: int
    found: int
    owner_type: str | None = None  # the account's owner (agency, client, ...), for a problem on an account
    owner: str | None = None  # its owner's id, or a system account's name


@dataclass(frozen=True)
class RecentCheck:
    after: int  # entries with ids in (after, through] were checked, with the suspects of earlier runs
    through: int
    checked_through: int  # the watermark once this check commits
    behind: int  # entry ids beyond this check's range, left for the next runs
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


# The watermark (migration 0021), whether its candidate has become final (every transaction that was running, or
# not yet started, when the candidate was taken has ended), and where this snapshot's entries end.
_RECENT_STATE = """
SELECT checked_through, candidate_through, CAST(candidate_xmax AS text) AS candidate_xmax,
       coalesce(candidate_xmax <= pg_snapshot_xmin(pg_current_snapshot()), false) AS candidate_final,
       CAST(pg_snapshot_xmax(pg_current_snapshot()) AS text) AS snapshot_xmax,
       coalesce((SELECT max(id) FROM credit_entries), 0) AS newest
  FROM ledger_check_state WHERE id
   FOR UPDATE
"""

# The invariants on what changed: the database's `ledger_problems` (migration 0021), the one statement that states
# them for the monitor, as `check` does for `giftcard check`.
_RECENT_PROBLEMS = """
SELECT problem, CAST(account_id AS text) AS account_id, CAST(transfer_id AS text) AS transfer_id, entry_id, expected,
       found, owner_type, owner
  FROM ledger_problems(CAST(:after AS bigint), CAST(:through AS bigint))
 ORDER BY problem, account_id, entry_id, transfer_id
"""

_RECENT_SAVE = """
UPDATE ledger_check_state
   SET checked_through = CAST(:checked_through AS bigint), candidate_through = CAST(:candidate_through AS bigint),
       candidate_xmax = CAST(:candidate_xmax AS xid8), suspect_entries = CAST(:suspects AS bigint[]), checked_at = now()
 WHERE id
"""


def check_recent(uow: UnitOfWork, *, batch: int = RECENT_BATCH) -> RecentCheck:
    """The monitor's ledger check, in the caller's transaction (which holds the watermark's row locked until it ends):
    every balance and their sum, the entries written since the watermark and the suspects of earlier runs (the
    database's `ledger_problems`, migration 0021). Reads at most `batch` entry ids beyond the candidate, and each
    account's newest entry: nothing of the ledger's older history.

    The watermark moves as migration 0021 describes: a run reads from the watermark, which lags a run behind the
    highest id read, so that entries a transaction commits after newer ones are read by the run after its commit;
    the suspects become the entries found in violation. The candidate's snapshot xmax bounds every transaction that
    holds an entry id below the candidate because the ledger writes a transfer's row before its entries
    (`ledger_transfer`): the writing transaction has its transaction id before it draws an entry id. Long-running
    transactions hold the watermark back (the range read grows, up to `batch` beyond the candidate); they never make
    it pass an entry."""
    state = uow.fetch_one(_RECENT_STATE)
    assert state is not None, 'migration 0021 inserts the row'
    after, candidate = int(state['checked_through']), state['candidate_through']
    through = max(after, min(int(state['newest']), (after if candidate is None else int(candidate)) + batch))
    problems = [
        Problem(
            kind=row['problem'],
            account_id=row['account_id'],
            transfer_id=row['transfer_id'],
            entry_id=row['entry_id'],
            expected=int(row['expected']),
            found=int(row['found']),
            owner_type=row['owner_type'],
            owner=row['owner'],
        )
        for row in uow.fetch(_RECENT_PROBLEMS, after=after, through=through)
    ]
    checked_through, candidate_xmax = after, state['candidate_xmax']
    if state['candidate_final']:
        checked_through, candidate = max(after, min(int(candidate), through)), None
    if candidate is None and through > checked_through:
        candidate, candidate_xmax = through, state['snapshot_xmax']
    elif candidate is None:
        candidate_xmax = None
    uow.execute(
        _RECENT_SAVE,
        checked_through=checked_through,
        candidate_through=candidate,
        candidate_xmax=candidate_xmax,
        suspects=sorted({p.entry_id for p in problems if p.kind in _ENTRY_PROBLEMS and p.entry_id is not None}),
    )
    return RecentCheck(
        after=after,
        through=through,
        checked_through=checked_through,
        behind=int(state['newest']) - through,
        problems=problems,
    )
