"""Test helpers for provisioning: stocked pools, fake vendors wired in through VENDORS, provisioning calls, races,
and what the database holds about redemptions."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from giftcard_local.fake_vendors import FakeVendor, start_fake_vendor
from giftcards import card_import, db, pools, provisioning
from giftcards.config import get_settings
from giftcards.provisioning import ProvisionRequest, ProvisionResult

from tests import factories

T = TypeVar('T')


def dollars(cents: int) -> Decimal:
    return Decimal(cents) / 100


def new_code() -> str:
    return f'TEST-{uuid.uuid4().hex[:12].upper()}'


def pool(admin: str, brand_id: str, denomination_cents: int, cost_cents: int, count: int) -> str:
    """A pool of `count` fresh cards (codes `CARD-<hex>`); answers its id."""
    body = pools.PoolRequest.model_validate(
        {'brand_id': brand_id, 'denomination': dollars(denomination_cents), 'cost_per_card': dollars(cost_cents)}
    )
    created = db.in_transaction(lambda uow: pools.create_pool(uow, admin, body))
    if count:
        rows = ''.join(f'CARD-{uuid.uuid4().hex},{uuid.uuid4().int % 10**16:016d}\n' for _ in range(count))
        card_import.import_cards(admin, created.id, io.BytesIO(f'card_code,card_number\n{rows}'.encode()))
    return created.id


@dataclass(frozen=True)
class Setup:
    """A funded campaign, a brand with one denomination, and who may provision for it."""

    tree: factories.Tree
    brand: dict[str, Any]
    denomination_cents: int
    admin: str  # a platform admin (pools, imports)

    @property
    def campaign_id(self) -> str:
        return str(self.tree.campaign['id'])

    @property
    def paying_account(self) -> str:
        if self.tree.campaign['budget_mode'] == 'isolated':
            return str(self.tree.campaign['account_id'])
        return str(self.tree.client['account_id'])

    def request(self, code: str | None = None, **changes: Any) -> ProvisionRequest:
        fields: dict[str, Any] = {
            'campaign_id': self.campaign_id,
            'brand_id': self.brand['id'],
            'denomination_cents': self.denomination_cents,
            'redemption_code': code or new_code(),
            'source_ip': '198.51.100.4',
            'user_agent': 'pytest',
        }
        fields.update(changes)
        return ProvisionRequest(**fields)

    def provision(self, code: str | None = None, *, subject: str | None = None, **changes: Any) -> ProvisionResult:
        return provisioning.provision_gift_card(self.request(code, **changes), subject=subject or self.tree.integration)


def setup(
    owner: Any,
    *,
    budget_mode: str = 'isolated',
    funds_cents: int = 100_000,
    denomination_cents: int = 2500,
    prices: tuple[Any, ...] = (),
) -> Setup:
    tree = factories.hierarchy_tree(owner, budget_mode=budget_mode)  # type: ignore[arg-type]
    accounts = [tree.agency['account_id'], tree.client['account_id']]
    if budget_mode == 'isolated':
        accounts.append(tree.campaign['account_id'])
    if funds_cents:
        factories.fund(funds_cents, *accounts)
    brand = factories.brand(denominations_cents=(denomination_cents, denomination_cents * 2), prices=prices)
    return Setup(tree, brand, denomination_cents, factories.platform_admin(owner))


@contextmanager
def vendors(monkeypatch: pytest.MonkeyPatch, *fakes: FakeVendor, timeout_s: float = 1.0) -> Iterator[None]:
    """Point VENDORS at these fakes (Tango API), in this priority order."""
    config = [fake.tango_config(timeout_s=timeout_s) for fake in fakes]
    monkeypatch.setenv('VENDORS', json.dumps(config))
    get_settings.cache_clear()
    try:
        yield
    finally:
        monkeypatch.delenv('VENDORS')
        get_settings.cache_clear()


@contextmanager
def fake_vendors(monkeypatch: pytest.MonkeyPatch, *names: str, timeout_s: float = 1.0) -> Iterator[list[FakeVendor]]:
    """Fake vendors (names made unique, so that one test's pending redemptions never reach another's fakes),
    configured in this order."""
    fakes = [start_fake_vendor(factories.unique(name), client_timeout_s=timeout_s) for name in names]
    try:
        with vendors(monkeypatch, *fakes, timeout_s=timeout_s):
            yield fakes
    finally:
        for fake in fakes:
            fake.stop()


def query(sql: str, **params: Any) -> list[dict[str, Any]]:
    return db.in_transaction(lambda uow: uow.fetch(sql, **params))


def redemptions_of(campaign_id: str) -> list[dict[str, Any]]:
    return query(
        'SELECT id::text, status, source, card_id::text, vendor, vendor_key, charge_transfer_id::text,'
        ' refund_transfer_id::text, amount_charged_cents, cost_basis_cents, retried_by::text'
        ' FROM redemptions WHERE campaign_id = CAST(:c AS uuid) ORDER BY created_at',
        c=campaign_id,
    )


def assert_settled(campaign_id: str, *fakes: FakeVendor) -> None:
    """Every charged redemption of the campaign has exactly one card or a refund, no vendor sold a key twice,
    and the ledger checks clean."""
    for row in redemptions_of(campaign_id):
        assert (row['card_id'] is None) != (row['refund_transfer_id'] is None), row
        assert row['status'] == ('fulfilled' if row['card_id'] else 'failed'), row
        for fake in fakes:
            if row['vendor_key']:
                assert fake.sold_count(row['vendor_key']) <= 1, (fake.name, row)
        sold = sum(fake.sold_count(row['vendor_key']) for fake in fakes) if row['vendor_key'] else 0
        if row['source'] == 'api':
            assert sold == 1, row
        elif row['status'] == 'failed':
            assert sold == 0, row
    report = factories.ledger_check()
    assert report.ok, report.summary()
