"""Issuing, finding, listing and voiding redemption codes against real PostgreSQL."""

from __future__ import annotations

import pytest
from giftcards import code_administration, codes, db, errors, ratelimit, redeeming
from giftcards.api.codes import issued_codes_csv
from pg8000.native import DatabaseError

from tests import factories
from tests import redeem_support as rs


@pytest.fixture
def camp(owner):
    return rs.campaign(owner, cards_in_stock=0)


def stored_codes(campaign_id: str) -> list[dict]:
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT code_hash, last4, status, denomination_cents, brand_id::text FROM redemption_codes'
            ' WHERE campaign_id = CAST(:id AS uuid)',
            id=campaign_id,
        )
    )


def test_issued_codes_are_stored_as_their_keyed_hashes_and_last_four(camp):
    issued = camp.issue(20)
    rows = stored_codes(camp.id)
    assert len(issued) == len(set(issued)) == len(rows) == 20
    assert {bytes(r['code_hash']) for r in rows} == {codes.code_hash(code) for code in issued}
    assert {r['last4'] for r in rows} == {code[-4:] for code in issued}
    assert {(r['status'], r['denomination_cents'], r['brand_id']) for r in rows} == {('issued', 2500, camp.brand['id'])}


def test_a_code_is_found_however_it_is_typed(camp):
    code = camp.issue()[0]
    typed = code.lower().replace('-', ' ').replace('0', 'o').replace('1', 'l')
    found = codes.find_code(db.Scope.of_subject(camp.tree.client_admin), typed)
    assert found is not None
    assert (found.code, found.campaign_id, found.brand_id, found.denomination_cents, found.status) == (
        code,
        camp.id,
        camp.brand['id'],
        2500,
        'issued',
    )


def test_an_unknown_or_malformed_code_is_not_found(camp):
    camp.issue()
    admin = db.Scope.of_subject(camp.tree.client_admin)
    assert codes.find_code(admin, codes.generate_code()) is None
    assert codes.find_code(admin, 'nope') is None


def test_a_code_is_found_in_one_statement_as_the_callers_scope_sees_it(owner, camp):
    """find_code enters the caller's scope itself (migration 0029): the campaign's client sees its code; another
    tenant's integration, or a subject with no membership, finds nothing, as if the code were its own external one."""
    code = camp.issue()[0]
    other = factories.hierarchy_tree(owner)

    found = codes.find_code(db.Scope.of_subject(camp.tree.integration), code.lower())

    assert found is not None and (found.code, found.campaign_id, found.status) == (code, camp.id, 'issued')
    assert codes.find_code(db.Scope.of_subject(other.integration), code) is None
    assert codes.find_code(db.Scope.of_subject(factories.stranger()), code) is None


def test_ten_thousand_codes_in_one_request(camp):
    batch = code_administration.issue_codes(
        camp.tree.client_admin, camp.id, camp.brand['id'], 5000, code_administration.MAX_ISSUE
    )
    assert len(set(batch.codes)) == code_administration.MAX_ISSUE
    assert len(stored_codes(camp.id)) == code_administration.MAX_ISSUE


@pytest.mark.parametrize('count', [0, code_administration.MAX_ISSUE + 1])
def test_count_outside_one_to_ten_thousand_is_refused(camp, count):
    with pytest.raises(errors.ValidationFailed, match='count'):
        camp.issue(count)
    assert stored_codes(camp.id) == []


def test_a_denomination_the_brand_does_not_offer_is_refused(camp):
    with pytest.raises(errors.ValidationFailed, match='denomination: the brand offers 25, 50'):
        camp.issue(1, denomination_cents=1000)


def test_an_unknown_brand_is_refused(camp):
    with pytest.raises(errors.ValidationFailed, match='brand_id'):
        code_administration.issue_codes(
            camp.tree.client_admin, camp.id, '00000000-0000-0000-0000-000000000000', 2500, 1
        )
    with pytest.raises(errors.ValidationFailed, match='brand_id'):
        code_administration.issue_codes(camp.tree.client_admin, camp.id, 'not-a-uuid', 2500, 1)


def test_an_ended_campaign_gets_no_new_codes(camp):
    rs.set_campaign_status(camp.id, 'ended')
    with pytest.raises(errors.CampaignNotActive):
        camp.issue()


def test_a_paused_campaign_may_still_get_codes(camp):
    camp.pause()
    assert len(camp.issue(2)) == 2


@pytest.mark.parametrize('role', ['client_admin', 'agency_admin', 'platform_admin'])
def test_the_campaign_admin_or_above_may_issue(camp, role):
    batch = code_administration.issue_codes(getattr(camp.tree, role), camp.id, camp.brand['id'], 2500, 1)
    assert len(batch.codes) == 1


def test_the_integration_does_not_see_the_campaign_to_issue_for(camp):
    with pytest.raises(errors.NotFound):
        code_administration.issue_codes(camp.tree.integration, camp.id, camp.brand['id'], 2500, 1)


def test_an_admin_of_another_client_does_not_see_the_campaign(owner, camp):
    other = factories.hierarchy_tree(owner)
    for subject in (other.client_admin, other.agency_admin, factories.stranger()):
        with pytest.raises(errors.NotFound):
            code_administration.issue_codes(subject, camp.id, camp.brand['id'], 2500, 1)


def test_issuing_is_audited_without_the_codes(camp):
    issued = camp.issue(3)
    details = db.in_transaction(
        lambda uow: uow.value(
            "SELECT details::text FROM audit_events WHERE action = 'codes.issued' AND entity_id = CAST(:id AS uuid)",
            id=camp.id,
        )
    )
    assert '"count": 3' in details
    assert not any(code in details or code.replace('-', '') in details for code in issued)


def test_a_hash_already_stored_is_replaced_by_a_fresh_code(camp):
    existing = camp.issue()[0]
    fresh = iter([existing, existing, codes.generate_code(), codes.generate_code()])
    batch = db.in_transaction(
        lambda uow: code_administration.insert_codes(
            uow, camp.id, camp.brand['id'], 2500, 2, actor='t', generate=lambda: next(fresh)
        )
    )
    assert len(batch.codes) == 2
    assert existing not in batch.codes
    assert len(stored_codes(camp.id)) == 3


def test_csv_holds_every_code_once_with_a_header(camp):
    batch = code_administration.issue_codes(camp.tree.client_admin, camp.id, camp.brand['id'], 2500, 3)
    lines = issued_codes_csv(batch).splitlines()
    assert lines[0] == 'code,brand_id,denomination'
    assert [line.split(',')[0] for line in lines[1:]] == batch.codes
    assert {line.split(',', 1)[1] for line in lines[1:]} == {f'{camp.brand["id"]},25'}


# --- listing -------------------------------------------------------------------------------------------


def test_listing_is_masked_and_paginated(camp):
    issued = camp.issue(5)
    first = code_administration.list_codes(camp.tree.client_admin, camp.id, 3, None)
    second = code_administration.list_codes(camp.tree.client_admin, camp.id, 3, first.next_cursor)
    items = first.items + second.items
    assert len(first.items) == 3 and first.next_cursor
    assert len(second.items) == 2 and second.next_cursor is None
    assert sorted(i.last4 for i in items) == sorted(code[-4:] for code in issued)
    listed = repr(items)
    assert not any(code in listed or code[:-4] in listed for code in issued)


def test_listing_filters_by_status(camp):
    kept, voided = camp.issue(2)
    code_id = rs.code_row(voided)['id']
    code_administration.void_code(camp.tree.client_admin, code_id)
    by_status = {
        status: [
            i.last4 for i in code_administration.list_codes(camp.tree.client_admin, camp.id, 50, None, status).items
        ]
        for status in ('issued', 'void', 'redeemed')
    }
    assert by_status == {'issued': [kept[-4:]], 'void': [voided[-4:]], 'redeemed': []}


def test_listing_is_for_the_campaign_admin_or_above(camp):
    with pytest.raises(errors.NotFound):
        code_administration.list_codes(camp.tree.integration, camp.id, 50, None)
    with pytest.raises(errors.NotFound):
        code_administration.list_codes(factories.stranger(), camp.id, 50, None)


def test_a_forged_cursor_is_a_validation_error(camp):
    with pytest.raises(errors.ValidationFailed, match='cursor'):
        code_administration.list_codes(camp.tree.client_admin, camp.id, 50, 'bm90LWEtY3Vyc29y')


# --- voiding -------------------------------------------------------------------------------------------


def test_voiding_an_issued_code(camp):
    code = camp.issue()[0]
    voided = code_administration.void_code(camp.tree.client_admin, rs.code_row(code)['id'])
    assert voided.status == 'void' and voided.voided_at is not None
    assert rs.code_row(code)['status'] == 'void'


def test_voiding_twice_answers_the_void_code(camp):
    code_id = rs.code_row(camp.issue()[0])['id']
    first = code_administration.void_code(camp.tree.client_admin, code_id)
    assert code_administration.void_code(camp.tree.client_admin, code_id) == first


def test_a_redeemed_code_cannot_be_voided(camp):
    camp.stock(1)
    code = camp.issue()[0]
    redeeming.redeem(code, ratelimit.Source.of(rs.unique_ip(), 'pytest'))
    with pytest.raises(code_administration.CodeAlreadyRedeemed):
        code_administration.void_code(camp.tree.client_admin, rs.code_row(code)['id'])
    assert rs.code_row(code)['status'] == 'redeemed'


def test_voiding_needs_the_campaign_admin_and_an_existing_code(camp):
    code_id = rs.code_row(camp.issue()[0])['id']
    with pytest.raises(errors.NotFound):
        code_administration.void_code(camp.tree.integration, code_id)
    for subject, target in (
        (factories.stranger(), code_id),
        (camp.tree.client_admin, 'nope'),
        (camp.tree.client_admin, '00000000-0000-0000-0000-000000000000'),
    ):
        with pytest.raises(errors.NotFound, match='No such code'):
            code_administration.void_code(subject, target)
    assert (
        db.in_transaction(
            lambda uow: uow.value('SELECT status FROM redemption_codes WHERE id = CAST(:id AS uuid)', id=code_id)
        )
        == 'issued'
    )


def test_the_database_keeps_a_code_moving_forward_only(camp):
    code = camp.issue()[0]
    code_id = rs.code_row(code)['id']
    code_administration.void_code(camp.tree.client_admin, code_id)
    with pytest.raises(errors.ValidationFailed, match='a void code cannot become issued'):
        db.in_transaction(
            lambda uow: uow.execute(
                "UPDATE redemption_codes SET status = 'issued', voided_at = NULL, voided_by = NULL"
                ' WHERE id = CAST(:id AS uuid)',
                id=code_id,
            )
        )


def test_the_application_cannot_rewrite_what_a_code_is_for(camp):
    code_id = rs.code_row(camp.issue()[0])['id']
    with pytest.raises(DatabaseError, match='permission denied'):
        db.in_transaction(
            lambda uow: uow.execute(
                'UPDATE redemption_codes SET denomination_cents = 5000 WHERE id = CAST(:id AS uuid)', id=code_id
            )
        )
    with pytest.raises(DatabaseError, match='permission denied'):
        db.in_transaction(
            lambda uow: uow.execute('DELETE FROM redemption_codes WHERE id = CAST(:id AS uuid)', id=code_id)
        )
