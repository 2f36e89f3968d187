"""The claim keeps an index path on a pool that was just imported and never analysed (see bench/README.md).

The trap this guards against: with a prepared statement on a freshly filled pool, the planner once chose a path
that walked past every card already claimed, so each claim got slower than the one before. The claim reads
`available_cards` through its primary key; these tests look at the plans PostgreSQL actually uses (custom and
generic, before and after 2,000 claims through one prepared statement) and at the buffers one claim touches.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from giftcards import card_import, db, pools

from tests import factories

POOL_SIZE = 20_000
CLAIMS = 2_000
NIL = '00000000-0000-0000-0000-000000000000'
TABLES = ('cards', 'available_cards')


def claim_from_pool(conn: Any) -> str:
    """The claim from one pool as claim_card holds it (migration 0018), its pool and start numbered $1 and $2."""
    [[body]] = conn.run("SELECT prosrc FROM pg_proc WHERE proname = 'claim_card'")
    match = re.search(r'-- the claim from one pool\s+RETURN QUERY\s+(.*?);', body, re.S)
    assert match is not None, 'claim_card no longer holds the claim from one pool where this test looks'
    return re.sub(r'\bv_start\b', '$2', re.sub(r'\bv_pool\b', '$1', match.group(1)))


# The claim statements, for PREPARE with positional parameters, and how to EXECUTE them for a pool and a start key:
# the claim from one pool (the statement claim_card runs for each pool), and the whole claim (claim_card: the
# cheapest pool with stock, then its claim), whose statements PL/pgSQL keeps prepared for the session.
STATEMENTS = {
    'from_pool': (
        '(uuid, uuid)',
        claim_from_pool,
        lambda pool, start: f"'{pool['id']}', '{start}'",
    ),
    'claim_card': (
        '(uuid, bigint, uuid)',
        lambda conn: 'SELECT card_id FROM claim_card($1, $2, $3)',
        lambda pool, start: f"'{pool['brand_id']}', {pool['denomination_cents']}, '{start}'",
    ),
}


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get('Plans', []):
        yield from nodes(child)


def execute(conn: Any, pool: dict[str, Any], start: str) -> str:
    return f'EXECUTE claim_card({STATEMENTS[conn.statement][2](pool, start)})'


def explain(conn: Any, options: str, pool: dict[str, Any], start: str) -> dict[str, Any]:
    [[document]] = conn.run(f'EXPLAIN ({options}, FORMAT JSON) {execute(conn, pool, start)}')
    document = json.loads(document) if isinstance(document, str) else document
    return document[0]['Plan']


def assert_index_path(plan: dict[str, Any]) -> None:
    """The card to lock is found in available_cards' primary key by pool; the card row is then read by its id."""
    scans = [n for n in nodes(plan) if 'Scan' in n['Node Type'] and n.get('Relation Name') in TABLES]
    shapes = [(n['Node Type'], n['Relation Name'], n.get('Index Name'), n.get('Index Cond', '')) for n in scans]
    assert all(n['Node Type'] in ('Index Scan', 'Index Only Scan') for n in scans), shapes
    [locking] = [n for n in nodes(plan) if n['Node Type'] == 'LockRows']
    [found] = locking['Plans']
    assert (found['Relation Name'], found['Index Name']) == ('available_cards', 'available_cards_pkey'), shapes
    assert 'pool_id =' in found['Index Cond'], shapes
    card_reads = [n for n in scans if n['Relation Name'] == 'cards']
    assert card_reads and all(n['Index Cond'].startswith('(id = ') for n in card_reads), shapes


def buffers(plan: dict[str, Any]) -> int:
    return int(plan['Shared Hit Blocks'] + plan['Shared Read Blocks'])


@pytest.fixture
def fresh_pool(owner: Any) -> dict[str, Any]:
    """A pool of POOL_SIZE cards just imported: nothing has analysed the tables since."""
    admin = factories.platform_admin(owner)
    brand = factories.brand(denominations_cents=(2500,))
    request = pools.PoolRequest.model_validate(
        {'brand_id': brand['id'], 'denomination': Decimal(25), 'cost_per_card': Decimal('23.50')}
    )
    pool = db.in_transaction(lambda uow: pools.create_pool(uow, admin, request))
    rows = ''.join(f'PL{uuid.uuid4().hex[:16]},{i}\n' for i in range(POOL_SIZE))
    card_import.import_cards(admin, pool.id, io.BytesIO(f'card_code,card_number\n{rows}'.encode()))
    return {'id': pool.id, 'brand_id': pool.brand_id, 'denomination_cents': pool.denomination_cents}


def prepared(statement: str) -> Iterator[Any]:
    """The application role's own connection, with a claim statement prepared as one named statement."""
    conn = db.connect('app')
    types, sql, _ = STATEMENTS[statement]
    conn.run(f'PREPARE claim_card {types} AS {sql(conn)}')
    conn.statement = statement
    yield conn
    conn.close()


@pytest.fixture
def app_conn(database_url: str) -> Iterator[Any]:
    yield from prepared('from_pool')


@pytest.fixture
def claim_conn(database_url: str) -> Iterator[Any]:
    yield from prepared('claim_card')


def claim_once(conn: Any, pool: dict[str, Any]) -> str:
    """One claim in its own transaction, as `claims.claim_card` runs it: a random start, then from the start."""
    for start in (str(uuid.uuid4()), NIL):
        rows = conn.run(execute(conn, pool, start))
        if rows:
            return str(rows[0][0])
    raise AssertionError('the pool ran out of cards')


@pytest.mark.slow
def test_claim_plan_stays_an_index_path_on_a_fresh_unanalysed_pool(app_conn, fresh_pool):
    pool = fresh_pool
    for mode in ('force_custom_plan', 'force_generic_plan'):
        app_conn.run(f'SET plan_cache_mode = {mode}')
        assert_index_path(explain(app_conn, 'COSTS OFF', pool, str(uuid.uuid4())))
    app_conn.run('RESET plan_cache_mode')

    early = measured_claim(app_conn, pool, claims=10)
    late = measured_claim(app_conn, pool, claims=CLAIMS - 10)

    # the plan the prepared statement has settled on after 2,000 executions, and what the next claim costs
    assert_index_path(explain(app_conn, 'COSTS OFF', pool, str(uuid.uuid4())))
    assert_index_path(late)
    # A claim touches a few index and heap pages, however many cards were claimed before it. A path past the
    # claimed cards would touch a page for every few dozen of them: hundreds here, and more with every claim.
    assert buffers(late) <= buffers(early) + 8, (buffers(early), buffers(late))
    assert buffers(late) < 40, buffers(late)


@pytest.mark.slow
def test_the_whole_claim_touches_as_few_pages_after_thousands_of_claims(claim_conn, fresh_pool):
    """claim_card as provisioning calls it: its statements, which PL/pgSQL keeps prepared for the session and plans
    generically after a few calls, keep touching a few pages, however many cards were claimed before."""
    early = measured_claim(claim_conn, fresh_pool, claims=10)
    late = measured_claim(claim_conn, fresh_pool, claims=CLAIMS - 10)

    assert buffers(late) <= buffers(early) + 8, (buffers(early), buffers(late))
    assert buffers(late) < 60, buffers(late)


def measured_claim(conn: Any, pool: dict[str, Any], *, claims: int) -> dict[str, Any]:
    """Claim `claims` more cards, then EXPLAIN ANALYZE one more claim (rolled back)."""
    taken = {claim_once(conn, pool) for _ in range(claims)}
    assert len(taken) == claims
    conn.run('BEGIN')
    plan = explain(conn, 'ANALYZE, BUFFERS', pool, str(uuid.uuid4()))
    conn.run('ROLLBACK')
    assert plan['Actual Rows'] == 1
    return plan


def test_claim_query_is_planned_before_any_statistics_exist(app_conn, owner):
    """Even with no pool rows at all analysed, the plan is the index path (no reliance on statistics)."""
    unknown = {'id': str(uuid.uuid4()), 'brand_id': str(uuid.uuid4()), 'denomination_cents': 2500}
    assert_index_path(explain(app_conn, 'COSTS OFF', unknown, NIL))
