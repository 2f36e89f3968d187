"""Provisioning's warm path (migration 0028): a caller's second provision for a campaign, brand and denomination
is one call that names what the first one's read established, and the database refuses it, claiming and charging
nothing, when any of that changed; the read then decides as it always did. Whatever changed between the two, the
answer is the one a first provision would get, and a code's replay is its first answer."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from giftcards import db, errors, ids, provisioning

from tests import factories
from tests import provisioning_support as ps


@pytest.fixture
def warm(owner: Any) -> ps.Setup:
    """An integration that provisioned once for its campaign's brand and denomination: its next call is warm."""
    s = ps.setup(owner, funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 4)
    s.provision()
    return s


def outcome(s: ps.Setup) -> tuple[int, int]:
    """The paying account's balance and how many redemptions the campaign has: a refusal changes neither."""
    [row] = ps.query(
        'SELECT count(*) AS redemptions FROM redemptions WHERE campaign_id = CAST(:c AS uuid)', c=s.campaign_id
    )
    return factories.balance_cents(s.paying_account), row['redemptions']


def test_the_next_provision_is_warm_and_charges_like_the_first(warm: ps.Setup) -> None:
    before = outcome(warm)

    result = warm.provision()

    assert result.redemption.status == 'fulfilled' and not result.replayed
    assert outcome(warm) == (before[0] - 2500, before[1] + 1) and result.credit_remaining_cents == before[0] - 2500
    assert factories.ledger_check().ok


def test_an_integration_whose_membership_was_revoked_is_refused_and_nothing_is_charged(
    warm: ps.Setup, owner: Any
) -> None:
    owner.run('DELETE FROM memberships WHERE subject = :s', s=warm.tree.integration)
    before = outcome(warm)

    with pytest.raises(errors.NotFound):
        warm.provision()

    assert outcome(warm) == before


def test_a_client_admin_who_became_its_agencys_admin_sees_the_campaign_but_may_not_provision(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 4)
    admin = s.tree.client_admin
    s.provision(subject=admin)
    owner.run('DELETE FROM memberships WHERE subject = :s', s=admin)
    owner.run(
        "INSERT INTO memberships (subject, role, agency_id) VALUES (:s, 'agency_admin', CAST(:a AS uuid))",
        s=admin,
        a=s.tree.agency['id'],
    )
    before = outcome(s)

    with pytest.raises(errors.Forbidden):
        s.provision(subject=admin)

    assert outcome(s) == before


def test_a_brand_that_no_longer_offers_the_denomination_is_refused_as_before(warm: ps.Setup, owner: Any) -> None:
    owner.run("UPDATE brands SET denominations_cents = '{5000}' WHERE id = CAST(:b AS uuid)", b=warm.brand['id'])
    before = outcome(warm)

    with pytest.raises(errors.ValidationFailed) as refused:
        warm.provision()

    assert refused.value.details == [{'field': 'denomination', 'message': 'not offered by this brand'}]
    assert outcome(warm) == before


def test_a_paused_campaign_is_refused_on_the_warm_path(warm: ps.Setup, owner: Any) -> None:
    owner.run(
        "UPDATE campaigns SET status = 'paused', paused_reason = 'manual' WHERE id = CAST(:c AS uuid)",
        c=warm.campaign_id,
    )
    before = outcome(warm)

    with pytest.raises(errors.CampaignNotActive):
        warm.provision()

    assert outcome(warm) == before


def test_a_code_sent_again_on_the_warm_path_replays_its_first_answer(warm: ps.Setup) -> None:
    code = ps.new_code()
    first = warm.provision(code)
    warm.provision()  # still warm
    before = outcome(warm)

    again = warm.provision(code)

    assert again.replayed and again.redemption == first.redemption and again.card == first.card
    assert outcome(warm) == before


def test_a_code_another_request_used_for_another_brand_is_a_conflict_on_the_warm_path(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    ps.pool(s.admin, s.brand['id'], 5000, 4700, 2)
    code = ps.new_code()
    s.provision(code, denomination_cents=5000)
    s.provision()  # the caller is warm for 25.00
    before = outcome(s)

    with pytest.raises(errors.Conflict) as refused:
        s.provision(code)

    assert refused.value.code == 'redemption_code_conflict'
    assert outcome(s) == before


# The database's own check, whatever the application remembers: provision_card named with a context that is not the
# one of its transaction refuses before it claims or charges anything.
_CALL = """
SELECT * FROM provision_card(
    CAST(:scope AS text), CAST(:id AS uuid), CAST(:charge AS uuid), decode(:hash, 'hex'), 'WARM',
    CAST(:campaign AS uuid), CAST(:brand AS uuid), 2500, 'spend:0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'api',
    :subject, :subject, CAST(:start AS uuid), 'warm-test', CAST(:token AS uuid), 60, CAST(:client AS uuid),
    :memberships)
"""


@pytest.mark.parametrize('stale', ['memberships', 'client'])
def test_the_database_refuses_a_call_that_names_a_stale_context(warm: ps.Setup, stale: str) -> None:
    subject = warm.tree.integration
    with db.UnitOfWork(scope=db.Scope.of_subject(subject), read_only=True) as uow:
        digest = uow.value("SELECT current_setting('giftcards.memberships')")
    before = outcome(warm)

    with pytest.raises(errors.Conflict) as refused:
        db.call(
            _CALL,
            scope=f'subject:{subject}',
            id=ids.time_ordered(),
            charge=ids.time_ordered(),
            hash=ps.new_code().encode().hex(),
            campaign=warm.campaign_id,
            brand=warm.brand['id'],
            subject=subject,
            start=ids.time_ordered(),
            token=ids.time_ordered(),
            client=str(uuid.uuid4()) if stale == 'client' else warm.tree.client['id'],
            memberships='0' * 32 if stale == 'memberships' else digest,
        )

    assert refused.value.code == 'stale_context'
    assert outcome(warm) == before
    assert provisioning.provision_gift_card(warm.request(), subject=subject).redemption.status == 'fulfilled'
