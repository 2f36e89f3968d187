"""Credit movements racing each other on real parallel connections (one per thread, released together)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from giftcards import db, errors, ledger
from giftcards.allocation import Direction, MoveOutcome

from tests import factories
from tests.concurrency_support import race
from tests.ledger_fixtures import balances, entries_of, ledger_stays_consistent, move

__all__ = ['ledger_stays_consistent']
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('ledger_stays_consistent')]

T = TypeVar('T')


@pytest.fixture
def tree(owner: Any) -> factories.Tree:
    return factories.hierarchy_tree(owner)


def test_thirty_concurrent_allocations_of_100_from_1000_let_exactly_ten_through(
    owner: Any, tree: factories.Tree
) -> None:
    agency = tree.agency['account_id']
    clients = [tree.client['account_id']] + [factories.client(tree.agency['id'])['account_id'] for _ in range(2)]
    factories.fund(100_000, agency)

    def allocate_100(target: str) -> Callable[[], MoveOutcome]:
        return lambda: move(tree.agency_admin, 'allocation', agency, target, 10_000)

    results = race([allocate_100(clients[i % 3]) for i in range(30)])

    succeeded = [r for r in results if isinstance(r, MoveOutcome)]
    refused = [r for r in results if isinstance(r, errors.InsufficientCredit)]
    assert (len(succeeded), len(refused)) == (10, 20), [r for r in results if isinstance(r, BaseException)][:3]
    assert balances(agency) == [0]
    assert sum(balances(*clients)) == 100_000
    assert sorted(r.movement.out_entry.balance_after_cents for r in succeeded) == [10_000 * n for n in range(10)]
    assert len(entries_of(agency)) == 1 + 10


def test_opposite_transfers_between_two_accounts_never_deadlock(tree: factories.Tree) -> None:
    # transfer_credit itself, without the retry of in_transaction: only its lock order prevents deadlocks.
    agency, client = tree.agency['account_id'], tree.client['account_id']
    factories.fund(100_000, agency, client)
    factories.fund(100_000, agency)
    rounds = 150

    def shuttle(source: str, target: str) -> int:
        for _ in range(rounds):
            with db.UnitOfWork() as uow:
                ledger.transfer_credit(uow, source, target, 100, 'allocation', initiator='test')
                uow.commit()
        return rounds

    results = race([lambda: shuttle(agency, client), lambda: shuttle(client, agency)])

    assert results == [rounds, rounds]
    assert balances(agency, client) == [100_000, 100_000]


def test_allocations_and_reclaims_in_opposite_directions_all_succeed(tree: factories.Tree) -> None:
    agency, client = tree.agency['account_id'], tree.client['account_id']
    factories.fund(50_000, agency, client)
    factories.fund(50_000, agency)

    def repeat(direction: Direction, source: str, target: str) -> int:
        for _ in range(100):
            move(tree.agency_admin, direction, source, target, 100)
        return 100

    results = race([lambda: repeat('allocation', agency, client), lambda: repeat('reclaim', client, agency)] * 2)

    assert results == [100] * 4
    assert balances(agency, client) == [50_000, 50_000]


def test_concurrent_requests_with_one_idempotency_key_move_credit_once(tree: factories.Tree) -> None:
    agency, client = tree.agency['account_id'], tree.client['account_id']
    # Exactly enough for one: a second movement would be refused, so every other answer must be a replay.
    factories.fund(10_000, agency)

    results = race(
        [lambda: move(tree.agency_admin, 'allocation', agency, client, 10_000, key='one-click') for _ in range(12)]
    )

    assert all(isinstance(r, MoveOutcome) for r in results), [r for r in results if isinstance(r, BaseException)]
    outcomes = [r for r in results if isinstance(r, MoveOutcome)]
    assert sum(not o.replayed for o in outcomes) == 1
    assert all(o.movement == outcomes[0].movement for o in outcomes)
    assert balances(agency, client) == [0, 10_000]
    assert len(entries_of(client)) == 1


def test_an_allocation_racing_a_switch_to_shared_leaves_no_credit_in_the_shared_campaign(
    tree: factories.Tree,
) -> None:
    client, campaign = tree.client['account_id'], tree.campaign['account_id']
    factories.fund(10_000, tree.agency['account_id'], client)
    switched, allocation_waits = threading.Event(), threading.Event()

    def switch_to_shared() -> None:
        # Hold the switch open until the allocation, which read the mode 'isolated', waits for the account.
        with db.UnitOfWork() as uow:
            ledger.switch_budget_mode(uow, tree.campaign['id'], 'shared', initiator='test')
            switched.set()
            assert allocation_waits.wait(30)
            uow.commit()

    def allocate_after_the_switch_started() -> MoveOutcome:
        assert switched.wait(30)
        return move(tree.client_admin, 'allocation', client, campaign, 5_000)

    def watch_for_lock_wait() -> None:
        assert switched.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = db.in_transaction(
                lambda uow: uow.value(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    ' AND datname = current_database()'
                ),
                role='owner',
            )
            if waiting:
                allocation_waits.set()
                return
            time.sleep(0.01)

    switch_result, allocation_result, _ = race(
        [switch_to_shared, allocate_after_the_switch_started, watch_for_lock_wait]
    )

    assert switch_result is None
    assert isinstance(allocation_result, errors.InvalidHierarchy), allocation_result
    assert balances(client, campaign) == [10_000, 0]
