"""One rule each, used by everyone: the price of a card (`card_price_cents`) and "can this campaign still pay for
its cheapest card" (`pause_if_depleted`, migration 0016). Provisioning's commit, the monitor and the client
dashboard's estimate must never disagree about either."""

from __future__ import annotations

from typing import Any

from giftcards import code_administration, dashboards, db, errors, hierarchy, monitor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories
from tests import provisioning_support as ps
from tests.monitor_support import open_alert, run


def status(campaign_id: str) -> str:
    return str(ps.query('SELECT status FROM campaigns WHERE id = CAST(:c AS uuid)', c=campaign_id)[0]['status'])


def monitor_would_pause(campaign_id: str) -> bool:
    """Whether a monitor run would pause the campaign now (decided, then rolled back). The run is held to this
    campaign: the session's other tests leave thousands of others for it to judge."""
    with db.UnitOfWork() as uow:
        return campaign_id in monitor.pause_depleted_campaigns(uow, only=[campaign_id])


def test_a_campaign_that_can_still_buy_a_cheaper_card_of_its_brand_stays_active(owner: Any) -> None:
    # The brand sells $10 and $20 cards; the campaign redeemed one $20 card and has $15 left: enough for a $10 one.
    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    factories.fund(3_500, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    brand = factories.brand(denominations_cents=(1_000, 2_000))
    admin = factories.platform_admin(owner)
    ps.pool(admin, brand['id'], 2_000, 1_900, 1)
    setup = ps.Setup(tree, brand, 2_000, admin)

    result = setup.provision()
    run()

    assert not result.campaign_paused
    assert factories.balance_cents(tree.campaign['account_id']) == 1_500
    assert status(tree.campaign['id']) == 'active'
    assert open_alert('campaign_depleted', tree.campaign['id']) is None
    campaigns = dashboards.client_dashboard(tree.client_admin, tree.client['id']).campaigns
    (shown,) = [c for c in campaigns if c.id == tree.campaign['id']]
    assert shown.cheapest_card_cents == 1_000
    assert shown.estimated_redemptions_remaining == 1


def test_the_price_list_is_what_every_caller_charges_and_counts(owner: Any) -> None:
    price = hierarchy.Price(1_000, agency_price_cents=1_050, client_price_cents=1_100)
    s = ps.setup(owner, funds_cents=3_000, denomination_cents=1_000, prices=(price,))
    ps.pool(s.admin, s.brand['id'], 1_000, 900, 3)

    charged = [s.provision().redemption.amount_charged_cents for _ in range(2)]  # 30.00 -> 8.00

    assert charged == [1_100, 1_100]
    assert (
        db.in_transaction(lambda uow: uow.value('SELECT card_price_cents(CAST(:b AS uuid), 1000)', b=s.brand['id']))
        == 1_100
    )
    assert status(s.campaign_id) == 'paused'  # 8.00 left: less than the cheapest card, 11.00


denominations = st.lists(st.sampled_from([500, 1_000, 2_000, 2_500, 5_000]), min_size=1, max_size=3, unique=True)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    offered = draw(denominations)
    client_prices = {d: draw(st.one_of(st.none(), st.integers(d, d + 600))) for d in offered}
    wanted = draw(st.lists(st.sampled_from(offered), min_size=1, max_size=4))
    first_price = client_prices[wanted[0]] or wanted[0]
    return {
        'offered': offered,
        'client_prices': client_prices,
        'funds': first_price + draw(st.integers(0, 12_000)),  # enough for the first card: provisioning charges
        'wanted': wanted,
        'other_brand_code': draw(st.booleans()),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_provisioning_and_the_monitor_pause_exactly_the_same_campaigns(owner: Any, scenario: dict[str, Any]) -> None:
    prices = tuple(
        hierarchy.Price(d, client_price_cents=p) for d, p in scenario['client_prices'].items() if p is not None
    )
    tree = factories.hierarchy_tree(owner, budget_mode='isolated')
    if scenario['funds']:
        fund = (tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
        factories.fund(scenario['funds'], *fund)
    brand = factories.brand(denominations_cents=tuple(scenario['offered']), prices=prices)
    admin = factories.platform_admin(owner)
    for denomination in scenario['offered']:
        ps.pool(admin, brand['id'], denomination, denomination // 2, len(scenario['wanted']))
    if scenario['other_brand_code']:  # an issued code of another, cheaper brand also counts as what it deals in
        cheap = factories.brand(denominations_cents=(100,))
        code_administration.issue_codes(tree.client_admin, tree.campaign['id'], cheap['id'], 100, 1)

    for denomination in scenario['wanted']:
        if status(tree.campaign['id']) != 'active':
            break
        try:
            ps.Setup(tree, brand, denomination, admin).provision()
        except errors.InsufficientCredit:
            break  # refused: nothing changed since the last charge's commit applied the rule
    # The state is the one the last charge's commit left: provisioning has applied the rule there.
    assert ps.query('SELECT count(*) AS n FROM redemptions WHERE campaign_id = CAST(:c AS uuid)',
                    c=tree.campaign['id'])[0]['n'] >= 1  # fmt: skip

    paused_by_provisioning = status(tree.campaign['id']) == 'paused'
    if paused_by_provisioning:
        owner.run("UPDATE campaigns SET status = 'active', paused_reason = NULL WHERE id = CAST(:c AS uuid)",
                  c=tree.campaign['id'])  # fmt: skip
    assert monitor_would_pause(tree.campaign['id']) == paused_by_provisioning
