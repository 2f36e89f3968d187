"""The database as the last wall (migration 0019): as the application role, whatever a compromised function sends,
balances change only through ledger_transfer, nothing moves an entity to another owner, and a redemption keeps to
its state machine. Each refused statement is sent for real, and the rows are read back afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from giftcards import db, errors
from pg8000.native import DatabaseError

from tests import factories
from tests import provisioning_support as ps

PERMISSION_DENIED = '42501'
CHECK_VIOLATION = '23514'


@pytest.fixture
def world(owner: Any) -> dict[str, Any]:
    """Two agencies; agency A's client with a fulfilled CSV redemption, a failed (refunded) one, and its balance."""
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    fulfilled = s.provision(f'WALLS-{ps.new_code()}').redemption
    other = factories.agency()
    return {
        'setup': s,
        'fulfilled': fulfilled.id,
        'card': fulfilled.card_id,
        'client': s.tree.client,
        'campaign': s.campaign_id,
        'other_agency': other,
        'paying_account': s.paying_account,
    }


def refused_as_app(statement: str, **params: Any) -> tuple[str | None, str | None]:
    """Send `statement` as giftcard_app in a transaction of its own: the SQLSTATE and constraint it was refused
    with. A statement the database accepts fails the test: nothing of it is committed either way."""
    with db.UnitOfWork() as uow:
        try:
            uow.execute(statement, **params)
        except DatabaseError as exc:
            info = exc.args[0]
            return info.get('C'), info.get('n')
    pytest.fail(f'the application role was allowed: {statement}')


def snapshot(world: dict[str, Any]) -> Any:
    return ps.query(
        'SELECT (SELECT sum(balance_cents) FROM credit_accounts) AS total,'
        ' (SELECT balance_cents FROM credit_accounts WHERE id = CAST(:a AS uuid)) AS paying,'
        ' (SELECT count(*) FROM credit_transfers) AS transfers,'
        ' (SELECT count(*) FROM credit_accounts) AS accounts,'
        ' (SELECT agency_id::text FROM clients WHERE id = CAST(:c AS uuid)) AS agency,'
        ' (SELECT row(status, card_id, charge_transfer_id, refund_transfer_id)::text FROM redemptions'
        '   WHERE id = CAST(:r AS uuid)) AS redemption',
        a=world['paying_account'],
        c=world['client']['id'],
        r=world['fulfilled'],
    )


BALANCES = [
    'UPDATE credit_accounts SET balance_cents = balance_cents + 100000000 WHERE id = CAST(:account AS uuid)',
    'UPDATE credit_accounts SET parent_id = (SELECT account_id FROM agencies WHERE id = CAST(:agency AS uuid))'
    ' WHERE id = CAST(:account AS uuid)',
    'UPDATE credit_accounts SET owner_id = gen_random_uuid() WHERE id = CAST(:account AS uuid)',
    "INSERT INTO credit_accounts (owner_type, owner_id, parent_id, balance_cents) SELECT 'client', gen_random_uuid(),"
    ' parent_id, 100000000 FROM credit_accounts WHERE id = CAST(:account AS uuid)',
    'INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator) SELECT'
    " gen_random_uuid(), 'allocation', CAST(:account AS uuid), account_id, 1, 'x' FROM agencies"
    ' WHERE id = CAST(:agency AS uuid)',
]
OWNERSHIP = [
    'UPDATE clients SET agency_id = CAST(:agency AS uuid) WHERE id = CAST(:client AS uuid)',
    'UPDATE clients SET account_id = CAST(:account AS uuid) WHERE id = CAST(:client AS uuid)',
    'UPDATE campaigns SET client_id = gen_random_uuid() WHERE id = CAST(:campaign AS uuid)',
    'UPDATE campaigns SET account_id = CAST(:account AS uuid) WHERE id = CAST(:campaign AS uuid)',
    "UPDATE agencies SET name = 'taken over' WHERE id = CAST(:agency AS uuid)",
]
REDEMPTION_COLUMNS = [
    'UPDATE redemptions SET charge_transfer_id = gen_random_uuid() WHERE id = CAST(:redemption AS uuid)',
    'UPDATE redemptions SET amount_charged_cents = 1 WHERE id = CAST(:redemption AS uuid)',
    'UPDATE redemptions SET paying_account_id = CAST(:account AS uuid) WHERE id = CAST(:redemption AS uuid)',
    'UPDATE redemptions SET campaign_id = gen_random_uuid() WHERE id = CAST(:redemption AS uuid)',
]


@pytest.mark.parametrize('statement', BALANCES + OWNERSHIP + REDEMPTION_COLUMNS)
def test_the_application_role_has_no_right_to_balances_ownership_or_charges(
    world: dict[str, Any], statement: str
) -> None:
    before = snapshot(world)

    refused = refused_as_app(
        statement,
        account=world['paying_account'],
        agency=world['other_agency']['id'],
        client=world['client']['id'],
        campaign=world['campaign'],
        redemption=world['fulfilled'],
    )

    assert refused[0] == PERMISSION_DENIED, refused
    assert snapshot(world) == before


def test_an_account_row_it_may_lock_it_still_cannot_change(world: dict[str, Any]) -> None:
    """UPDATE on created_at is granted only because PostgreSQL asks for some UPDATE right before a role may lock a
    row (FOR SHARE); the trigger refuses the change itself."""
    before = snapshot(world)
    with db.UnitOfWork() as uow:
        locked = uow.fetch(
            'SELECT id FROM credit_accounts WHERE id = CAST(:a AS uuid) FOR SHARE', a=world['paying_account']
        )
    assert len(locked) == 1

    refused = refused_as_app(
        "UPDATE credit_accounts SET created_at = now() - interval '1 year' WHERE id = CAST(:a AS uuid)",
        a=world['paying_account'],
    )

    assert refused[0] == PERMISSION_DENIED
    assert snapshot(world) == before


@pytest.mark.parametrize(
    'change',
    [
        "status = 'failed', card_id = NULL, source = NULL, failed_at = now(), refund_transfer_id = charge_transfer_id",
        "status = 'pending', card_id = NULL, source = NULL, vendor_key = 'gc-' || replace(id::text, '-', ''),"
        ' next_attempt_at = now()',
        'card_id = (SELECT id FROM cards WHERE id <> CAST(:card AS uuid) ORDER BY id LIMIT 1)',
        'cost_basis_cents = 0',
    ],
)
def test_a_fulfilled_redemption_never_changes_its_card_charge_or_status(world: dict[str, Any], change: str) -> None:
    before = snapshot(world)

    refused = refused_as_app(
        f'UPDATE redemptions SET {change} WHERE id = CAST(:redemption AS uuid)',
        redemption=world['fulfilled'],
        card=world['card'],
    )

    assert refused[0] in (PERMISSION_DENIED, CHECK_VIOLATION), refused
    if refused[0] == CHECK_VIOLATION:
        assert refused[1] == 'redemptions_state_machine'
    assert snapshot(world) == before


def test_a_fulfilled_redemption_may_still_record_that_its_charge_paused_the_campaign(world: dict[str, Any]) -> None:
    """What the state machine lets through: the depletion pause marks the redemption whose charge caused it."""
    with db.UnitOfWork() as uow:  # rolled back at the end of the block
        row = uow.fetch_one(
            'UPDATE redemptions SET campaign_paused = true, updated_at = now() WHERE id = CAST(:r AS uuid)'
            ' RETURNING campaign_paused',
            r=world['fulfilled'],
        )
    assert row == {'campaign_paused': True}


def test_a_failed_redemption_stays_failed_and_keeps_its_refund(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('refuse')
        with pytest.raises(errors.FulfilmentUnavailable):
            s.provision()
    [failed] = ps.redemptions_of(s.campaign_id)
    assert failed['status'] == 'failed'
    [card] = ps.query("SELECT id::text FROM cards WHERE status = 'claimed' LIMIT 1")

    for change in (
        "status = 'fulfilled', source = 'csv', card_id = CAST(:card AS uuid), cost_basis_cents = 1,"
        ' fulfilled_at = now(), refund_transfer_id = NULL',
        'refund_transfer_id = NULL',
        "status = 'pending', refund_transfer_id = NULL, failed_at = NULL",
    ):
        refused = refused_as_app(
            f'UPDATE redemptions SET {change} WHERE id = CAST(:redemption AS uuid)',
            redemption=failed['id'],
            card=card['id'],
        )
        assert refused == (CHECK_VIOLATION, 'redemptions_state_machine'), (change, refused)
    assert ps.redemptions_of(s.campaign_id) == [failed]


def test_the_ledger_role_is_no_login_and_ledger_transfer_runs_as_it(owner: Any) -> None:
    [[login, superuser, bypass]] = owner.run(
        "SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'giftcard_ledger'"
    )
    [[definer, function_owner]] = owner.run(
        "SELECT prosecdef, pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'ledger_transfer'"
    )
    assert (login, superuser, bypass) == (False, False, False)
    assert (definer, function_owner) == (True, 'giftcard_ledger')


def test_every_function_with_elevated_rights_pins_its_search_path_and_is_not_public(owner: Any) -> None:
    rows = owner.run(
        "SELECT p.proname, coalesce(array_to_string(p.proconfig, ','), ''),"
        " has_function_privilege('public', p.oid, 'EXECUTE')"
        ' FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace'
        " WHERE p.prosecdef AND n.nspname = 'public' AND p.proname NOT LIKE 'test\\_%'"
    )
    assert rows, 'ledger_transfer at least runs with elevated rights'
    for name, config, public in rows:
        assert 'search_path=pg_catalog, public, pg_temp' in config, (name, config)
        assert not public, f'{name} may be executed by anyone'


def test_the_application_role_holds_no_update_right_on_money_or_ownership_columns(database_url: str) -> None:
    columns = {
        'credit_accounts': ['balance_cents', 'owner_type', 'owner_id', 'parent_id', 'system_name'],
        'agencies': ['account_id', 'name'],
        'clients': ['agency_id', 'account_id'],
        'campaigns': ['client_id', 'account_id'],
        'redemptions': ['charge_transfer_id', 'paying_account_id', 'amount_charged_cents', 'campaign_id', 'client_id'],
    }
    granted = [
        (table, column)
        for table, names in columns.items()
        for column in names
        if ps.query(
            "SELECT has_column_privilege('giftcard_app', CAST(:t AS regclass), :c, 'UPDATE') AS may", t=table, c=column
        )[0]['may']
    ]
    assert granted == []
