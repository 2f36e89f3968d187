"""Moving credit along the hierarchy on a caller's behalf, and reading accounts as that caller.

Allocation moves credit down one level (platform -> agency -> client -> isolated campaign); reclaim moves
it back up from a direct child. The caller must administer the parent side; an account whose owner the
caller may not see is a 404. Every movement is one `ledger.transfer_credit` in the caller's transaction.

An optional idempotency key binds a request to its first movement: it is claimed, naming the transfer, in the same
transaction as the movement, so the key is either unused or bound to exactly one committed transfer, which a
replay reads back from the ledger (entries never change).

Answers are domain values (`Account`, `LedgerEntry`, `Movement`), in cents; the routes render them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal, NamedTuple

from giftcards import auth, db, errors, ledger, pagination
from giftcards.auth import Caller
from giftcards.db import UnitOfWork
from giftcards.ids import time_ordered

Direction = Literal['allocation', 'reclaim']

# An account with what authorization needs of its owner: the agency and client it belongs to, read from the
# account's parent and grandparent (an agency's account hangs under the platform's, a client's under its
# agency's, a campaign's under its client's).
_ACCOUNTS = """
SELECT a.id::text AS account_id, a.owner_type, a.owner_id::text, a.parent_id::text AS parent_account_id,
       (CASE a.owner_type WHEN 'agency' THEN a.owner_id WHEN 'client' THEN p.owner_id WHEN 'campaign' THEN g.owner_id
        END)::text AS agency_id,
       (CASE a.owner_type WHEN 'client' THEN a.owner_id WHEN 'campaign' THEN p.owner_id END)::text AS client_id
       {shown}
  FROM credit_accounts a
  LEFT JOIN credit_accounts p ON p.id = a.parent_id
  LEFT JOIN credit_accounts g ON g.id = p.parent_id
 WHERE a.id IN (CAST(:first AS uuid), CAST(:second AS uuid))
"""
# What an allocation reads needs no more than that; what GET /accounts shows does.
_OWNERS = _ACCOUNTS.format(shown='')
# The caller's memberships and the accounts' owners as one row of two JSON values: one statement, one round trip.
_CALLER_AND_OWNERS = (
    f"SELECT {auth.MEMBERSHIPS} AS memberships, (SELECT coalesce(jsonb_agg(to_jsonb(o)), '[]') FROM ({_OWNERS}) o)"
    ' AS accounts'
)
_SHOWN = _ACCOUNTS.format(shown=', a.system_name, a.balance_cents, a.created_at')

# The columns of a `LedgerEntry`, from credit_entries e joined with its credit_transfers t.
_ENTRY = """e.id, e.transfer_id::text, e.account_id::text, t.kind, e.amount_cents, e.balance_after_cents,
       (CASE WHEN e.amount_cents < 0 THEN t.to_account_id ELSE t.from_account_id END)::text AS counter_account_id,
       t.notes, t.initiator, e.created_at"""

_HISTORY = f"""
SELECT {_ENTRY}
  FROM credit_entries e JOIN credit_transfers t ON t.id = e.transfer_id
 WHERE e.account_id = CAST(:account AS uuid) AND (CAST(:before AS bigint) IS NULL OR e.id < CAST(:before AS bigint))
 ORDER BY e.id DESC
 LIMIT :limit
"""


class Account(NamedTuple):
    """A credit account as its readers see it: its owner, its place in the hierarchy, its balance."""

    account_id: str
    owner_type: Literal['platform', 'agency', 'client', 'campaign', 'system']
    owner_id: str | None
    system_name: str | None
    parent_account_id: str | None
    balance_cents: int
    created_at: datetime


class LedgerEntry(NamedTuple):
    """One side of a transfer: what it did to one account, and where the credit came from or went."""

    id: int
    transfer_id: str
    account_id: str
    counter_account_id: str
    kind: ledger.Kind
    amount_cents: int  # negative: credit left the account
    balance_after_cents: int
    notes: str | None
    initiator: str
    created_at: datetime


# --- seeing and administering accounts ----------------------------------------------------------------


def sees(caller: Caller, account: dict[str, Any]) -> bool:
    """Whether the caller may see the account: the same rule as for the entity that owns it."""
    owner_type = account['owner_type']
    if owner_type == 'agency':
        return caller.sees_agency(account['agency_id'])
    if owner_type in ('client', 'campaign'):
        return caller.sees_client(account['client_id'], account['agency_id'])
    return caller.platform_admin  # the platform and system accounts


def administers(caller: Caller, account: dict[str, Any]) -> bool:
    """Whether the caller may move credit out of or into this account as the parent side."""
    owner_type = account['owner_type']
    if owner_type == 'agency':
        return caller.administers_agency(account['agency_id'])
    if owner_type in ('client', 'campaign'):
        return caller.administers_client(account['client_id'], account['agency_id'])
    return caller.platform_admin


def _accounts(uow: UnitOfWork, caller: Caller, *account_ids: str, shown: bool = False) -> list[dict[str, Any]]:
    """The accounts, in the order asked, each visible to the caller; 404 for any other. `shown`: with the
    balance and the other columns of an `Account`."""
    ids = _uuids(account_ids)
    rows = uow.fetch(_SHOWN if shown else _OWNERS, **_pair(ids))
    return _visible(caller, ids, rows)


def _uuids(account_ids: tuple[str, ...]) -> list[str | None]:
    """Each id in canonical (lower case) form; None for one that is not an id (no such account)."""
    return [account_id.lower() if auth.is_uuid(account_id) else None for account_id in account_ids]


def _pair(ids: list[str | None]) -> dict[str, str | None]:
    """The parameters of `_ACCOUNTS` for one or two accounts (canonical UUIDs, or None: no such account).

    Two scalar parameters rather than an array: with an array, the planner judges a plan for its actual length
    cheaper than one for any length, and plans the statement (three joins) again on every call."""
    assert len(ids) <= 2, 'one or two accounts'
    first, second = [*ids, None][:2]
    return {'first': first, 'second': second}


def _visible(caller: Caller, ids: list[str | None], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the accounts `ids`, in that order, if the caller sees every one (404 otherwise)."""
    by_id = {r['account_id']: r for r in rows}
    found = [by_id.get(a) if a is not None else None for a in ids]
    for account in found:
        if account is None or not sees(caller, account):
            raise errors.NotFound('No such account.')
    return [a for a in found if a is not None]


def visible_account(uow: UnitOfWork, caller: Caller, account_id: str) -> dict[str, Any]:
    """The account if its owner is visible to the caller (platform and system accounts: platform admins)."""
    return _accounts(uow, caller, account_id, shown=True)[0]


def get_account(subject: str, account_id: str) -> Account:
    """`GET /accounts/{id}`."""
    with UnitOfWork() as uow:
        row = visible_account(uow, auth.load_caller(uow, subject), account_id)
    return Account(
        row['account_id'],
        row['owner_type'],
        row['owner_id'],
        row['system_name'],
        row['parent_account_id'],
        row['balance_cents'],
        row['created_at'],
    )


def list_entries(subject: str, account_id: str, limit: int, cursor: str | None) -> pagination.Page[LedgerEntry]:
    """`GET /accounts/{id}/transactions`: the account's ledger entries, newest first, a page at a time."""
    (before,) = pagination.decode_cursor(cursor, size=1)
    if before is not None and not (type(before) is int and 0 < before < 2**63):
        raise errors.ValidationFailed(
            'cursor: not a cursor this API issued',
            details=[{'field': 'cursor', 'message': 'not a cursor this API issued'}],
        )
    with UnitOfWork() as uow:
        account = visible_account(uow, auth.load_caller(uow, subject), account_id)
        rows = uow.fetch(_HISTORY, account=account['account_id'], before=before, limit=limit + 1)
    return pagination.page_of(rows, limit, key=lambda r: (r['id'],), make=lambda r: LedgerEntry(**r))


# --- moving credit --------------------------------------------------------------------------------------


class MoveRequest(NamedTuple):
    """One allocation or reclaim as the caller asked for it. `from` is the parent for an allocation, the
    child for a reclaim."""

    direction: Direction
    from_account_id: str
    to_account_id: str
    amount_cents: int
    notes: str | None = None

    def fingerprint(self) -> str:
        """What an idempotency key is bound to: the movement as understood (its kind, the accounts, the cents and the
        notes: 25 == 25.00), whichever way it was asked for."""
        return self._digest(self.direction)

    def used_for(self, fingerprint: str) -> bool:
        """Whether a key bound to `fingerprint` was bound to this request. Keys bound by releases before the
        fingerprint named the movement's kind name the HTTP route in its place; they still match, so that a retry
        sent across an upgrade is answered rather than refused."""
        return fingerprint in (self.fingerprint(), self._digest(_ROUTE_BEFORE_KINDS[self.direction]))

    def _digest(self, kind: str) -> str:
        canonical = json.dumps(
            [kind, self.from_account_id.lower(), self.to_account_id.lower(), self.amount_cents, self.notes],
            separators=(',', ':'),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


_ROUTE_BEFORE_KINDS: dict[Direction, str] = {'allocation': '/allocate-credit', 'reclaim': '/reclaim-credit'}


class Movement(NamedTuple):
    """A committed allocation or reclaim: the source's entry (the debit) and the destination's (the credit)."""

    out_entry: LedgerEntry
    in_entry: LedgerEntry


class MoveOutcome(NamedTuple):
    movement: Movement
    replayed: bool  # the movement of an earlier request with the same idempotency key


def move_credit(subject: str, request: MoveRequest, idempotency_key: str | None = None) -> MoveOutcome:
    """Allocate or reclaim credit for `subject` (the allocate and reclaim routes).

    One transaction, run again on deadlock. With an idempotency key, an earlier committed request with the
    same key and fingerprint is answered with its movement and nothing moves; the same key with another
    request is an IdempotencyConflict.
    """
    transfer_id = time_ordered()  # known before the commit, so that an unknown outcome can name it
    try:
        if idempotency_key is not None:
            return db.in_transaction(
                lambda uow: _move_once(uow, subject, request, idempotency_key, transfer_id),
                keyed=True,
                scope=db.Scope.of_subject(subject),
            )
        # Without a key: what authorization needs in one read, then the movement in one call of the database,
        # which commits it (two round trips).
        caller, ids, accounts = _authorization(subject, request)
        source, destination, campaign_id = _authorized(caller, request, _visible(caller, ids, accounts))
        transfer = ledger.move_credit(
            source,
            destination,
            request.amount_cents,
            request.direction,
            initiator=caller.subject,
            transfer_id=transfer_id,
            notes=request.notes,
            into_campaign=campaign_id,
            scope=db.Scope.of_subject(subject),
        )
        return MoveOutcome(_movement(transfer, request.notes, caller.subject), replayed=False)
    except errors.OutcomeUnknown as exc:
        raise errors.OutcomeUnknown(_unknown_outcome(request, transfer_id, idempotency_key)) from exc


def _authorization(subject: str, request: MoveRequest) -> tuple[Caller, list[str | None], list[dict[str, Any]]]:
    """The caller, the two account ids in canonical form, and the accounts as `_OWNERS` answers them, in one read
    (accounts already known to this process are not read again)."""
    ids = _uuids((request.from_account_id, request.to_account_id))
    known = _known_owners(ids)
    scope = db.Scope.of_subject(subject)
    if known is not None:
        (memberships,) = db.read((db.ENTER, {'scope': scope.text}), scoped=False)
        return auth.caller_from(subject, memberships), ids, known
    (row,) = db.read((_CALLER_AND_OWNERS, {'s': subject, **_pair(ids)}), scope=scope)[0]
    return auth.caller_from(subject, row['memberships']), ids, _remember_owners(row['accounts'])


def _unknown_outcome(request: MoveRequest, transfer_id: str, idempotency_key: str | None) -> str:
    """What a caller whose movement may or may not have committed should do: repeat it only where repeating is
    safe by construction (the same idempotency key), else look for the transfer first."""
    what = 'allocation' if request.direction == 'allocation' else 'reclaim'
    lost = f'The connection to the database broke while this {what} (transfer {transfer_id}) was being committed'
    if idempotency_key is not None:
        return f'{lost}. Send the same request with the same Idempotency-Key: it is applied at most once.'
    return (
        f'{lost}: it may or may not have been made. Look for transfer {transfer_id} in the transactions of account '
        f'{request.from_account_id} before moving the credit again; a request sent with an Idempotency-Key can be '
        'repeated safely.'
    )


# What `_OWNERS` answered about accounts, kept for this process: an account's owner and its place in the hierarchy
# are written once, with the account, and never change. But what a read shows of them depends on its scope: a client
# admin's does not see its agency's account (row-level security), so the agency a client's or campaign's account
# hangs under reads as NULL there. Only whole rows are kept, which are the same for every caller; a row missing part
# of its place is used for its own request only. Bounded: forgotten wholesale when full.
_KNOWN_OWNERS: dict[str, dict[str, Any]] = {}
_KNOWN_OWNERS_LIMIT = 10_000
# The parts of an account's place that its owner type has (`_ACCOUNTS`): a row lacking one was read by a scope that
# could not see it.
_PLACE = {'agency': ('agency_id',), 'client': ('agency_id', 'client_id'), 'campaign': ('agency_id', 'client_id')}


def _known_owners(ids: list[str | None]) -> list[dict[str, Any]] | None:
    """The `_OWNERS` rows of all of `ids`, in order, if every one is known."""
    rows = [_KNOWN_OWNERS.get(i) if i is not None else None for i in ids]
    return None if None in rows else [r for r in rows if r is not None]


def _remember_owners(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(_KNOWN_OWNERS) + len(rows) > _KNOWN_OWNERS_LIMIT:
        _KNOWN_OWNERS.clear()
    for row in rows:
        if all(row[part] is not None for part in _PLACE.get(row['owner_type'], ())):
            _KNOWN_OWNERS[row['account_id']] = row
    return rows


def _move_once(
    uow: UnitOfWork, subject: str, request: MoveRequest, idempotency_key: str, transfer_id: str
) -> MoveOutcome:
    """A move with an idempotency key: what authorization needs and the key's claim in the first round trip, the
    transfer and COMMIT in the second."""
    ids = _uuids((request.from_account_id, request.to_account_id))
    memberships, accounts, claimed = uow.fetch_many(
        (auth.MEMBERSHIPS_QUERY, {'s': subject}),
        (_OWNERS, _pair(ids)),
        (_CLAIM, {'s': subject, 'k': idempotency_key, 'h': request.fingerprint(), 't': transfer_id}),
    )
    caller = auth.caller_from(subject, memberships)
    if not claimed:
        return MoveOutcome(_bound_movement(uow, subject, idempotency_key, request), replayed=True)
    source, destination, campaign_id = _authorized(caller, request, _visible(caller, ids, accounts))
    transfer = ledger.transfer_credit(
        uow,
        source,
        destination,
        request.amount_cents,
        request.direction,
        initiator=caller.subject,
        notes=request.notes,
        commit=True,
        transfer_id=transfer_id,
        into_campaign=campaign_id,
    )
    return MoveOutcome(_movement(transfer, request.notes, caller.subject), replayed=False)


# The claim of an idempotency key for this transaction: the key's row, naming the transfer the transaction makes. A
# concurrent request with the same key waits in its own INSERT until this transaction ends, then finds the committed
# row (or, after a rollback, which takes the row with it, claims the key). One row: claimed; none: the key was used
# before.
_CLAIM = (
    'INSERT INTO idempotency_keys (scope, key, request_hash, response)'
    " VALUES (:s, :k, :h, jsonb_build_object('transfer_id', CAST(:t AS text)))"
    ' ON CONFLICT (scope, key) DO NOTHING RETURNING 1 AS claimed'
)

# A used key's fingerprint, and the two entries of the transfer it is bound to, debit first. Keys bound by releases
# before the key named its transfer hold the whole answer of the time, whose `outTransaction` names it.
_BOUND = f"""
SELECT k.request_hash, {_ENTRY}
  FROM idempotency_keys k
  JOIN credit_transfers t
    ON t.id = CAST(coalesce(k.response ->> 'transfer_id', k.response -> 'outTransaction' ->> 'transfer_id') AS uuid)
  JOIN credit_entries e ON e.transfer_id = t.id
 WHERE k.scope = :s AND k.key = :k
 ORDER BY e.amount_cents
"""


def _bound_movement(uow: UnitOfWork, scope: str, key: str, request: MoveRequest) -> Movement:
    """The movement a used key is bound to, if it was used for the same request (IdempotencyConflict if not)."""
    rows = uow.fetch(_BOUND, s=scope, k=key)
    assert len(rows) == 2, 'a key is claimed only with its transfer, and keys are never deleted'
    debit, credit = rows
    if not request.used_for(debit.pop('request_hash')):
        raise errors.IdempotencyConflict()
    del credit['request_hash']
    return Movement(out_entry=LedgerEntry(**debit), in_entry=LedgerEntry(**credit))


def _authorized(caller: Caller, request: MoveRequest, accounts: list[dict[str, Any]]) -> tuple[str, str, str | None]:
    """The source and destination accounts if the caller may move credit between them (403, 422 otherwise), and
    the campaign when the destination is a campaign's account: the database refuses the movement unless that
    campaign is isolated (`ledger_move`, the one place of that rule)."""
    source, destination = accounts
    if request.direction == 'allocation':
        parent, child = source, destination
    else:
        parent, child = destination, source
    if not administers(caller, parent):
        raise errors.Forbidden('Only an administrator of the parent account may move its credit.')
    if child['parent_account_id'] != parent['account_id']:
        raise errors.InvalidHierarchy(
            'Credit is allocated only to a direct child account and reclaimed only from one.'
            if request.direction == 'allocation'
            else 'Credit is reclaimed only from a direct child account.'
        )
    campaign_id = child['owner_id'] if request.direction == 'allocation' and child['owner_type'] == 'campaign' else None
    return source['account_id'], destination['account_id'], campaign_id


def _movement(transfer: ledger.Transfer, notes: str | None, initiator: str) -> Movement:
    def entry(e: ledger.Entry, counter: ledger.Entry) -> LedgerEntry:
        return LedgerEntry(
            id=e.id,
            transfer_id=transfer.id,
            account_id=e.account_id,
            counter_account_id=counter.account_id,
            kind=transfer.kind,
            amount_cents=e.amount_cents,
            balance_after_cents=e.balance_after_cents,
            notes=notes,
            initiator=initiator,
            created_at=transfer.created_at,
        )

    return Movement(out_entry=entry(transfer.debit, transfer.credit), in_entry=entry(transfer.credit, transfer.debit))
