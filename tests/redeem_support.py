"""Test helpers for redemption codes and the redeem routes: a funded campaign with a stocked pool, issued codes,
source addresses no other test uses, and what the database recorded about attempts and reveals."""

from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from giftcards import card_import, card_secrets, code_administration, codes, db, pools

from tests import factories


def unique_ip() -> str:
    """An IPv4 address (10.0.0.0/8) that no other test counts failures against."""
    return f'10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}'


def unique_ipv6_prefix() -> str:
    """The first four groups of an IPv6 /64 (2001:db8::/32) that no other test uses."""
    return f'2001:db8:{random.randrange(1, 65536):x}:{random.randrange(65536):x}'


@dataclass(frozen=True)
class Campaign:
    """A funded campaign whose brand offers $25 and $50 and has $25 cards in stock."""

    tree: factories.Tree
    brand: dict[str, Any]
    pool_id: str

    @property
    def id(self) -> str:
        return str(self.tree.campaign['id'])

    def issue(self, count: int = 1, denomination_cents: int = 2500) -> list[str]:
        batch = code_administration.issue_codes(
            self.tree.client_admin, self.id, self.brand['id'], denomination_cents, count
        )
        return batch.codes

    def stock(self, count: int, *, with_pin: bool = True) -> None:
        stock(self.tree.platform_admin, self.pool_id, count, with_pin=with_pin)

    def pause(self) -> None:
        set_campaign_status(self.id, 'paused')


def stock(admin: str, pool_id: str, count: int, *, with_pin: bool = True) -> None:
    header = 'card_code,card_number,pin\n' if with_pin else 'card_code,card_number\n'
    rows = ''.join(
        f'CARD-{uuid.uuid4().hex[:16].upper()},{uuid.uuid4().int % 10**16:016d}'
        + (f',{random.randrange(10**4):04d}\n' if with_pin else '\n')
        for _ in range(count)
    )
    card_import.import_cards(admin, pool_id, io.BytesIO((header + rows).encode()))


def campaign(owner: Any, *, cards_in_stock: int = 5, funds_cents: int = 100_000) -> Campaign:
    tree = factories.hierarchy_tree(owner)
    factories.fund(funds_cents, tree.agency['account_id'], tree.client['account_id'], tree.campaign['account_id'])
    brand = factories.brand(denominations_cents=(2500, 5000))
    pool = db.in_transaction(
        lambda uow: pools.create_pool(
            uow,
            tree.platform_admin,
            pools.PoolRequest.model_validate(
                {'brand_id': brand['id'], 'denomination': Decimal(25), 'cost_per_card': Decimal('23.5')}
            ),
        )
    )
    if cards_in_stock:
        stock(tree.platform_admin, pool.id, cards_in_stock)
    return Campaign(tree, brand, pool.id)


def set_campaign_status(campaign_id: str, status: str) -> None:
    db.in_transaction(
        lambda uow: uow.execute(
            'UPDATE campaigns SET status = :s,'
            " paused_reason = CASE WHEN :s = 'paused' THEN 'manual' END WHERE id = CAST(:id AS uuid)",
            s=status,
            id=campaign_id,
        )
    )


def attempts(ip: str) -> list[dict[str, Any]]:
    """What was recorded about attempts from `ip`, oldest first."""
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT host(source_ip) AS ip, CAST(source_network AS text) AS network, user_agent, outcome,'
            ' code_id::text FROM redemption_attempts WHERE source_ip = CAST(:ip AS inet) ORDER BY id',
            ip=ip,
        )
    )


def reveals(card_code: str) -> list[dict[str, Any]]:
    """The reveals recorded for the card with this code, oldest first."""
    return db.in_transaction(
        lambda uow: uow.fetch(
            'SELECT r.channel, r.subject, host(r.source_ip) AS ip, r.user_agent, r.redemption_id::text'
            ' FROM card_reveals r JOIN cards c ON c.id = r.card_id WHERE c.code_hash = :h ORDER BY r.id',
            h=card_secrets.code_hash(card_code),
        )
    )


def code_row(typed: str) -> dict[str, Any]:
    """The stored row of an issued code (found by its hash, as a customer's typing would be)."""
    _, digest = codes.lookup_hash(typed)
    row = db.in_transaction(
        lambda uow: uow.fetch_one('SELECT id::text, status, last4 FROM redemption_codes WHERE code_hash = :h', h=digest)
    )
    assert row is not None, 'no such code'
    return row
