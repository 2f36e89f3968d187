"""Depleted campaigns: the monitor pauses every active campaign that can no longer pay for its cheapest card, by the
rule provisioning uses (the database's `pause_if_depleted`), and keeps an alert open while it stays paused for that."""

from __future__ import annotations

from typing import Any

import pytest
from giftcards import db, hierarchy, ledger

from tests import factories
from tests import provisioning_support as ps
from tests.monitor_support import open_alert, run


def campaign_state(campaign_id: str) -> tuple[str, str | None]:
    row = ps.query('SELECT status, paused_reason FROM campaigns WHERE id = CAST(:id AS uuid)', id=campaign_id)[0]
    return row['status'], row['paused_reason']


def reclaim(campaign: dict[str, Any], client: dict[str, Any], cents: int) -> None:
    db.in_transaction(
        lambda uow: ledger.transfer_credit(
            uow, campaign['account_id'], client['account_id'], cents, 'reclaim', initiator='test'
        )
    )


def provisioning_would_pause(campaign_id: str) -> bool:
    """What `pause_if_depleted` decides for the campaign now (rolled back)."""
    with db.UnitOfWork() as uow:
        return bool(uow.value("SELECT pause_if_depleted(CAST(:c AS uuid), 'test', NULL)", c=campaign_id))


def test_an_active_campaign_without_credit_is_paused_and_alerted(owner):
    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    factories.brand()  # the catalogue is not empty: there is a card the campaign cannot pay for

    answer = run()

    assert campaign_state(tree.campaign['id']) == ('paused', 'depleted')
    assert tree.campaign['id'] in answer['campaigns_paused']
    alert = open_alert('campaign_depleted', tree.campaign['id'])
    assert (alert['severity'], alert['entity_type']) == ('warning', 'campaign')
    assert answer['breakdown']['campaigns'] >= 1
    audit = ps.query(
        "SELECT actor, details FROM audit_events WHERE action = 'campaign.paused' AND entity_id = CAST(:id AS uuid)",
        id=tree.campaign['id'],
    )
    assert [(a['actor'], a['details']['reason']) for a in audit] == [('monitor', 'depleted')]


def test_a_shared_campaign_is_paused_when_a_sibling_spent_the_clients_last_credit(owner):
    s = ps.setup(owner, budget_mode='shared', funds_cents=5_500)
    sibling = factories.campaign(s.tree.client['id'], budget_mode='shared')
    ps.pool(s.admin, s.brand['id'], 2500, 2300, 2)
    s.provision(campaign_id=sibling['id'])  # $55 -> $30
    s.provision()  # $30 -> $5: provisioning pauses this campaign itself

    assert campaign_state(s.campaign_id) == ('paused', 'depleted')
    assert campaign_state(sibling['id']) == ('active', None)
    run()

    assert campaign_state(sibling['id']) == ('paused', 'depleted')
    assert open_alert('campaign_depleted', sibling['id']) is not None
    assert open_alert('campaign_depleted', s.campaign_id) is not None  # paused by provisioning, alerted here


def test_a_campaign_that_can_still_pay_for_its_cheapest_card_stays_active(owner):
    s = ps.setup(owner, funds_cents=10_000, prices=(hierarchy.Price(2500, None, 2000),))
    ps.pool(s.admin, s.brand['id'], 2500, 2300, 1)
    s.provision()  # charged $20 (client price): $80 left
    reclaim(s.tree.campaign, s.tree.client, 6_000)  # $20 left: exactly one more card at the client price

    run()

    assert campaign_state(s.campaign_id) == ('active', None)
    assert open_alert('campaign_depleted', s.campaign_id) is None


def test_the_monitor_decides_exactly_as_provisioning_would(owner):
    priced = ps.setup(owner, funds_cents=10_000, prices=(hierarchy.Price(2500, None, 2000),))
    priced_enough = ps.setup(owner, funds_cents=10_000, prices=(hierarchy.Price(2500, None, 2000),))
    plain = ps.setup(owner, funds_cents=10_000)
    for s in (priced, priced_enough, plain):
        ps.pool(s.admin, s.brand['id'], 2500, 2300, 1)
        s.provision()
    reclaim(priced.tree.campaign, priced.tree.client, 6_100)  # $19 left, its cheapest card costs $20
    reclaim(priced_enough.tree.campaign, priced_enough.tree.client, 6_000)  # $20 left: one more card
    reclaim(plain.tree.campaign, plain.tree.client, 5_500)  # $20 left, its cheapest card costs $25
    rich = ps.setup(owner, funds_cents=1_000_000)  # no redemptions: judged against the whole catalogue
    empty = ps.setup(owner, funds_cents=0)
    manual = ps.setup(owner, funds_cents=0)
    hierarchy.update_campaign(manual.tree.client_admin, manual.campaign_id, status='paused')
    ended = ps.setup(owner, funds_cents=0)
    hierarchy.update_campaign(ended.tree.client_admin, ended.campaign_id, status='ended')
    cases = {s.campaign_id: s for s in (priced, priced_enough, plain, rich, empty, manual, ended)}
    expected = {cid for cid in cases if provisioning_would_pause(cid)}

    answer = run()

    assert expected == {priced.campaign_id, plain.campaign_id, empty.campaign_id}
    assert set(answer['campaigns_paused']) & set(cases) == expected
    assert campaign_state(manual.campaign_id) == ('paused', 'manual')
    assert campaign_state(ended.campaign_id) == ('ended', None)
    assert open_alert('campaign_depleted', manual.campaign_id) is None


def test_resuming_a_funded_campaign_resolves_its_alert(owner):
    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    factories.brand()
    run()
    assert open_alert('campaign_depleted', tree.campaign['id']) is not None
    factories.fund(1_000_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    hierarchy.update_campaign(tree.client_admin, tree.campaign['id'], status='active')

    run()

    assert campaign_state(tree.campaign['id']) == ('active', None)
    assert open_alert('campaign_depleted', tree.campaign['id']) is None


@pytest.mark.parametrize('budget_mode', ['isolated', 'shared'])
def test_the_paying_account_decides(owner, budget_mode):
    tree = factories.hierarchy_tree(owner, budget_mode=budget_mode)
    factories.brand()
    accounts = [tree.agency['account_id'], tree.client['account_id']]
    factories.fund(1_000_000, *accounts)  # the client is rich; an isolated campaign still has nothing

    run()

    expected = ('paused', 'depleted') if budget_mode == 'isolated' else ('active', None)
    assert campaign_state(tree.campaign['id']) == expected
