"""A credit movement whose COMMIT meets a broken database connection: the server cannot know whether it was made,
so it says so (503 outcome_unknown, naming the transfer to look for) instead of inviting a blind retry; with an
Idempotency-Key the same request is then always safe to repeat. Through a real `giftcard serve`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from giftcard_local.tokens import issue_token
from giftcards import db

from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Live

# A deferred trigger that ends its own session at COMMIT, once per sequence named in a text column of the new row
# (the column is the trigger's argument): the connection breaks while the COMMIT is on its way, as when the database
# fails over or a network path drops.
KILLER = """
CREATE OR REPLACE FUNCTION test_kill_once_at_commit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  marker text;
BEGIN
  EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) USING NEW INTO marker;
  IF marker LIKE 'kill-once:%' AND nextval(substr(marker, 11)::regclass) = 1 THEN
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS test_kill_once_at_commit ON credit_transfers;
CREATE CONSTRAINT TRIGGER test_kill_once_at_commit AFTER INSERT ON credit_transfers
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_kill_once_at_commit('notes');
DROP TRIGGER IF EXISTS test_kill_once_at_commit ON redemptions;
CREATE CONSTRAINT TRIGGER test_kill_once_at_commit AFTER INSERT ON redemptions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_kill_once_at_commit('recipient_id');
"""


@pytest.fixture
def killer(owner: Any) -> Iterator[str]:
    """A marker that makes the next transfer (in its notes) or redemption (as its recipient id) carrying it lose its
    connection at COMMIT, once."""
    sequence = f'test_kill_{uuid.uuid4().hex[:12]}'
    owner.run(KILLER)
    owner.run(f'CREATE SEQUENCE {sequence}')
    try:
        yield f'kill-once:{sequence}'
    finally:
        owner.run('DROP TRIGGER IF EXISTS test_kill_once_at_commit ON credit_transfers')
        owner.run('DROP TRIGGER IF EXISTS test_kill_once_at_commit ON redemptions')
        owner.run(f'DROP SEQUENCE {sequence}')


def transfers_with_notes(notes: str) -> list[dict[str, Any]]:
    return ps.query('SELECT id::text FROM credit_transfers WHERE notes = :n', n=notes)


def test_allocation_whose_commit_breaks_says_its_outcome_is_unknown_and_names_the_transfer(
    live: Live, owner: Any, killer: str
) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'])
    admin = issue_token(tree.agency_admin)
    body = {
        'fromAccountId': tree.agency['account_id'],
        'toAccountId': tree.client['account_id'],
        'amount': 25,
        'notes': killer,
    }

    answer = live.call('POST', '/allocate-credit', token=admin, json_body=body)

    assert answer.status == 503, answer.text
    error = answer.json()['error']
    assert error['code'] == 'outcome_unknown'
    assert 'try again' not in error['message'].lower()
    assert tree.agency['account_id'] in error['message']
    transfer_id = error['message'].split('transfer ')[1].split(' ')[0].rstrip(')')
    assert uuid.UUID(transfer_id)
    # Here the session died before its COMMIT took effect; the transfer the answer names is not in the ledger.
    assert transfers_with_notes(killer) == []
    history = live.call('GET', f'/accounts/{tree.agency["account_id"]}/transactions', token=admin).json()
    assert transfer_id not in {entry['transfer_id'] for entry in history['items']}
    assert factories.balance_cents(tree.agency['account_id']) == 10_000
    # The execution environment goes on with a new connection.
    plain = {**body, 'notes': 'after'}
    assert live.call('POST', '/allocate-credit', token=admin, json_body=plain).status == 200
    assert factories.ledger_check().ok


def test_with_an_idempotency_key_the_same_request_after_an_unknown_outcome_moves_credit_once(
    live: Live, owner: Any, killer: str
) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'])
    admin = issue_token(tree.agency_admin)
    body = {
        'fromAccountId': tree.agency['account_id'],
        'toAccountId': tree.client['account_id'],
        'amount': 25,
        'notes': killer,
    }
    key = {'Idempotency-Key': factories.unique('key')}

    first = live.call('POST', '/allocate-credit', token=admin, json_body=body, headers=key)
    second = live.call('POST', '/allocate-credit', token=admin, json_body=body, headers=key)
    third = live.call('POST', '/allocate-credit', token=admin, json_body=body, headers=key)

    assert first.status == 503 and first.error_code == 'outcome_unknown', first.text
    assert 'same Idempotency-Key' in first.json()['error']['message']
    assert second.status == 200, second.text
    assert third.json() == second.json()
    assert len(transfers_with_notes(killer)) == 1
    assert factories.balance_cents(tree.agency['account_id']) == 10_000 - 2500
    assert factories.ledger_check().ok


def test_reclaim_whose_commit_breaks_says_its_outcome_is_unknown(live: Live, owner: Any, killer: str) -> None:
    tree = factories.hierarchy_tree(owner)
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'])
    admin = issue_token(tree.agency_admin)
    body = {
        'fromAccountId': tree.client['account_id'],
        'toAccountId': tree.agency['account_id'],
        'amount': 25,
        'notes': killer,
    }

    answer = live.call('POST', '/reclaim-credit', token=admin, json_body=body)

    assert answer.status == 503 and answer.error_code == 'outcome_unknown', answer.text
    assert 'this reclaim' in answer.json()['error']['message']
    assert db.in_transaction(lambda uow: uow.value('SELECT 1 + :z', z=0)) == 1
    assert factories.balance_cents(tree.client['account_id']) == 10_000


def test_provision_whose_commit_breaks_says_so_and_the_same_code_then_buys_one_card(
    live: Live, owner: Any, killer: str
) -> None:
    s = ps.setup(owner, funds_cents=10 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 5)
    integration = issue_token(s.tree.integration)
    body = {
        'campaignId': s.campaign_id,
        'brandId': s.brand['id'],
        'denomination': 25,
        'redemptionCode': ps.new_code(),
        'recipientId': killer,
    }

    first = live.call('POST', '/provision-gift-card', token=integration, json_body=body)
    second = live.call('POST', '/provision-gift-card', token=integration, json_body=body)
    third = live.call('POST', '/provision-gift-card', token=integration, json_body=body)

    assert first.status == 503 and first.error_code == 'outcome_unknown', first.text
    assert 'Send the same code again' in first.json()['error']['message']
    assert first.headers['retry-after'] == '1'
    assert second.status == 200 and not second.json().get('replayed'), second.text
    assert third.status == 200 and third.json()['replayed'] is True
    assert third.json()['card'] == second.json()['card']
    assert len(ps.redemptions_of(s.campaign_id)) == 1
    assert factories.balance_cents(s.paying_account) == 9 * 2500
    (row,) = ps.query('SELECT count(*) AS n FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool)
    assert row['n'] == 4
    assert factories.ledger_check().ok
