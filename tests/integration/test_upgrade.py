"""Upgrading a database in use: a migration applied to a database that already holds what it changes, while the
application's connection stays open, as a warm Lambda's would. 0016 (one price rule, one depletion rule, names and
idempotency keys as domains) and 0020 (redemption codes unique per client).

(0015 had an upgrade test of its own, with redemptions in every state made by the application at 0014. The
application now prices cards with 0016's function, so it cannot make them on a 0014 database any more.)"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native
import pytest
from giftcards import allocation, db, errors, hierarchy
from giftcards.config import get_settings
from giftcards.migrations_runner import MIGRATIONS_DIR, migrate

from tests import factories
from tests import provisioning_support as ps
from tests.scopes import TESTS_PLATFORM_ADMIN

LAST_BEFORE = 15  # the migrations up to 0015 make the database being upgraded


@pytest.fixture
def upgrading(
    request: pytest.FixtureRequest, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """A separate database migrated up to LAST_BEFORE (or the last migration before the number a test passes as the
    fixture's parameter), which the application uses for the test (DATABASE_URL); answers an owner connection to it.
    Dropped afterwards."""
    last_before = request.param - 1 if hasattr(request, 'param') else LAST_BEFORE
    name = f'gc_upgrade_{uuid.uuid4().hex[:10]}'
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    params = {**db.connection_params('owner'), 'database': name}
    owner = pg8000.native.Connection(**params)
    for path in sorted(MIGRATIONS_DIR.glob('*.sql')):
        if int(path.name[:4]) <= last_before:
            shutil.copy(path, tmp_path / path.name)
    migrate(owner, tmp_path)
    owner.run("INSERT INTO memberships (subject, role) VALUES (:s, 'platform_admin')", s=TESTS_PLATFORM_ADMIN)
    if last_before < 22:
        _stand_in_for_scopes(owner)
    monkeypatch.setenv('DATABASE_URL', urlunsplit(urlsplit(database_url)._replace(path=f'/{name}')))
    get_settings.cache_clear()
    db.reset_connections()
    try:
        yield owner
    finally:
        owner.close()
        db.reset_connections()
        monkeypatch.undo()
        get_settings.cache_clear()
        with db.owner_connection() as conn:
            conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Today's code enters a scope in each transaction and names it to the one-call functions (migration 0022). On a
# database from before row-level security, where every row is visible anyway, stand-ins take those calls: gc_enter
# answers the memberships and sets nothing, provision_context and find_redemption_code (0029) read what provisioning
# read then, and provision_card and ledger_move take the scope (and provision_card what a warm call knew) and drop it.
# They are dropped before the upgrade, which brings the real ones.
def _stand_in_for_scopes(owner: Any) -> None:
    owner.run(
        'CREATE FUNCTION gc_enter(p_scope text) RETURNS TABLE (role text, agency_id text, client_id text)'
        ' LANGUAGE sql AS $$ SELECT m.role, m.agency_id::text, m.client_id::text FROM memberships m'
        " WHERE p_scope = 'subject:' || m.subject $$"
    )
    owner.run(
        'CREATE FUNCTION provision_context(p_scope text, p_campaign uuid, p_brand uuid, p_denomination bigint,'
        ' p_code_hash bytea) RETURNS TABLE (campaign_id text, client_id text, agency_id text, campaign_status text,'
        ' brand_id text, brand_name text, offered boolean, existing_id text, existing_status text,'
        ' existing_campaign_id text, existing_brand_id text, existing_denomination_cents bigint, memberships jsonb)'
        ' LANGUAGE sql AS $$'
        ' SELECT c.id::text, c.client_id::text, cl.agency_id::text, c.status::text, b.id::text, b.name::text,'
        '  p_denomination = ANY (b.denominations_cents), r.id::text, r.status::text, r.campaign_id::text,'
        '  r.brand_id::text, r.denomination_cents::bigint,'
        "  (SELECT coalesce(jsonb_agg(jsonb_build_object('role', m.role, 'agency_id', m.agency_id::text,"
        "   'client_id', m.client_id::text)), '[]') FROM memberships m WHERE p_scope = 'subject:' || m.subject)"
        ' FROM campaigns c JOIN clients cl ON cl.id = c.client_id LEFT JOIN brands b ON b.id = p_brand'
        ' LEFT JOIN redemptions r ON r.client_id = c.client_id AND r.redemption_code_hash = p_code_hash'
        ' WHERE c.id = p_campaign $$'
    )
    owner.run(
        'CREATE FUNCTION find_redemption_code(p_scope text, p_code_hash bytea) RETURNS TABLE (id text,'
        ' campaign_id text, brand_id text, denomination_cents bigint, status text) LANGUAGE sql AS $$'
        ' SELECT c.id::text, c.campaign_id::text, c.brand_id::text, c.denomination_cents::bigint, c.status::text'
        ' FROM redemption_codes c WHERE c.code_hash = p_code_hash $$'
    )
    for name in ('provision_card', 'ledger_move'):
        found = owner.run(
            'SELECT pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.pronargs FROM pg_proc p'
            ' WHERE p.proname = :n',
            n=name,
        )
        # provision_card also takes what a warm call knew (migration 0028), which no call names here: a database
        # without gc_enter's digest of the memberships gives the warm path nothing to know.
        known = ', p_known_client uuid, p_known_memberships text' if name == 'provision_card' else ''
        for arguments, result, count in found:
            inputs = ', '.join(f'${i}' for i in range(2, count + 2))  # $1 is the scope
            owner.run(
                f'CREATE FUNCTION {name}(p_scope text, {arguments}{known}) RETURNS {result} LANGUAGE sql'
                f' AS $$ SELECT * FROM {name}({inputs}) $$'
            )


def _drop_stand_ins(owner: Any) -> None:
    for signature in owner.run(
        "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proname IN ('gc_enter', 'provision_card',"
        " 'provision_context', 'ledger_move', 'find_redemption_code') AND p.proargnames[1] = 'p_scope'"
    ):
        owner.run(f'DROP FUNCTION {signature[0]}')


def test_0016_upgrades_a_database_holding_names_keys_and_credit(upgrading: Any) -> None:
    tree = factories.hierarchy_tree(upgrading, budget_mode='isolated')
    factories.fund(10_000, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    factories.fund(500, tree.agency['account_id'])
    brand = factories.brand(denominations_cents=(1_000, 2_000))
    request = allocation.MoveRequest('allocation', tree.agency['account_id'], tree.client['account_id'], 500, 'x')
    first = allocation.move_credit(tree.agency_admin, request, idempotency_key='upgrade-key')

    _drop_stand_ins(upgrading)
    applied = migrate(upgrading)

    later = [path.name for path in sorted(MIGRATIONS_DIR.glob('*.sql')) if int(path.name[:4]) > LAST_BEFORE]
    assert applied == later
    # On the connection that was open across the upgrade:
    again = allocation.move_credit(tree.agency_admin, request, idempotency_key='upgrade-key')
    assert again.replayed and again.movement == first.movement
    assert hierarchy.get_agency(tree.platform_admin, tree.agency['id']).name == tree.agency['name']
    with pytest.raises(errors.Conflict):
        factories.brand(name=brand['name'].upper())  # the unique index on names was rebuilt, not lost
    admin = factories.platform_admin(upgrading)
    ps.pool(admin, brand['id'], 2_000, 1_900, 5)
    s = ps.Setup(tree, brand, 2_000, admin)
    assert [s.provision().redemption.amount_charged_cents for _ in range(5)] == [2_000] * 5  # 100.00 -> 0.00
    assert upgrading.run(
        'SELECT status, paused_reason FROM campaigns WHERE id = CAST(:c AS uuid)', c=tree.campaign['id']
    ) == [['paused', 'depleted']]
    assert factories.ledger_check().ok


@pytest.mark.parametrize('upgrading', [20], indirect=True)
def test_0020_lets_a_second_client_use_a_code_another_client_used_and_keeps_every_replay(upgrading: Any) -> None:
    admin = factories.platform_admin(upgrading)
    a, b = (ps.Setup(factories.hierarchy_tree(upgrading), factories.brand(), 2_500, admin) for _ in range(2))
    for s in (a, b):
        factories.fund(10_000, s.tree.agency['account_id'], s.tree.client['account_id'], s.paying_account)
        ps.pool(admin, s.brand['id'], 2_500, 2_350, 3)
    shared = ps.new_code()
    before = [(s, code, s.provision(code)) for s, code in ((a, shared), (a, ps.new_code()), (b, ps.new_code()))]

    _drop_stand_ins(upgrading)
    applied = migrate(upgrading)

    assert applied == [path.name for path in sorted(MIGRATIONS_DIR.glob('*.sql')) if int(path.name[:4]) >= 20]
    # On the connection that was open across the upgrade: every code replays what it got before, and client B's
    # first use of the code client A used gets a card and a charge of its own.
    for s, code, first in before:
        again = s.provision(code)
        assert again.replayed and again.redemption == first.redemption, code
    b_shared = b.provision(shared)
    assert not b_shared.replayed and b_shared.redemption.campaign_id == b.campaign_id
    assert b.provision(shared).redemption == b_shared.redemption
    assert [factories.balance_cents(a.paying_account), factories.balance_cents(b.paying_account)] == [5_000, 5_000]
    assert factories.ledger_check().ok
