"""Checking the ledger's invariants: every balance equals the sum of its entries, every transfer has exactly two
entries matching it, and the balances sum to zero.

- `check` recomputes them all from the whole ledger (`giftcard check`, the benchmarks, the tests).
- `check_recent` is the monitor's, on every run, at a cost that does not grow with the ledger's history.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from giftcards.db import UnitOfWork


class CheckReport(NamedTuple):
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


class Problem(NamedTuple):
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


class RecentCheck(NamedTuple):
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
