"""Provisioning on real PostgreSQL: the CSV path, prices and profit, the code as idempotency key, credit, campaign
state and depletion, authorization, issued codes, and what logs may show."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from giftcards import card_secrets, code_administration, codes, db, errors, hierarchy, ledger, provisioning
from giftcards.observability import logger

from tests import factories, round_trips
from tests import provisioning_support as ps


def campaign_row(campaign_id: str) -> dict[str, Any]:
    return ps.query('SELECT status, paused_reason FROM campaigns WHERE id = CAST(:id AS uuid)', id=campaign_id)[0]


def available_cards(pool_id: str) -> int:
    return int(
        ps.query('SELECT count(*) AS n FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool_id)[0]['n']
    )


def reveals(redemption_id: str) -> list[dict[str, Any]]:
    return ps.query(
        'SELECT channel, subject, host(source_ip) AS ip, user_agent FROM card_reveals'
        ' WHERE redemption_id = CAST(:r AS uuid) ORDER BY id',
        r=redemption_id,
    )


# --- the CSV path ---------------------------------------------------------------------------------------


def test_csv_card_charges_the_paying_account_and_records_the_redemption(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)

    result = s.provision(
        f'ABC-{ps.new_code()}-XYZ', recipient_id='r-1', delivery_method='email', delivery_address='a@example.com'
    )

    assert result.redemption.status == 'fulfilled'
    assert result.redemption.source == 'csv'
    assert result.card.card_code.startswith('CARD-')
    assert result.credit_remaining_cents == 7_500 == factories.balance_cents(s.paying_account)
    assert available_cards(pool) == 2
    row = ps.query(
        'SELECT status, source, amount_charged_cents, cost_basis_cents, agency_price_cents, code_last4,'
        ' recipient_id, delivery_method, delivery_address, host(source_ip) AS ip, user_agent,'
        ' redemption_code_hash, vendor_key FROM redemptions WHERE id = CAST(:id AS uuid)',
        id=result.redemption.id,
    )[0]
    assert (row['status'], row['source'], row['amount_charged_cents'], row['cost_basis_cents']) == (
        'fulfilled',
        'csv',
        2500,
        2350,
    )
    assert row['agency_price_cents'] is None and row['vendor_key'] is None
    assert (row['code_last4'], row['recipient_id'], row['delivery_method'], row['delivery_address']) == (
        '-XYZ',
        'r-1',
        'email',
        'a@example.com',
    )
    assert (row['ip'], row['user_agent']) == ('198.51.100.4', 'pytest')
    assert bytes(row['redemption_code_hash']) != b'ABC-123-XYZ' and len(row['redemption_code_hash']) == 32
    assert reveals(result.redemption.id) == [
        {'channel': 'api', 'subject': s.tree.integration, 'ip': '198.51.100.4', 'user_agent': 'pytest'}
    ]
    assert factories.ledger_check().ok


def test_a_csv_provision_is_two_round_trips_and_the_next_one_for_the_same_card_one(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's first provision for a campaign, brand and denomination reads (the campaign, the existing redemption
    and the caller's memberships), then calls the database once to claim the card, write the redemption and charge,
    committed by the server: no BEGIN, no COMMIT. The next one only calls, naming what the read established, which
    the call checks (the warm path, migration 0028)."""
    s = ps.setup(owner, budget_mode='shared', funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    ps.pool(s.admin, s.brand['id'], 5000, 4700, 2)
    with round_trips.recorded(monkeypatch) as sent:
        s.provision()  # statements prepared on this connection
        sent.clear()
        first = s.provision(f'NOT-ISSUED-{ps.new_code()}', denomination_cents=5000)  # no shape of ours: no lookup
        read_and_call = [(r.what, r.words[:28]) for r in sent]
        sent.clear()
        second = s.provision(f'NOT-ISSUED-{ps.new_code()}', denomination_cents=5000)

    assert first.redemption.status == second.redemption.status == 'fulfilled'
    assert read_and_call == [
        ('execute', 'SELECT ctx.*, current_settin'),
        ('execute', 'SELECT * FROM provision_card'),
    ], sent
    assert [(r.what, r.words[:28]) for r in sent] == [('execute', 'SELECT * FROM provision_card')], sent
    assert second.credit_remaining_cents == 20_000 - 2_500 - 5_000 - 5_000
    assert factories.ledger_check().ok


def test_a_code_of_our_shape_is_looked_up_in_one_round_trip_before_the_call(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's own code that could be one this system issued is looked up first (an issued code is checked against
    what it was issued for): one statement that enters the caller's scope and reads (migration 0029), not a
    transaction of BEGIN, read and COMMIT; then the warm path's one call."""
    s = ps.setup(owner, budget_mode='shared', funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
    with round_trips.recorded(monkeypatch) as sent:
        s.provision(codes.generate_code())  # statements prepared; the warm path learnt
        sent.clear()
        result = s.provision(codes.generate_code())

    assert result.redemption.status == 'fulfilled'
    assert [(r.what, r.words[:28]) for r in sent] == [
        ('execute', 'SELECT * FROM find_redemptio'),
        ('execute', 'SELECT * FROM provision_card'),
    ], sent


def test_a_shared_campaign_draws_on_its_client(owner: Any) -> None:
    s = ps.setup(owner, budget_mode='shared', funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)

    result = s.provision()

    assert factories.balance_cents(s.tree.client['account_id']) == 7_500 == result.credit_remaining_cents
    assert factories.balance_cents(s.tree.campaign['account_id']) == 0


def spend_credited_by(redemption_id: str) -> str:
    """The system name of the account the redemption's charge was credited to."""
    return str(
        ps.query(
            'SELECT a.system_name FROM redemptions r JOIN credit_transfers t ON t.id = r.charge_transfer_id'
            ' JOIN credit_accounts a ON a.id = t.to_account_id WHERE r.id = CAST(:id AS uuid)',
            id=redemption_id,
        )[0]['system_name']
    )


def test_every_spend_account_name_is_a_system_account(database_url: str) -> None:
    names = {ledger.spend_account_name(shard) for shard in range(ledger.SPEND_SHARDS)}
    stored = ps.query("SELECT system_name FROM credit_accounts WHERE owner_type = 'system'")

    assert len(names) == ledger.SPEND_SHARDS
    assert names <= {r['system_name'] for r in stored}


def test_charges_are_credited_to_the_chosen_spend_account(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    monkeypatch.setattr(ledger, 'spend_account_name', lambda: 'spend:7')

    result = s.provision()

    assert spend_credited_by(result.redemption.id) == 'spend:7'
    assert factories.ledger_check().ok


def test_charges_spread_over_the_spend_accounts(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=100_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 20)

    credited = {spend_credited_by(s.provision().redemption.id) for _ in range(20)}

    # 20 charges all on one of 32 accounts, if the choice were uniform: a chance of 32 ** -19.
    assert len(credited) > 1
    assert all(name == 'spend' or name.startswith('spend:') for name in credited)
    assert factories.ledger_check().ok


def test_the_price_list_sets_the_charge_and_the_agency_price(owner: Any) -> None:
    price = hierarchy.Price(2500, agency_price_cents=2600, client_price_cents=2750)
    s = ps.setup(owner, funds_cents=10_000, prices=(price,))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)

    result = s.provision()

    assert result.redemption.amount_charged_cents == 2750
    assert result.credit_remaining_cents == 7_250
    row = ps.query(
        'SELECT amount_charged_cents, cost_basis_cents, agency_price_cents FROM redemptions'
        ' WHERE id = CAST(:id AS uuid)',
        id=result.redemption.id,
    )[0]
    assert row == {'amount_charged_cents': 2750, 'cost_basis_cents': 2350, 'agency_price_cents': 2600}


def test_every_role_that_may_provision_can(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)

    for subject in (s.tree.integration, s.tree.client_admin, s.tree.platform_admin):
        assert s.provision(subject=subject).redemption.status == 'fulfilled'


# --- the code is the idempotency key ---------------------------------------------------------------------


def test_the_same_code_again_replays_the_same_card_without_a_second_charge(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
    code = ps.new_code()
    first = s.provision(code)

    again = s.provision(code, subject=s.tree.client_admin)

    assert again.replayed and not first.replayed
    assert again.card.card_code == first.card.card_code
    assert again.redemption == first.redemption
    assert again.credit_remaining_cents == first.credit_remaining_cents == 7_500
    assert factories.balance_cents(s.paying_account) == 7_500
    assert available_cards(pool) == 2
    assert [r['subject'] for r in reveals(first.redemption.id)] == [s.tree.integration, s.tree.client_admin]


def test_a_replay_still_answers_after_the_campaign_was_paused(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    code = ps.new_code()
    first = s.provision(code)
    hierarchy.update_campaign(s.tree.client_admin, s.campaign_id, status='paused')

    assert s.provision(code).card.card_code == first.card.card_code


@pytest.mark.parametrize('change', ['brand', 'denomination', 'campaign'])
def test_the_same_code_for_something_else_is_a_conflict_and_charges_nothing(owner: Any, change: str) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    ps.pool(s.admin, s.brand['id'], 5000, 4700, 1)
    code = ps.new_code()
    s.provision(code)
    other_campaign = factories.campaign(s.tree.client['id'], budget_mode='shared')
    factories.fund(10_000, s.tree.agency['account_id'], s.tree.client['account_id'])
    changes = {
        'brand': {'brand_id': factories.brand()['id']},
        'denomination': {'denomination_cents': 5000},
        'campaign': {'campaign_id': other_campaign['id']},
    }[change]
    before = [factories.balance_cents(s.paying_account), factories.balance_cents(s.tree.client['account_id'])]

    with pytest.raises(errors.Conflict) as caught:
        s.provision(code, **changes)

    assert caught.value.code == 'redemption_code_conflict'
    assert [factories.balance_cents(s.paying_account), factories.balance_cents(s.tree.client['account_id'])] == before


def test_codes_differing_only_in_case_are_different_keys(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)

    code = ps.new_code()
    upper, lower = s.provision(code), s.provision(code.lower())

    assert upper.redemption.id != lower.redemption.id and not lower.replayed


def test_two_clients_may_use_the_same_code_each_for_its_own_card_and_charge(owner: Any) -> None:
    a, b = ps.setup(owner, funds_cents=10_000), ps.setup(owner, funds_cents=10_000, denomination_cents=5000)
    ps.pool(a.admin, a.brand['id'], 2500, 2350, 1)
    ps.pool(b.admin, b.brand['id'], 5000, 4700, 1)
    code = ps.new_code()
    first_a = a.provision(code)

    # Another brand and denomination: no conflict, and nothing of client A's redemption in B's answer.
    first_b = b.provision(code)

    assert not first_b.replayed
    assert first_b.redemption.id != first_a.redemption.id
    assert first_b.card.card_code != first_a.card.card_code
    assert (first_b.redemption.campaign_id, first_b.redemption.denomination_cents) == (b.campaign_id, 5000)
    assert [factories.balance_cents(a.paying_account), factories.balance_cents(b.paying_account)] == [7_500, 5_000]


def test_each_client_reusing_a_code_another_client_also_used_replays_its_own(owner: Any) -> None:
    a, b = ps.setup(owner, funds_cents=10_000), ps.setup(owner, funds_cents=10_000)
    ps.pool(a.admin, a.brand['id'], 2500, 2350, 2)
    ps.pool(b.admin, b.brand['id'], 2500, 2350, 2)
    code = ps.new_code()
    first_a, first_b = a.provision(code), b.provision(code)

    again_a, again_b = a.provision(code, subject=a.tree.client_admin), b.provision(code)

    assert again_a.replayed and again_a.redemption == first_a.redemption
    assert again_a.card.card_code == first_a.card.card_code
    assert again_b.replayed and again_b.redemption == first_b.redemption
    assert again_b.card.card_code == first_b.card.card_code
    assert [factories.balance_cents(a.paying_account), factories.balance_cents(b.paying_account)] == [7_500, 7_500]
    assert factories.ledger_check().ok


@pytest.mark.parametrize('statement', ['_CONTEXT', '_FIND'])
def test_a_codes_redemption_is_found_by_client_and_hash_in_the_unique_index(owner: Any, statement: str) -> None:
    """The reads that look for the code's redemption descend the unique index by the hash, its leading column, and
    check the client on the row found (the path exists whatever the planner would choose on a table this small, so
    sequential scans are off). With the client first, the same plan would read the whole index."""
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    code = ps.new_code()
    s.provision(code)
    params = {'campaign': s.campaign_id, 'brand': s.brand['id'], 'denomination': 2500, 'hash': codes.code_hash(code)}
    sql = context_query(owner) if statement == '_CONTEXT' else getattr(provisioning, statement)
    owner.run('SET enable_seqscan = off')
    try:
        [[plan]] = owner.run(f'EXPLAIN (FORMAT JSON) {sql}', **params)
    finally:
        owner.run('RESET enable_seqscan')

    scans = [n for n in plan_nodes(plan[0]['Plan']) if n.get('Relation Name') == 'redemptions']
    assert [(n['Node Type'], n.get('Index Name')) for n in scans] == [('Index Scan', 'redemptions_code_hash_key')]
    assert 'redemption_code_hash =' in scans[0]['Index Cond']
    assert owner.run(
        "SELECT pg_get_indexdef('redemptions_code_hash_key'::regclass, 1, true),"
        " pg_get_indexdef('redemptions_code_hash_key'::regclass, 2, true)"
    ) == [['redemption_code_hash', 'client_id']]


def context_query(owner: Any) -> str:
    """The query provision_context runs (migration 0022), with its parameters named as `_FIND` names them."""
    [[body]] = owner.run("SELECT prosrc FROM pg_proc WHERE proname = 'provision_context'")
    match = re.search(r'RETURN QUERY\s+(.*?);', body, re.S)
    assert match is not None, 'provision_context no longer reads with RETURN QUERY'
    names = {
        'p_campaign': 'CAST(:campaign AS uuid)',
        'p_brand': 'CAST(:brand AS uuid)',
        'p_denomination': 'CAST(:denomination AS bigint)',
        'p_code_hash': 'CAST(:hash AS bytea)',
        'v_memberships': 'NULL::jsonb',
    }
    return re.sub(r'\b(p_campaign|p_brand|p_denomination|p_code_hash|v_memberships)\b', lambda m: names[m[1]], match[1])


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get('Plans', []) for node in plan_nodes(child))]


def test_a_code_is_unique_across_the_campaigns_of_one_client(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10_000, budget_mode='shared')
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    code = ps.new_code()
    s.provision(code)
    sibling = factories.campaign(s.tree.client['id'], budget_mode='shared')

    with pytest.raises(errors.Conflict) as caught:
        s.provision(code, campaign_id=sibling['id'])

    assert caught.value.code == 'redemption_code_conflict'
    assert factories.balance_cents(s.paying_account) == 7_500


# --- credit, campaign state, depletion -------------------------------------------------------------------


def test_insufficient_credit_charges_nothing_and_uses_no_card(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=2_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)

    with pytest.raises(errors.InsufficientCredit):
        s.provision()

    assert factories.balance_cents(s.paying_account) == 2_000
    assert available_cards(pool) == 1
    assert ps.redemptions_of(s.campaign_id) == []


def test_a_card_failing_its_integrity_check_is_raised_as_a_critical_alert(owner: Any) -> None:
    """The card is decrypted once the call that claimed it and charged for it has committed. A ciphertext that does
    not authenticate (altered in the database) is an incident: the answer is 500 card_integrity_error, a critical
    alert names the card and the redemption, and what committed stands (nothing may turn a fulfilled redemption
    back); the same code answers the same refusal, and charges nothing more."""
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    owner.run(  # flip the bits of one byte of the stored code's ciphertext
        'UPDATE cards SET code_sealed = set_byte(code_sealed, 20, get_byte(code_sealed, 20) # 255)'
        ' WHERE pool_id = CAST(:p AS uuid)',
        p=pool,
    )
    [[bad]] = owner.run('SELECT id::text FROM cards WHERE pool_id = CAST(:p AS uuid)', p=pool)
    code = f'NOT-ISSUED-{ps.new_code()}'

    with pytest.raises(card_secrets.CardIntegrityError):
        s.provision(code)
    with pytest.raises(card_secrets.CardIntegrityError):
        s.provision(code)

    [redemption] = ps.redemptions_of(s.campaign_id)
    assert (redemption['status'], redemption['card_id']) == ('fulfilled', bad)
    assert factories.balance_cents(s.paying_account) == 10_000 - 2_500
    [[alerts]] = owner.run(
        "SELECT count(*) FROM system_alerts WHERE type = 'card_integrity' AND entity_id = CAST(:c AS uuid)"
        " AND severity = 'critical' AND details->>'redemption_id' = :r",
        c=bad,
        r=redemption['id'],
    )
    assert alerts == 1
    assert factories.ledger_check().ok


@pytest.mark.parametrize('status', ['paused', 'ended'])
def test_a_campaign_that_is_not_active_provisions_nothing(owner: Any, status: str) -> None:
    s = ps.setup(owner)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    hierarchy.update_campaign(s.tree.client_admin, s.campaign_id, status=status)  # type: ignore[arg-type]

    with pytest.raises(errors.CampaignNotActive):
        s.provision()

    assert available_cards(pool) == 1


def test_the_charge_that_empties_the_campaign_pauses_it_and_says_so(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=6_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)

    first, second = s.provision(), s.provision()

    assert not first.campaign_paused
    assert second.campaign_paused and second.credit_remaining_cents == 1_000
    assert campaign_row(s.campaign_id) == {'status': 'paused', 'paused_reason': 'depleted'}
    with pytest.raises(errors.CampaignNotActive):
        s.provision()
    audit = ps.query(
        "SELECT actor, details FROM audit_events WHERE entity_id = CAST(:c AS uuid) AND action = 'campaign.paused'",
        c=s.campaign_id,
    )
    assert audit[0]['actor'] == 'provisioning' and audit[0]['details']['reason'] == 'depleted'
    assert audit[0]['details']['redemption_id'] == second.redemption.id


def test_a_campaign_that_can_still_buy_its_cheapest_card_stays_active(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=7_500)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    ps.pool(s.admin, s.brand['id'], 5000, 4700, 1)

    result = s.provision(denomination_cents=5000)  # leaves 25.00: the brand's 25.00 card is still affordable

    assert not result.campaign_paused
    assert campaign_row(s.campaign_id)['status'] == 'active'


def test_pause_if_depleted_pauses_only_a_campaign_that_cannot_pay_for_its_cheapest_card(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=5_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    s.provision()  # leaves 25.00: exactly one more card

    def check() -> bool:
        return bool(
            db.in_transaction(
                lambda uow: uow.value("SELECT pause_if_depleted(CAST(:c AS uuid), 'test', NULL)", c=s.campaign_id)
            )
        )

    assert check() is False
    db.in_transaction(
        lambda uow: ledger.transfer_credit(
            uow, s.paying_account, s.tree.client['account_id'], 1_000, 'reclaim', initiator='test'
        )
    )

    assert check() is True
    assert campaign_row(s.campaign_id) == {'status': 'paused', 'paused_reason': 'depleted'}
    assert check() is False  # already paused


def test_the_cheapest_card_counts_the_price_list(owner: Any) -> None:
    price = hierarchy.Price(2500, client_price_cents=2750)
    s = ps.setup(owner, funds_cents=5_000, prices=(price,))
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)

    result = s.provision()  # 50.00 - 27.50 = 22.50 < 27.50

    assert result.campaign_paused
    cheapest = db.in_transaction(
        lambda uow: uow.value('SELECT campaign_min_price_cents(CAST(:c AS uuid), NULL)', c=s.campaign_id)
    )
    assert cheapest == 2750


# --- authorization and validation ------------------------------------------------------------------------


def nothing_was_written(s: ps.Setup, pool: str, funds_cents: int) -> None:
    """A refused provision leaves no trace: the card is in stock again, no redemption, no charge."""
    assert available_cards(pool) == 1
    assert ps.redemptions_of(s.campaign_id) == []
    assert factories.balance_cents(s.paying_account) == funds_cents


def test_an_agency_admin_sees_the_campaign_but_may_not_provision(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    with pytest.raises(errors.Forbidden):
        s.provision(subject=s.tree.agency_admin)
    nothing_was_written(s, pool, 10_000)


@pytest.mark.parametrize('who', ['stranger', 'other_client_admin', 'other_integration'])
def test_a_caller_outside_the_client_cannot_see_the_campaign(owner: Any, who: str) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    other = factories.client(s.tree.agency['id'])
    subject = {
        'stranger': factories.stranger(),
        'other_client_admin': factories.client_admin(owner, other['id']),
        'other_integration': factories.integration(owner, other['id']),
    }[who]
    with pytest.raises(errors.NotFound):
        s.provision(subject=subject)
    nothing_was_written(s, pool, 10_000)


@pytest.mark.parametrize(
    ('changes', 'error'),
    [
        ({'campaign_id': '5d0c3a43-4e0c-4a43-9d3e-2d7e5a3c0c11'}, errors.NotFound),
        ({'campaign_id': 'not-a-uuid'}, errors.NotFound),
        ({'brand_id': '5d0c3a43-4e0c-4a43-9d3e-2d7e5a3c0c11'}, errors.NotFound),
        ({'denomination_cents': 1000}, errors.ValidationFailed),
        ({'redemption_code': 'AB1'}, errors.ValidationFailed),
        ({'redemption_code': 'ABC_123'}, errors.ValidationFailed),
        ({'redemption_code': 'A' * 65}, errors.ValidationFailed),
        ({'recipient_id': 'x' * 201}, errors.ValidationFailed),
    ],
)
def test_bad_requests_are_refused_before_anything_is_charged(owner: Any, changes: dict[str, Any], error: type) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    with pytest.raises(error):
        s.provision(**{'redemption_code': ps.new_code(), **changes})
    assert factories.balance_cents(s.paying_account) == 10_000


def test_without_a_subject_only_an_issued_code_authorizes(owner: Any) -> None:
    s = ps.setup(owner)
    with pytest.raises(errors.Unauthorized):
        provisioning.provision_gift_card(s.request(), subject=None)


# --- codes this system issued ----------------------------------------------------------------------------


def issue(s: ps.Setup, denomination_cents: int | None = None) -> str:
    batch = db.in_transaction(
        lambda uow: code_administration.insert_codes(
            uow, s.campaign_id, s.brand['id'], denomination_cents or s.denomination_cents, 1, actor='test'
        )
    )
    return batch.codes[0]


def test_an_issued_code_passed_by_an_integration_is_marked_redeemed(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    code = issue(s)

    result = s.provision(code.lower().replace('-', ''))  # typed any way, it is the same code
    again = s.provision(code)

    assert again.replayed and again.card.card_code == result.card.card_code
    status = ps.query('SELECT status FROM redemption_codes WHERE campaign_id = CAST(:c AS uuid)', c=s.campaign_id)
    assert status == [{'status': 'redeemed'}]


def test_an_issued_code_must_match_its_brand_and_denomination(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 5000, 4700, 1)
    code = issue(s)

    with pytest.raises(errors.Conflict):
        s.provision(code, denomination_cents=5000)

    status = ps.query('SELECT status FROM redemption_codes WHERE campaign_id = CAST(:c AS uuid)', c=s.campaign_id)
    assert status == [{'status': 'issued'}]


def test_the_redeem_page_provisions_an_issued_code_without_a_subject(owner: Any) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    code = issue(s)
    found = codes.find_code(db.Scope.of_subject(s.tree.client_admin), code)

    result = provisioning.provision_gift_card(s.request(code, channel='redeem_page'), subject=None, issued_code=found)

    assert result.redemption.status == 'fulfilled'
    assert reveals(result.redemption.id)[0]['channel'] == 'redeem_page'
    assert reveals(result.redemption.id)[0]['subject'] is None


# --- secrets stay out of logs ----------------------------------------------------------------------------


def test_logs_of_a_full_provision_hold_no_card_code_and_no_full_redemption_code(
    owner: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    monkeypatch.setattr(logger.registered_handler, 'stream', sys.stdout)  # the JSON log lines, into capsys
    capsys.readouterr()
    code = f'SECRET-{ps.new_code()}'

    result = s.provision(code)
    s.provision(code)

    logged = capsys.readouterr().out
    assert 'gift card provisioned' in logged and result.redemption.id in logged
    assert result.card.card_code not in logged
    assert result.card.card_number and result.card.card_number not in logged
    assert code not in logged
