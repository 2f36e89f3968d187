"""Demo data for `make dev` / `giftcard demo`: one branch of the hierarchy, funded, a stocked CSV pool, codes.

Loading twice reuses what the first load made (found by name) and only issues fresh redemption codes,
which are shown once and stored as keyed hashes.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
from typing import Any

from giftcard_local import app_clients, cli, embedded, tokens

AGENCY = 'Acme Marketing (demo)'
CLIENT = 'Bright Coffee (demo)'
ISOLATED = 'Spring promo (isolated budget)'
SHARED = 'Loyalty rewards (shared budget)'
BRAND = 'Demo Books'
SUBJECTS = {
    'platform_admin': 'demo-platform-admin',
    'agency_admin': 'demo-agency-admin',
    'client_admin': 'demo-client-admin',
    'client_integration': 'demo-integration',
}
DEMO_CARDS = 60


def _find(table: str, name: str, **scope: str) -> str | None:
    from giftcards import db

    where = ' AND '.join([f'{table}.name = :name', *(f'{col} = CAST(:{col} AS uuid)' for col in scope)])
    with db.UnitOfWork() as uow:
        found = uow.value(f'SELECT id::text FROM {table} WHERE {where} ORDER BY created_at LIMIT 1', name=name, **scope)
    return str(found) if found else None


def _csv(count: int) -> io.BytesIO:
    lines = ['card_code,card_number,pin']
    lines += [
        f'DEMO-{secrets.token_hex(6).upper()},{secrets.randbelow(10**16):016d},{secrets.randbelow(10**4):04d}'
        for _ in range(count)
    ]
    return io.BytesIO(('\n'.join(lines) + '\n').encode())


def _grant(role: str, *, agency_id: str | None = None, client_id: str | None = None) -> None:
    from giftcards import db, memberships

    with db.owner_connection() as conn:
        memberships.grant(conn, SUBJECTS[role], role, agency_id=agency_id, client_id=client_id)


def _build() -> dict[str, str]:
    """The demo entities, created on first load. Answers their ids."""
    from giftcards import db

    admin = SUBJECTS['platform_admin']
    _grant('platform_admin')
    # What the demo reads for itself (does it exist yet?), it reads as the demo's platform admin.
    with db.acting_as(db.Scope.of_subject(admin)):
        return _build_as(admin)


def _build_as(admin: str) -> dict[str, str]:
    from giftcards import allocation, card_import, db, hierarchy, pools

    ids: dict[str, str] = {}
    agency_id = _find('agencies', AGENCY)
    if agency_id is None:
        agency_id = hierarchy.create_agency(admin, AGENCY).id
    ids['agency_id'] = agency_id
    _grant('agency_admin', agency_id=agency_id)
    ids['client_id'] = (
        _find('clients', CLIENT, agency_id=agency_id)
        or hierarchy.create_client(SUBJECTS['agency_admin'], agency_id, CLIENT).id
    )
    _grant('client_admin', client_id=ids['client_id'])
    _grant('client_integration', client_id=ids['client_id'])
    ids['campaign_id'] = (
        _find('campaigns', ISOLATED, client_id=ids['client_id'])
        or hierarchy.create_campaign(SUBJECTS['client_admin'], ids['client_id'], ISOLATED, 'isolated').id
    )
    ids['shared_campaign_id'] = (
        _find('campaigns', SHARED, client_id=ids['client_id'])
        or hierarchy.create_campaign(SUBJECTS['client_admin'], ids['client_id'], SHARED, 'shared').id
    )
    brand_id = _find('brands', BRAND)
    if brand_id is None:
        # The seed's price list: a $25 card charged at $27.50 to clients, $26.00 to agencies.
        prices = [hierarchy.Price(2500, agency_price_cents=2600, client_price_cents=2750)]
        brand_id = hierarchy.create_brand(admin, BRAND, [2500, 5000], prices).id
    ids['brand_id'] = brand_id
    with db.UnitOfWork() as uow:
        pool_id = uow.value(
            'SELECT id::text FROM card_pools WHERE brand_id = CAST(:b AS uuid) AND denomination_cents = 2500 LIMIT 1',
            b=brand_id,
        )
    if pool_id is None:
        request = pools.PoolRequest(brand_id=brand_id, denomination=25, cost_per_card=23.5)  # type: ignore[arg-type]
        pool_id = db.in_transaction(lambda uow: pools.create_pool(uow, admin, request)).id
        card_import.import_cards(admin, str(pool_id), _csv(DEMO_CARDS))
    ids['pool_id'] = str(pool_id)
    accounts = _accounts(ids)
    if not _has_entries(accounts['agency']):
        for sender, source, target, cents in (
            (admin, accounts['platform'], accounts['agency'], 100_000_00),
            (SUBJECTS['agency_admin'], accounts['agency'], accounts['client'], 10_000_00),
            (SUBJECTS['client_admin'], accounts['client'], accounts['campaign'], 500_00),
        ):
            allocation.move_credit(sender, allocation.MoveRequest('allocation', source, target, cents, 'demo funding'))
    return ids


def _has_entries(account_id: str) -> bool:
    from giftcards import db

    with db.UnitOfWork() as uow:
        return bool(
            uow.value('SELECT EXISTS (SELECT 1 FROM credit_entries WHERE account_id = CAST(:a AS uuid))', a=account_id)
        )


def _accounts(ids: dict[str, str]) -> dict[str, str]:
    from giftcards import db

    with db.UnitOfWork() as uow:
        row = uow.fetch_one(
            "SELECT (SELECT id::text FROM credit_accounts WHERE owner_type = 'platform') AS platform,"
            ' (SELECT account_id::text FROM agencies WHERE id = CAST(:a AS uuid)) AS agency,'
            ' (SELECT account_id::text FROM clients WHERE id = CAST(:c AS uuid)) AS client,'
            ' (SELECT account_id::text FROM campaigns WHERE id = CAST(:k AS uuid)) AS campaign',
            a=ids['agency_id'],
            c=ids['client_id'],
            k=ids['campaign_id'],
        )
    assert row is not None
    return dict(row)


def load(codes: int = 3) -> dict[str, Any]:
    """Create (or find) the demo data; answers ids, fresh redemption codes and a bearer token per role."""
    from giftcards import code_administration

    embedded.database_url()
    ids = _build()
    batch = code_administration.issue_codes(SUBJECTS['client_admin'], ids['campaign_id'], ids['brand_id'], 2500, codes)
    app_clients.add(SUBJECTS['client_integration'])  # the demo integration's own app client
    return {
        **ids,
        'redemption_code': batch.codes[0],
        'more_codes': batch.codes[1:],
        'tokens': {
            role: tokens.issue_token(sub, client=role == 'client_integration') for role, sub in SUBJECTS.items()
        },
    }


def cmd_demo(args: argparse.Namespace) -> int:
    from giftcards import db
    from giftcards.migrations_runner import migrate

    embedded.database_url()
    with db.owner_connection() as conn:
        migrate(conn)
    data = load()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for key, value in data.items():
        if key != 'tokens':
            print(f'{key}: {value}')
    for role, token in data['tokens'].items():
        print(f'export {role.upper()}_TOKEN={token}')
    return 0


def _register(sub: cli.Commands) -> None:
    demo = sub.add_parser('demo', help='load demo data; print tokens and a redemption code')
    demo.add_argument('--json', action='store_true', help='print the result as JSON')


cli.EXTENSIONS.append(_register)
cli.COMMANDS['demo'] = cmd_demo
