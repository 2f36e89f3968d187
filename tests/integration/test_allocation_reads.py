"""What an allocation reads before its transaction: accounts' owners may be remembered by the process (they never
change), but memberships and a campaign's budget mode are read afresh for every movement."""

from __future__ import annotations

from typing import Any

import pytest
from giftcards import allocation, db, errors, ledger

from tests import factories
from tests.ledger_fixtures import balances


def move(subject: str, source: str, target: str, cents: int, direction: allocation.Direction = 'allocation') -> Any:
    return allocation.move_credit(subject, allocation.MoveRequest(direction, source, target, cents))


def test_a_revoked_admin_moves_nothing_more_once_revoked(owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'])
    move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 1_000)  # the owners are known now

    owner.run('DELETE FROM memberships WHERE subject = :s', s=tree.agency_admin)

    with pytest.raises((errors.NotFound, errors.Forbidden)):
        move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 1_000)
    assert balances(tree.agency['account_id'], tree.client['account_id']) == [9_000, 1_000]


def test_a_campaign_switched_to_shared_refuses_allocations_at_once(owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])
    move(tree.client_admin, tree.client['account_id'], tree.campaign['account_id'], 1_000)

    db.in_transaction(lambda uow: ledger.switch_budget_mode(uow, tree.campaign['id'], 'shared', initiator='test'))

    with pytest.raises(errors.InvalidHierarchy):
        move(tree.client_admin, tree.client['account_id'], tree.campaign['account_id'], 1_000)
    assert balances(tree.client['account_id'], tree.campaign['account_id']) == [10_000, 0]


def test_what_one_scope_could_not_see_of_an_account_is_not_remembered_for_another(owner: Any) -> None:
    """A client admin's scope does not see its agency's account (row-level security), so its read of the client's
    account lacks the agency it hangs under. Remembered for the process, that half row had refused the agency's own
    admin the next allocation to that client (404), as the load benchmark showed."""
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])  # passed down to the client
    factories.fund(10_000, tree.agency['account_id'])
    move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 2_000)  # both accounts known
    move(tree.client_admin, tree.client['account_id'], tree.campaign['account_id'], 1_000)  # read in its scope

    move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 2_000)
    move(tree.agency_admin, tree.client['account_id'], tree.agency['account_id'], 500, 'reclaim')

    assert balances(tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id']) == [
        6_500,
        12_500,
        1_000,
    ]


def test_remembered_owners_are_bounded(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocation, '_KNOWN_OWNERS_LIMIT', 3)
    monkeypatch.setattr(allocation, '_KNOWN_OWNERS', {})
    trees = [factories.hierarchy_tree(owner) for _ in range(3)]
    for tree in trees:
        factories.fund(1_000, tree.agency['account_id'])
        move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 100)
        assert len(allocation._KNOWN_OWNERS) <= 3

    assert allocation._KNOWN_OWNERS  # something is remembered


def test_a_transfer_reads_no_account_table_sequentially_even_when_planned_on_tiny_tables(owner: Any) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(1_000_000, tree.agency['account_id'])
    owner.run('ANALYZE credit_accounts')  # as small as the planner will ever see it
    db.reset_connections()  # plans, including the foreign keys' checks, are made afresh in a new session

    def scans() -> int:
        db.reset_connections()  # a session's statistics are flushed when it ends
        owner.run('SELECT pg_stat_force_next_flush()')
        [[count]] = owner.run("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'credit_accounts'")
        return int(count)

    move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 100)  # owners now remembered
    before = scans()
    for _ in range(20):
        move(tree.agency_admin, tree.agency['account_id'], tree.client['account_id'], 100)

    assert scans() == before
    assert balances(tree.client['account_id']) == [2_100]
