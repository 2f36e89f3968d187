"""A hypothesis state machine moves credit at random through a small hierarchy, valid moves and invalid
ones alike, and compares the database with a model after every step.

Hierarchy per example: the platform, 2 agencies, 2 clients each, and per client one campaign that starts
isolated and one that starts shared; every level starts with some credit. Steps: allocations and reclaims,
mostly between a parent and its child and otherwise between any two accounts, with amounts that are often
too large; budget mode switches, including to an unknown mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from giftcards import db, errors, ledger
from giftcards.allocation import Direction
from giftcards.money import MAX_AMOUNT_CENTS
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests import factories
from tests.ledger_fixtures import balances, move, platform_account, transfer_count

pytestmark = pytest.mark.usefixtures('database_url')

PAIRS = st.sampled_from(['parent and child', 'parent and child', 'any two accounts'])
AMOUNTS = st.one_of(
    st.integers(min_value=1, max_value=50_000),
    st.sampled_from([1, 10_000, MAX_AMOUNT_CENTS]),
    st.integers(min_value=50_001, max_value=MAX_AMOUNT_CENTS),
)


@dataclass
class Account:
    id: str
    level: str  # platform, agency, client, campaign
    parent: str | None
    campaign_id: str | None = None
    budget_mode: str | None = None
    children: list[str] = field(default_factory=list)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[str, Account] = {}
        self.order: list[str] = []
        self.model: dict[str, int] = {}
        self.admin = ''

    @initialize()
    def build_hierarchy(self) -> None:
        with db.owner_connection() as conn:
            self.admin = factories.platform_admin(conn)
        platform = platform_account()
        self._add(Account(platform, 'platform', None))
        for _ in range(2):
            agency = factories.agency()
            self._add(Account(agency['account_id'], 'agency', platform))
            for _ in range(2):
                client = factories.client(agency['id'])
                self._add(Account(client['account_id'], 'client', agency['account_id']))
                factories.fund(30_000, agency['account_id'], client['account_id'])
                for mode in ('isolated', 'shared'):
                    campaign = factories.campaign(client['id'], budget_mode=mode)
                    self._add(Account(campaign['account_id'], 'campaign', client['account_id'], campaign['id'], mode))
                    if mode == 'isolated':
                        factories.fund(20_000, agency['account_id'], client['account_id'], campaign['account_id'])
            factories.fund(50_000, agency['account_id'])
        self.model = dict(zip(self.order, balances(*self.order), strict=True))

    def _add(self, account: Account) -> None:
        self.accounts[account.id] = account
        self.order.append(account.id)
        if account.parent is not None and account.parent in self.accounts:
            self.accounts[account.parent].children.append(account.id)

    # --- what the model predicts -----------------------------------------------------------------------

    def _unlimited(self, account_id: str) -> bool:
        return self.accounts[account_id].level == 'platform'

    def _refusal(self, parent: Account, child: Account, source: Account, cents: int, allocation: bool) -> type | None:
        if child.parent != parent.id:
            return errors.InvalidHierarchy
        if allocation and child.level == 'campaign' and child.budget_mode != 'isolated':
            return errors.InvalidHierarchy
        if not self._unlimited(source.id) and self.model[source.id] < cents:
            return errors.InsufficientCredit
        return None

    def _attempt(
        self, direction: Direction, source: Account, target: Account, cents: int, expected: type | None
    ) -> None:
        before = transfer_count()
        try:
            move(self.admin, direction, source.id, target.id, cents)
        except errors.DomainError as exc:
            assert expected is not None and isinstance(exc, expected), (direction, exc)
            assert transfer_count() == before, 'a refused move wrote a transfer'
            event(f'{direction} refused: {type(exc).__name__}')
            return
        event(f'{direction} accepted')
        assert expected is None, f'{direction} of {cents} from {source.level} to {target.level} was accepted'
        self.model[source.id] -= cents
        self.model[target.id] += cents

    # --- rules -----------------------------------------------------------------------------------------
    # Each move picks a direct parent/child pair (the simplest draw, so also where shrinking goes) or any
    # two accounts; `share` 1-3 makes the amount a share of what the source holds, 0 keeps the drawn one.

    @rule(data=st.data(), pair=PAIRS, cents=AMOUNTS, share=st.integers(min_value=0, max_value=3))
    def allocate(self, data: st.DataObject, pair: str, cents: int, share: int) -> None:
        if pair == 'parent and child':
            holders = [a for a in self.order if self.accounts[a].children and (self._unlimited(a) or self.model[a])]
            source = self.accounts[data.draw(st.sampled_from(holders), label='from')]
            target = self.accounts[data.draw(st.sampled_from(source.children), label='to')]
        else:
            source = self.accounts[data.draw(st.sampled_from(self.order), label='from')]
            target = self.accounts[data.draw(st.sampled_from(self.order), label='to')]
        if share and not self._unlimited(source.id):
            cents = max(1, self.model[source.id] // share)
        self._attempt('allocation', source, target, cents, self._refusal(source, target, source, cents, True))

    @rule(data=st.data(), pair=PAIRS, cents=AMOUNTS, share=st.integers(min_value=0, max_value=3))
    def reclaim(self, data: st.DataObject, pair: str, cents: int, share: int) -> None:
        if pair == 'parent and child':
            children = [a for a in self.order if self.accounts[a].parent]
            source = self.accounts[data.draw(st.sampled_from([a for a in children if self.model[a]] or children))]
            target = self.accounts[source.parent or '']
        else:
            source = self.accounts[data.draw(st.sampled_from(self.order), label='from')]
            target = self.accounts[data.draw(st.sampled_from(self.order), label='to')]
        if share and not self._unlimited(source.id):
            cents = max(1, self.model[source.id] // share)
        self._attempt('reclaim', source, target, cents, self._refusal(target, source, source, cents, False))

    @rule(data=st.data(), mode=st.sampled_from(['shared', 'isolated', 'pooled']))
    def switch_budget_mode(self, data: st.DataObject, mode: str) -> None:
        campaign = self.accounts[data.draw(st.sampled_from([a for a in self.order if self.accounts[a].campaign_id]))]
        before = transfer_count()
        assert campaign.campaign_id is not None

        def work(uow: db.UnitOfWork) -> Any:
            return ledger.switch_budget_mode(uow, campaign.campaign_id or '', mode, initiator=self.admin)

        if mode not in ('shared', 'isolated'):
            with pytest.raises(errors.ValidationFailed):
                db.in_transaction(work)
            assert transfer_count() == before
            return
        transfer = db.in_transaction(work)
        returned = self.model[campaign.id] if campaign.budget_mode == 'isolated' and mode == 'shared' else 0
        assert (transfer.amount_cents if transfer else 0) == returned
        self.model[campaign.parent or ''] += returned
        self.model[campaign.id] -= returned
        campaign.budget_mode = mode

    # --- after every step ------------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        assert dict(zip(self.order, balances(*self.order), strict=True)) == self.model

    @invariant()
    def no_balance_is_negative_but_the_platforms(self) -> None:
        assert all(cents >= 0 for account_id, cents in self.model.items() if self.accounts[account_id].parent)

    @invariant()
    def shared_campaigns_hold_nothing(self) -> None:
        for account in self.accounts.values():
            if account.budget_mode == 'shared':
                assert self.model[account.id] == 0

    @invariant()
    def ledger_invariants_hold(self) -> None:
        report = factories.ledger_check()
        assert report.ok, report.summary()


LedgerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_ledger_state_machine = LedgerMachine.TestCase
