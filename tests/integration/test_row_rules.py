"""The rules on single values (domains) and on whole rows (one CHECK per table, migration 0015) of the ledger, card
and redemption tables: the database refuses every broken rule, whoever writes, and names the rule it refused.

The hot tables keep no other CHECK constraints: PostgreSQL reads a table's CHECK constraints back from their text,
and plans them, at every statement that writes the table."""

from __future__ import annotations

from typing import Any

import pytest
from pg8000.native import DatabaseError

from tests import provisioning_support as ps


@pytest.fixture(scope='module')
def fulfilled(database_url: str) -> dict[str, str]:
    """One CSV redemption, fulfilled: its id, its card's and its charge's."""
    from giftcards import db

    with db.owner_connection() as owner:
        s = ps.setup(owner, funds_cents=10_000)
        ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
        result = s.provision(f'RULES-{ps.new_code()}')
    row = ps.query(
        'SELECT id::text, card_id::text, charge_transfer_id::text AS charge FROM redemptions'
        ' WHERE id = CAST(:id AS uuid)',
        id=result.redemption.id,
    )[0]
    return {'redemption': row['id'], 'card': row['card_id'], 'charge': row['charge']}


def refusal(owner: Any, statement: str, **params: Any) -> tuple[str | None, str | None]:
    """Run `statement` as the owner in a transaction rolled back afterwards: the SQLSTATE and constraint name it
    was refused with (None, None when it was not). The rules here are the tables' CHECKs, so they are met on their
    own: triggers are off in this transaction (session_replication_role), or the redemption state machine
    (migration 0019, tested in test_ledger_walls.py) and the account trigger would refuse most of these first."""
    owner.run('BEGIN')
    owner.run('SET LOCAL session_replication_role = replica')
    try:
        owner.run(statement, **params)
    except DatabaseError as exc:
        info = exc.args[0]
        return info.get('C'), info.get('n')
    finally:
        owner.run('ROLLBACK')
    return None, None


_CARD_COPY = (
    'INSERT INTO cards (id, pool_id, brand_id, denomination_cents, cost_cents, source, vendor, key_id, code_sealed,'
    ' code_hash, code_last4, status, claimed_at)'
    ' SELECT gen_random_uuid(), {pool}, brand_id, denomination_cents, {cost}, {source}, {vendor}, key_id,'
    ' code_sealed, sha256(random()::text::bytea), {last4}, {status}, {claimed_at}'
    ' FROM cards WHERE id = CAST(:card AS uuid)'
)


def card_copy(**changes: str) -> str:
    columns = {
        'pool': 'pool_id',
        'cost': 'cost_cents',
        'source': "'csv'",
        'vendor': 'NULL',
        'last4': 'code_last4',
        'status': "'available'",
        'claimed_at': 'NULL',
    }
    return _CARD_COPY.format(**{**columns, **changes})


_TRANSFER = (
    'INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator, notes,'
    ' reverses_id)'
    ' SELECT gen_random_uuid(), {kind}, from_account_id, {to}, {amount}, initiator, {notes}, {reverses}'
    ' FROM credit_transfers WHERE id = CAST(:charge AS uuid)'
)


def transfer_copy(**changes: str) -> str:
    columns = {'kind': "'redemption'", 'to': 'to_account_id', 'amount': '100', 'notes': 'NULL', 'reverses': 'NULL'}
    return _TRANSFER.format(**{**columns, **changes})


REDEMPTION = 'UPDATE redemptions SET {} WHERE id = CAST(:redemption AS uuid)'
DERIVED_KEY = "'gc-' || replace(id::text, '-', '')"

VALUE_RULES = [
    (REDEMPTION.format('amount_charged_cents = 0'), 'cents_positive'),
    (REDEMPTION.format('denomination_cents = -2500'), 'cents_positive'),
    (REDEMPTION.format('cost_basis_cents = -1'), 'cents_nonnegative'),
    (REDEMPTION.format('vendor_attempts = -1'), 'count_nonnegative'),
    (REDEMPTION.format("status = 'lost'"), 'redemption_status'),
    (REDEMPTION.format("source = 'ebay'"), 'card_source'),
    (REDEMPTION.format("code_last4 = ''"), 'last4'),
    (REDEMPTION.format("code_last4 = '12345'"), 'last4'),
    (REDEMPTION.format("user_agent = repeat('u', 513)"), 'user_agent_text'),
    (REDEMPTION.format("recipient_id = repeat('r', 201)"), 'recipient_text'),
    (REDEMPTION.format("delivery_method = repeat('m', 51)"), 'delivery_method_text'),
    (REDEMPTION.format("delivery_address = repeat('a', 321)"), 'delivery_address_text'),
    (REDEMPTION.format("last_vendor_error = repeat('e', 501)"), 'note_text'),
    (
        'INSERT INTO card_reveals (redemption_id, card_id, channel) VALUES (CAST(:redemption AS uuid),'
        " CAST(:card AS uuid), 'fax')",
        'reveal_channel',
    ),
    (
        'INSERT INTO card_reveals (redemption_id, card_id, channel, subject) VALUES (CAST(:redemption AS uuid),'
        " CAST(:card AS uuid), 'api', repeat('s', 257))",
        'subject_text',
    ),
    (transfer_copy(kind="'gift'"), 'transfer_kind'),
    (transfer_copy(amount='0'), 'cents_positive'),
    (transfer_copy(notes="repeat('n', 501)"), 'note_text'),
    (
        'INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)'
        ' SELECT id, from_account_id, 0, 0 FROM credit_transfers WHERE id = CAST(:charge AS uuid)',
        'credit_entries_amount_cents_check',
    ),
    ("INSERT INTO credit_accounts (owner_type) VALUES ('bank')", 'account_owner_type'),
    (card_copy(cost='0'), 'cents_positive'),
    (card_copy(status="'lost'"), 'card_status'),
    (card_copy(source="'ebay'"), 'card_source'),
    (card_copy(last4="''"), 'last4'),
    (card_copy(pool='NULL', source="'api'", vendor="''", status="'claimed'", claimed_at='now()'), 'vendor_name'),
]

ROW_RULES = [
    (REDEMPTION.format("status = 'pending'"), 'redemptions_pending_shape'),
    (REDEMPTION.format('fulfilled_at = NULL'), 'redemptions_fulfilled_shape'),
    (REDEMPTION.format("status = 'failed', failed_at = now()"), 'redemptions_failed_shape'),
    (REDEMPTION.format("vendor_key = 'gc-0000'"), 'redemptions_vendor_key_derived'),
    (REDEMPTION.format('redemption_code_hash = NULL'), 'redemptions_code_owned'),
    (REDEMPTION.format('retried_by = id, redemption_code_hash = NULL'), 'redemptions_retry_of_failed'),
    (
        REDEMPTION.format(f"status = 'pending', card_id = NULL, vendor_key = {DERIVED_KEY}, next_attempt_at = now()"),
        'redemptions_source_when_fulfilled',
    ),
    (transfer_copy(to='from_account_id'), 'credit_transfers_distinct_accounts'),
    (transfer_copy(kind="'refund'"), 'credit_transfers_reversal_shape'),
    (transfer_copy(reverses='id'), 'credit_transfers_reversal_shape'),
    ("INSERT INTO credit_accounts (owner_type) VALUES ('agency')", 'credit_accounts_owner_shape'),
    ("INSERT INTO credit_accounts (owner_type, system_name) VALUES ('platform', 'x')", 'credit_accounts_owner_shape'),
    (card_copy(pool='NULL'), 'cards_source_shape'),
    (card_copy(source="'api'", vendor="'tango'", status="'claimed'", claimed_at='now()'), 'cards_source_shape'),
    (card_copy(status="'claimed'"), 'cards_claimed_at'),
    (card_copy(claimed_at='now()'), 'cards_claimed_at'),
]


@pytest.mark.parametrize(('statement', 'rule'), VALUE_RULES + ROW_RULES)
def test_the_database_refuses_a_broken_rule_and_names_it(
    owner: Any, fulfilled: dict[str, str], statement: str, rule: str
) -> None:
    assert refusal(owner, statement, **fulfilled) == ('23514', rule)


@pytest.mark.parametrize(
    'statement',
    [
        REDEMPTION.format("user_agent = repeat('u', 512), recipient_id = repeat('r', 200), cost_basis_cents = 0"),
        card_copy(),
        card_copy(pool='NULL', source="'api'", vendor="'tango'", status="'claimed'", claimed_at='now()'),
        transfer_copy(notes="repeat('n', 500)"),
    ],
)
def test_rows_that_keep_every_rule_are_accepted(owner: Any, fulfilled: dict[str, str], statement: str) -> None:
    """The refusals above come from the rules, not from statements that could never succeed."""
    assert refusal(owner, statement, **fulfilled) == (None, None)


def test_the_hot_tables_keep_no_other_check_constraints(owner: Any) -> None:
    rows = owner.run(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'c' AND conrelid::regclass::text"
        " IN ('credit_accounts', 'credit_transfers', 'credit_entries', 'cards', 'redemptions', 'card_reveals')"
    )
    assert sorted(map(tuple, rows)) == [
        ('cards', 'cards_rules'),
        ('credit_accounts', 'credit_accounts_balance_nonnegative'),
        ('credit_accounts', 'credit_accounts_rules'),
        ('credit_entries', 'credit_entries_amount_cents_check'),
        ('credit_transfers', 'credit_transfers_rules'),
        ('redemptions', 'redemptions_rules'),
    ], "a rule on one value belongs in a domain, a rule on several columns in the table's *_rules function (0015)"
