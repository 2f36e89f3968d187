"""Upgrading a database in use: migration 0015 (rules as domains and row-rule functions) applied to a database that
already holds redemptions in every state, with their cards, reveals, charges and refunds."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pg8000.native
import pytest
from giftcards import db, errors, recovery
from giftcards.config import get_settings
from giftcards.migrations_runner import MIGRATIONS_DIR, migrate

from tests import provisioning_support as ps

LAST_BEFORE = 14  # the migrations up to 0014 make the database being upgraded


@pytest.fixture
def upgrading(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A separate database migrated up to 0014, which the application uses for the test (DATABASE_URL); answers
    an owner connection to it. Dropped afterwards."""
    name = f'gc_upgrade_{uuid.uuid4().hex[:10]}'
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    params = {**db.connection_params('owner'), 'database': name}
    owner = pg8000.native.Connection(**params)
    for path in sorted(MIGRATIONS_DIR.glob('*.sql')):
        if int(path.name[:4]) <= LAST_BEFORE:
            shutil.copy(path, tmp_path / path.name)
    migrate(owner, tmp_path)
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


def test_0015_upgrades_a_database_holding_redemptions_in_every_state(
    upgrading: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(upgrading, funds_cents=20_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    s.provision()  # from the pool: fulfilled, source csv
    with ps.fake_vendors(monkeypatch, 'tango-a', timeout_s=0.5) as (vendor,):
        retried = ps.new_code()
        vendor.set_mode('refuse')
        with pytest.raises(errors.FulfilmentUnavailable):
            s.provision(retried)  # failed and refunded
        vendor.set_mode('ok')
        s.provision(retried)  # the same code again: a new redemption, fulfilled by the vendor (source api)
        vendor.set_mode('timeout')
        with pytest.raises(errors.ServiceUnavailable):
            s.provision()  # pending: the vendor's answer never came
        before = ps.redemptions_of(s.campaign_id)
        assert sorted((r['status'], r['source']) for r in before) == [
            ('failed', None),
            ('fulfilled', 'api'),
            ('fulfilled', 'csv'),
            ('pending', None),
        ]

        applied = migrate(upgrading)

        later = [path.name for path in sorted(MIGRATIONS_DIR.glob('*.sql')) if int(path.name[:4]) > LAST_BEFORE]
        assert applied == later
        # The application's connection stays open across the upgrade, as a warm Lambda's would.
        assert ps.redemptions_of(s.campaign_id) == before
        assert upgrading.run("SELECT count(*) FROM pg_constraint WHERE conname = 'redemptions_rules'") == [[1]]
        vendor.set_mode('ok')
        db.in_transaction(
            lambda uow: uow.execute(
                "UPDATE redemptions SET next_attempt_at = now() WHERE id = CAST(:id AS uuid) AND status = 'pending'",
                id=next(r['id'] for r in before if r['status'] == 'pending'),
            )
        )
        assert len(recovery.recover_pending(older_than_s=0).fulfilled) == 1
        ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
        assert s.provision().redemption['status'] == 'fulfilled'
        ps.assert_settled(s.campaign_id, vendor)
