"""Row-level security, the second wall (migrations 0022, 0025): what each scope sees of every tenant table, as the
application role, with rows of two tenants (and of every other test of the session) in the database.

Each table's rows are attributed to their agency by the owner, who sees everything; the application role, in a
scope, must see exactly the rows that scope is owed: its tenant's, never another's, and nothing without a scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from giftcards import allocation, code_administration, codes, db, delivery_links, delivery_settings
from pg8000.native import DatabaseError

from tests import delivery_support as ds
from tests import factories
from tests import provisioning_support as ps

# Every table with a tenant's rows; the rest (catalogue, inventory, the system's own state) holds none.
TENANT_TABLES = {
    'agencies',
    'clients',
    'campaigns',
    'credit_accounts',
    'credit_transfers',
    'credit_entries',
    'memberships',
    'idempotency_keys',
    'redemption_codes',
    'redemptions',
    'card_reveals',
    'redemption_attempts',
    'alert_thresholds',
    'system_alerts',
    'audit_events',
    'deliveries',
    'campaign_delivery_settings',
    'sms_consents',
}
NOT_TENANT_TABLES = {
    'brands',
    'brand_prices',
    'card_pools',
    'available_cards',
    'cards',
    'card_data_keys',
    'monitor_state',
    'ledger_check_state',
    'schema_migrations',
    'brand_messages',  # the catalogue's instructions
    'delivery_opt_outs',  # replies to the platform's own sender and number
}

_ACCOUNTS = """
SELECT a.id::text AS row, coalesce(ag.id, cl.agency_id, kc.agency_id)::text AS agency, a.owner_type
  FROM credit_accounts a
  LEFT JOIN agencies ag ON ag.account_id = a.id
  LEFT JOIN clients cl ON cl.account_id = a.id
  LEFT JOIN campaigns k ON k.account_id = a.id
  LEFT JOIN clients kc ON kc.id = k.client_id
"""
_ENTITY_AGENCY = """CASE t.entity_type
    WHEN 'agency' THEN t.entity_id
    WHEN 'client' THEN (SELECT agency_id FROM clients WHERE id = t.entity_id)
    WHEN 'campaign' THEN (SELECT cl.agency_id FROM campaigns c JOIN clients cl ON cl.id = c.client_id
                           WHERE c.id = t.entity_id)
    WHEN 'card' THEN (SELECT cl.agency_id FROM redemptions r JOIN clients cl ON cl.id = r.client_id
                       WHERE r.card_id = t.entity_id) END::text"""

# Each tenant table: how its rows are named, and (as the owner sees them) the agency each belongs to (NULL: the
# platform's, such as the system accounts and what moves through them).
ROWS: dict[str, tuple[str, str]] = {
    'agencies': ('id::text', 'SELECT id::text AS row, id::text AS agency FROM agencies'),
    'clients': ('id::text', 'SELECT id::text AS row, agency_id::text AS agency FROM clients'),
    'campaigns': (
        'id::text',
        'SELECT c.id::text AS row, cl.agency_id::text AS agency FROM campaigns c'
        ' JOIN clients cl ON cl.id = c.client_id',
    ),
    'credit_accounts': ('id::text', f'SELECT row, agency FROM ({_ACCOUNTS}) a'),
    'credit_transfers': (
        'id::text',
        f'SELECT t.id::text AS row, coalesce(f.agency, d.agency) AS agency FROM credit_transfers t'
        f' JOIN ({_ACCOUNTS}) f ON f.row = t.from_account_id::text'
        f' JOIN ({_ACCOUNTS}) d ON d.row = t.to_account_id::text',
    ),
    'credit_entries': (
        'id::text',
        f'SELECT e.id::text AS row, a.agency FROM credit_entries e JOIN ({_ACCOUNTS}) a ON a.row = e.account_id::text',
    ),
    'redemption_codes': (
        'id::text',
        'SELECT rc.id::text AS row, cl.agency_id::text AS agency FROM redemption_codes rc'
        ' JOIN campaigns c ON c.id = rc.campaign_id JOIN clients cl ON cl.id = c.client_id',
    ),
    'redemptions': (
        'id::text',
        'SELECT r.id::text AS row, cl.agency_id::text AS agency FROM redemptions r'
        ' JOIN clients cl ON cl.id = r.client_id',
    ),
    'card_reveals': (
        'id::text',
        'SELECT v.id::text AS row, cl.agency_id::text AS agency FROM card_reveals v'
        ' JOIN redemptions r ON r.id = v.redemption_id JOIN clients cl ON cl.id = r.client_id',
    ),
    'alert_thresholds': (
        "entity_type || ':' || coalesce(entity_id::text, 'default')",
        f"SELECT t.entity_type || ':' || coalesce(t.entity_id::text, 'default') AS row, {_ENTITY_AGENCY} AS agency"
        ' FROM alert_thresholds t',
    ),
    'system_alerts': ('id::text', f'SELECT t.id::text AS row, {_ENTITY_AGENCY} AS agency FROM system_alerts t'),
    'audit_events': ('id::text', f'SELECT t.id::text AS row, {_ENTITY_AGENCY} AS agency FROM audit_events t'),
    'deliveries': (
        'id::text',
        'SELECT d.id::text AS row, cl.agency_id::text AS agency FROM deliveries d'
        ' JOIN clients cl ON cl.id = d.client_id',
    ),
    'campaign_delivery_settings': (
        'campaign_id::text',
        'SELECT s.campaign_id::text AS row, cl.agency_id::text AS agency FROM campaign_delivery_settings s'
        ' JOIN clients cl ON cl.id = s.client_id',
    ),
    'sms_consents': (
        "client_id::text || ':' || phone",
        "SELECT c.client_id::text || ':' || c.phone AS row, cl.agency_id::text AS agency FROM sms_consents c"
        ' JOIN clients cl ON cl.id = c.client_id',
    ),
}
# Rows every scope that entered reads, whoever's they are: the system accounts (provisioning names the spend account
# it charges) and the default thresholds.
SHARED = {
    'credit_accounts': "SELECT id::text AS row FROM credit_accounts WHERE owner_type = 'system'",
    'alert_thresholds': "SELECT entity_type || ':default' AS row FROM alert_thresholds WHERE entity_id IS NULL",
}


@dataclass
class Tenants:
    a: ps.Setup
    b: ps.Setup
    a_code: str  # a code issued for A's campaign, not yet redeemed
    a_delivery: str  # A's delivery, sent by e-mail
    a_link: str  # the token of its link


def _tenant(owner: Any) -> ps.Setup:
    s = ps.setup(owner, funds_cents=100_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
    s.provision(ps.new_code())  # a redemption, its reveal, its charge
    # A delivery (sent: the local outbox), the campaign's delivery settings and an SMS opt-in.
    s.provision(ps.new_code(), delivery_method='email', delivery_address=ds.new_email())
    delivery_settings.set_campaign_content(s.tree.client_admin, s.campaign_id, 'link')
    delivery_settings.record_sms_consent(s.tree.client_admin, s.tree.client['id'], ds.new_phone(), 'signup form')
    code_administration.issue_codes(
        s.tree.client_admin, s.campaign_id, s.brand['id'], 2500, 2
    )  # codes and an audit event
    factories.fund(100, s.tree.agency['account_id'])
    request = allocation.MoveRequest('allocation', s.tree.agency['account_id'], s.tree.client['account_id'], 100)
    allocation.move_credit(s.tree.agency_admin, request, idempotency_key='rls')  # an idempotency key
    owner.run(
        'INSERT INTO alert_thresholds (entity_type, entity_id, low_balance_cents, updated_by)'
        " VALUES ('agency', CAST(:a AS uuid), 1, 'test')",
        a=s.tree.agency['id'],
    )
    owner.run(
        'INSERT INTO system_alerts (type, severity, entity_type, entity_id, message)'
        " VALUES ('low_balance', 'info', 'campaign', CAST(:c AS uuid), 'test')",
        c=s.campaign_id,
    )
    return s


@pytest.fixture(scope='module')
def tenants(database_url: str) -> Tenants:
    with db.owner_connection() as owner:
        a, b = _tenant(owner), _tenant(owner)
        batch = code_administration.issue_codes(a.tree.client_admin, a.campaign_id, a.brand['id'], 2500, 1)
        owner.run(
            'INSERT INTO redemption_attempts (at, source_ip, source_network, outcome, code_id)'
            " VALUES (now(), '203.0.113.9', '203.0.113.0/24', 'invalid_code', NULL)"
        )
    [delivery] = ds.deliveries_of(a.campaign_id)
    [message] = ds.messages_to(ds.delivery(delivery['id'])['address'])
    return Tenants(a, b, batch.codes[0], delivery['id'], ds.link_token(message))


def owned(table: str) -> dict[str, str | None]:
    """Every row of `table` and the agency it belongs to, as the owner sees them."""
    with db.owner_connection() as owner:
        return {row: agency for row, agency in owner.run(ROWS[table][1])}


def shared(table: str) -> set[str]:
    if table not in SHARED:
        return set()
    with db.owner_connection() as owner:
        return {row for (row,) in owner.run(SHARED[table])}


def seen(table: str, scope: db.Scope | None) -> set[str]:
    """The rows of `table` the application role reads in `scope` (None: none entered)."""
    with db.acting_as(None), db.UnitOfWork(scope=scope, read_only=True) as uow:
        return {r['row'] for r in uow.fetch(f'SELECT {ROWS.get(table, ("ctid::text", ""))[0]} AS row FROM {table}')}


def test_every_tenant_table_has_row_level_security_forced_and_every_other_table_is_named(owner: Any) -> None:
    tables = {
        name: (enabled, forced)
        for name, enabled, forced in owner.run(
            'SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c'
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
    }
    assert set(tables) == TENANT_TABLES | NOT_TENANT_TABLES, 'a new table must be placed in one of the two lists'
    assert {t for t, flags in tables.items() if flags == (True, True)} == TENANT_TABLES


def test_every_view_runs_with_its_callers_rights(owner: Any) -> None:
    views = owner.run(
        "SELECT c.relname, coalesce(c.reloptions, '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')"
    )
    assert [name for name, options in views if 'security_invoker=true' not in options] == []


@pytest.mark.parametrize('table', sorted(ROWS))
def test_an_agency_admin_sees_its_agencys_rows_and_no_others(tenants: Tenants, table: str) -> None:
    rows = owned(table)
    a, b = tenants.a.tree.agency['id'], tenants.b.tree.agency['id']
    assert any(agency == a for agency in rows.values()) and any(agency == b for agency in rows.values())

    visible = seen(table, db.Scope.of_subject(tenants.a.tree.agency_admin))

    assert visible == {row for row, agency in rows.items() if agency == a} | shared(table)


@pytest.mark.parametrize('table', sorted(ROWS))
def test_a_client_admin_sees_no_more_than_its_agency_admin(tenants: Tenants, table: str) -> None:
    rows = owned(table)
    a = tenants.a.tree

    visible = seen(table, db.Scope.of_subject(a.client_admin))

    assert visible - shared(table) <= {row for row, agency in rows.items() if agency == a.agency['id']}
    if table in ('clients', 'campaigns', 'redemptions', 'redemption_codes', 'card_reveals'):
        assert visible, f'the client admin sees its own {table}'
    if table == 'agencies':
        assert visible == set()  # the client's agency is administered by others


@pytest.mark.parametrize('table', sorted(TENANT_TABLES))
def test_without_a_scope_nothing_is_seen(tenants: Tenants, table: str, owner: Any) -> None:
    [[count]] = owner.run(f'SELECT count(*) FROM {table}')
    assert count > 0

    assert seen(table, None) == set()
    assert seen(table, db.Scope('subject:')) == set()
    assert seen(table, db.Scope('no-such-kind:x')) == set()


@pytest.mark.parametrize('table', sorted(TENANT_TABLES))
def test_a_platform_admin_sees_every_row(tenants: Tenants, table: str, owner: Any) -> None:
    [[count]] = owner.run(f'SELECT count(*) FROM {table}')
    with db.acting_as(None), db.UnitOfWork(scope=db.Scope.of_subject(tenants.a.admin), read_only=True) as uow:
        assert uow.value(f'SELECT count(*) FROM {table}') == count


def test_a_subject_sees_its_own_memberships_and_idempotency_keys_only(tenants: Tenants) -> None:
    a = tenants.a.tree
    scope = db.Scope.of_subject(a.agency_admin)
    with db.acting_as(None), db.UnitOfWork(scope=scope, read_only=True) as uow:
        assert {r['subject'] for r in uow.fetch('SELECT subject FROM memberships')} == {a.agency_admin}
        assert {r['scope'] for r in uow.fetch('SELECT scope FROM idempotency_keys')} == {a.agency_admin}
        assert uow.fetch('SELECT id FROM redemption_attempts') == []


def test_the_monitor_sees_what_it_checks_and_none_of_the_tenants_secrets(tenants: Tenants, owner: Any) -> None:
    for table in (
        'agencies',
        'clients',
        'campaigns',
        'credit_accounts',
        'credit_transfers',
        'credit_entries',
        'redemptions',
        'alert_thresholds',
        'system_alerts',
        'redemption_codes',  # hashes only: a campaign's cheapest card is priced from the brands of its issued codes
        'deliveries',  # the outbox it sweeps, and the failures it alerts on
    ):
        [[count]] = owner.run(f'SELECT count(*) FROM {table}')
        assert len(seen(table, db.MONITOR)) == count, table
    for table in (
        'memberships',
        'idempotency_keys',
        'card_reveals',
        'redemption_attempts',
        'audit_events',
        'campaign_delivery_settings',
        'sms_consents',
    ):
        assert seen(table, db.MONITOR) == set(), table


def test_the_redeem_page_sees_its_codes_client_only(tenants: Tenants) -> None:
    a = tenants.a
    _, digest = codes.lookup_hash(tenants.a_code)
    scope = db.Scope.redeeming(digest)

    assert seen('clients', scope) == {a.tree.client['id']}
    assert seen('campaigns', scope) == {c for c, agency in owned('campaigns').items() if c == a.campaign_id}
    # The codes of that client's campaigns (stored as hashes), none of another client's.
    assert seen('redemption_codes', scope) == {
        row for row, agency in owned('redemption_codes').items() if agency == a.tree.agency['id']
    }
    with db.acting_as(None), db.UnitOfWork(scope=scope, read_only=True) as uow:
        assert uow.value('SELECT count(*) FROM redemption_attempts') > 0  # counted for the rate limit
    assert seen('agencies', scope) == set()
    assert seen('memberships', scope) == set()
    # A code nobody issued enters a scope that sees no tenant at all.
    assert seen('clients', db.Scope.redeeming(codes.lookup_hash('NOPE-NOPE-NOPE')[1])) == set()


# --- delivering cards (migration 0025): the deliver function and the redeem page's links ----------------------


def _delivery_scope(tenants: Tenants, kind: str) -> db.Scope:
    """A's delivery, as the deliver function sends it or hears about it, or as its link names it."""
    return {
        'sending': db.Scope.delivering(tenants.a_delivery),
        'hearing back': db.Scope.of_provider_message(ds.delivery(tenants.a_delivery)['provider_message_id']),
        'its link': db.Scope.of_link(delivery_links.token_hash(tenants.a_link)),
    }[kind]


@pytest.mark.parametrize('kind', ['sending', 'hearing back', 'its link'])
def test_a_deliverys_scope_sees_its_client_and_nothing_of_another_tenant(tenants: Tenants, kind: str) -> None:
    a = tenants.a.tree
    scope = _delivery_scope(tenants, kind)

    for table in ('deliveries', 'sms_consents', 'campaign_delivery_settings', 'redemptions', 'campaigns'):
        assert seen(table, scope) == {row for row, agency in owned(table).items() if agency == a.agency['id']}, table
    assert seen('clients', scope) == {a.client['id']}
    assert seen('agencies', scope) == seen('memberships', scope) == seen('idempotency_keys', scope) == set()


def test_a_delivery_scope_that_names_no_delivery_sees_no_tenant(tenants: Tenants) -> None:
    """STOP and START replies concern no tenant (`delivery:`), and a scope naming what does not exist sees none."""
    scopes = [
        db.Scope.delivering(),
        db.Scope.delivering(str(uuid.uuid4())),
        db.Scope('delivery:not-a-delivery'),
        db.Scope.of_provider_message('no-such-message'),
        db.Scope.of_link(delivery_links.token_hash('x' * 43)),
    ]
    for scope in scopes:
        for table in sorted(TENANT_TABLES):
            assert seen(table, scope) - shared(table) == set(), (scope, table)


# Writes aimed at tenant B in agency A's scope: an UPDATE finds no row; an INSERT is refused.
_UPDATES = {
    'campaign': "UPDATE campaigns SET status = 'paused', paused_reason = 'manual' WHERE id = CAST(:b AS uuid)"
    ' RETURNING id',
    'redemption': 'UPDATE redemptions SET updated_at = now() WHERE client_id = CAST(:b AS uuid) RETURNING id',
    'code': "UPDATE redemption_codes SET status = 'void', voided_at = now() WHERE campaign_id = CAST(:b AS uuid)"
    ' RETURNING id',
    'threshold': 'DELETE FROM alert_thresholds WHERE entity_id = CAST(:b AS uuid) RETURNING entity_id',
    'delivery': 'UPDATE deliveries SET updated_at = now() WHERE client_id = CAST(:b AS uuid) RETURNING id',
}
_INSERTS = {
    'account': "INSERT INTO credit_accounts (owner_type, owner_id, parent_id) VALUES ('client', gen_random_uuid(),"
    ' CAST(:b AS uuid))',
    'threshold': 'INSERT INTO alert_thresholds (entity_type, entity_id, low_balance_cents, updated_by)'
    " VALUES ('client', CAST(:b AS uuid), 1, 'x')",
    'reveal': 'INSERT INTO card_reveals (redemption_id, card_id, channel) SELECT CAST(:b AS uuid), gen_random_uuid(),'
    " 'api'",
    'sms_consent': 'INSERT INTO sms_consents (client_id, phone, opted_in_at, source, recorded_by)'
    " VALUES (CAST(:b AS uuid), '+14155550100', now(), 'x', 'x')",
}


@pytest.mark.parametrize('what', sorted(_UPDATES))
def test_an_update_aimed_at_another_tenant_touches_nothing(tenants: Tenants, what: str, owner: Any) -> None:
    b = tenants.b
    target = {
        'campaign': b.campaign_id,
        'redemption': b.tree.client['id'],
        'code': b.campaign_id,
        'threshold': b.tree.agency['id'],
        'delivery': b.tree.client['id'],
    }[what]
    before = owned('campaigns'), ps.query("SELECT count(*) AS n FROM redemption_codes WHERE status = 'void'")
    with db.acting_as(None), db.UnitOfWork(scope=db.Scope.of_subject(tenants.a.tree.agency_admin)) as uow:
        assert uow.fetch(_UPDATES[what], b=target) == []
        uow.commit()
    assert (owned('campaigns'), ps.query("SELECT count(*) AS n FROM redemption_codes WHERE status = 'void'")) == before
    assert owner.run('SELECT status FROM campaigns WHERE id = CAST(:c AS uuid)', c=b.campaign_id) == [['active']]


@pytest.mark.parametrize('what', sorted(_INSERTS))
def test_an_insert_for_another_tenant_is_refused(tenants: Tenants, what: str) -> None:
    b = tenants.b
    target = {
        'account': b.tree.client['account_id'],
        'threshold': b.tree.client['id'],
        'reveal': ps.redemptions_of(b.campaign_id)[0]['id'],
        'sms_consent': b.tree.client['id'],
    }[what]
    scope = db.Scope.of_subject(tenants.a.tree.agency_admin)
    with db.acting_as(None), db.UnitOfWork(scope=scope) as uow, pytest.raises(DatabaseError, match='row-level'):
        uow.execute(_INSERTS[what], b=target)


def test_a_scope_lasts_for_its_transaction_only(tenants: Tenants) -> None:
    scope = db.Scope.of_subject(tenants.a.tree.agency_admin)
    with db.acting_as(None):
        with db.UnitOfWork(scope=scope) as uow:
            assert uow.value('SELECT count(*) FROM agencies') == 1
            uow.commit()
        # The same connection, next transaction: nothing of the scope is left (set_config(..., true) only).
        with db.UnitOfWork() as uow:
            assert uow.value('SELECT count(*) FROM agencies') == 0
            assert uow.value("SELECT coalesce(current_setting('giftcards.agencies', true), '')") in ('', '{}')
        assert db.read(('SELECT count(*) AS n FROM clients', {}))[0] == [{'n': 0}]


def test_the_scope_functions_with_elevated_rights_pin_their_search_path_and_only_the_application_runs_them(
    owner: Any,
) -> None:
    rows = owner.run(
        "SELECT p.proname, p.prosecdef, coalesce(p.proconfig, '{}'), has_function_privilege('public', p.oid, 'EXECUTE')"
        " FROM pg_proc p WHERE p.proname IN ('gc_enter', 'gc_parent_accounts', 'raise_system_alert', 'gc_flag',"
        " 'gc_ids', 'gc_text')"
    )
    assert {name for name, definer, _, _ in rows if definer} == {'gc_enter', 'gc_parent_accounts', 'raise_system_alert'}
    for name, definer, config, public in rows:
        if definer:
            assert any(c.startswith('search_path=') for c in config), name
            assert not public, f'{name} runs with elevated rights and may be executed by anyone'
        else:
            assert config == [], f'{name} is inlined into each statement only without a SET clause'


def test_a_factory_subject_who_is_nobody_enters_a_scope_that_sees_nothing(tenants: Tenants) -> None:
    assert seen('agencies', db.Scope.of_subject(factories.stranger())) == set()
