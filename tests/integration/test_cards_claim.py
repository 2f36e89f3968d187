"""Claiming CSV cards, storing vendor cards, and revealing them: each card sold once, secrets bound to their card."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from giftcards import card_claims, card_import, card_secrets, db, errors, pools

from tests import factories


def new_code() -> str:
    return 'ZQ' + uuid.uuid4().hex[:14].upper()


def new_pool(admin: str, brand_id: str, cost: str, denomination: str = '25') -> str:
    request = pools.PoolRequest.model_validate(
        {'brand_id': brand_id, 'denomination': Decimal(denomination), 'cost_per_card': Decimal(cost)}
    )
    return str(db.in_transaction(lambda uow: pools.create_pool(uow, admin, request)).id)


def fill(admin: str, pool_id: str, count: int) -> list[str]:
    """Import `count` new cards into the pool; answers their codes."""
    codes = [new_code() for _ in range(count)]
    rows = ''.join(f'{code},6006{i:012d},{i:04d},2032-06-30\n' for i, code in enumerate(codes))
    card_import.import_cards(admin, pool_id, io.BytesIO(f'card_code,card_number,pin,expires_on\n{rows}'.encode()))
    return codes


def claim(brand_id: str, denomination_cents: int = 2500) -> card_claims.ClaimedCard | None:
    return db.in_transaction(lambda uow: card_claims.claim_card(uow, brand_id, denomination_cents))


def reveal(card_id: str) -> card_secrets.RevealedCard:
    return db.in_transaction(lambda uow: card_secrets.reveal_card(uow, card_id))


def card_row(owner: Any, card_id: str) -> dict[str, Any]:
    [[status, claimed_at, listed]] = owner.run(
        'SELECT status, claimed_at, EXISTS (SELECT 1 FROM available_cards a WHERE a.card_id = c.id)'
        ' FROM cards c WHERE id = CAST(:id AS uuid)',
        id=card_id,
    )
    return {'status': status, 'claimed_at': claimed_at, 'listed': listed}


@pytest.fixture
def admin(owner: Any) -> str:
    return factories.platform_admin(owner)


@pytest.fixture
def brand() -> dict[str, Any]:
    return factories.brand(denominations_cents=(2500, 5000))


# --- claim ---------------------------------------------------------------------------------------------


def test_claims_come_from_the_cheapest_pool_with_stock(admin, brand):
    dear = new_pool(admin, brand['id'], '24.00')
    cheap = new_pool(admin, brand['id'], '23.00')
    middle = new_pool(admin, brand['id'], '23.50')
    empty_cheapest = new_pool(admin, brand['id'], '20.00')
    for pool_id in (dear, cheap, middle):
        fill(admin, pool_id, 1)

    claimed = [claim(brand['id']) for _ in range(4)]

    assert [(c.pool_id, c.cost_basis_cents, c.source) for c in claimed[:3] if c] == [
        (cheap, 2300, 'csv'),
        (middle, 2350, 'csv'),
        (dear, 2400, 'csv'),
    ]
    assert claimed[3] is None
    assert empty_cheapest not in {c.pool_id for c in claimed[:3] if c}


def test_a_claimed_card_is_marked_and_leaves_the_stock(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 3)

    claimed = claim(brand['id'])

    assert claimed is not None
    row = card_row(owner, claimed.card_id)
    assert (row['status'], row['listed']) == ('claimed', False)
    assert row['claimed_at'] is not None
    pool = db.in_transaction(lambda uow: pools.get_pool(uow, admin, pool_id))
    assert (pool.available, pool.claimed) == (2, 1)


def test_a_claim_rolled_back_leaves_the_card_in_stock(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 1)

    with db.UnitOfWork() as uow:
        claimed = card_claims.claim_card(uow, brand['id'], 2500)
    assert claimed is not None

    assert card_row(owner, claimed.card_id) == {'status': 'available', 'claimed_at': None, 'listed': True}
    assert claim(brand['id']) == claimed


def test_only_the_requested_brand_and_denomination_are_claimed(admin, brand):
    fill(admin, new_pool(admin, brand['id'], '47.00', denomination='50'), 1)
    fill(admin, new_pool(admin, factories.brand(denominations_cents=(2500,))['id'], '23.00'), 1)

    assert claim(brand['id'], 2500) is None
    fifty = claim(brand['id'], 5000)
    assert fifty is not None and fifty.cost_basis_cents == 4700


def test_every_card_of_a_pool_is_claimed_exactly_once(admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 30)

    claimed = [claim(brand['id']) for _ in range(31)]

    ids = [c.card_id for c in claimed if c]
    assert len(ids) == len(set(ids)) == 30
    assert claimed[30] is None


def test_twenty_concurrent_claims_on_ten_cards_take_each_card_once(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 10)
    barrier = threading.Barrier(20)
    results: list[card_claims.ClaimedCard | None] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            with db.UnitOfWork() as uow:  # each thread has its own connection
                barrier.wait(timeout=30)
                claimed = card_claims.claim_card(uow, brand['id'], 2500)
                time.sleep(0.05)  # hold the row locks while the others claim
                uow.commit()
            with lock:
                results.append(claimed)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            db.reset_connections()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    won = [c.card_id for c in results if c is not None]
    assert len(won) == len(set(won)) == 10
    assert results.count(None) == 10
    [[claimed, listed]] = owner.run(
        "SELECT count(*) FILTER (WHERE status = 'claimed'),"
        ' (SELECT count(*) FROM available_cards WHERE pool_id = CAST(:p AS uuid))'
        ' FROM cards WHERE pool_id = CAST(:p AS uuid)',
        p=pool_id,
    )
    assert (claimed, listed) == (10, 0)


def test_a_claimed_card_cannot_be_claimed_again_even_by_hand(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 1)
    claimed = claim(brand['id'])
    assert claimed is not None

    with db.UnitOfWork() as uow, pytest.raises(errors.ValidationFailed) as refused:
        uow.execute(
            "UPDATE cards SET status = 'available', claimed_at = NULL WHERE id = CAST(:id AS uuid)", id=claimed.card_id
        )
    assert refused.value.code == 'card_already_claimed'


# --- reveal --------------------------------------------------------------------------------------------


def test_a_claimed_card_reveals_exactly_what_was_imported(admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    [code] = fill(admin, pool_id, 1)
    claimed = claim(brand['id'])
    assert claimed is not None

    card = reveal(claimed.card_id)

    assert (card.card_code, card.card_number, card.pin) == (code, '6006000000000000', '0000')
    assert (card.expires_on, card.code_last4, card.number_last4) == (date(2032, 6, 30), code[-4:], '0000')
    assert (card.card_id, card.brand_id, card.denomination_cents, card.source) == (
        claimed.card_id,
        brand['id'],
        2500,
        'csv',
    )
    assert code not in repr(card)


def test_a_card_in_stock_is_not_revealed(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 1)
    [[card_id]] = owner.run('SELECT id::text FROM cards WHERE pool_id = CAST(:p AS uuid)', p=pool_id)

    with pytest.raises(errors.Conflict) as refused:
        reveal(card_id)
    assert refused.value.code == 'card_not_claimed'


@pytest.mark.parametrize('card_id', [str(uuid.uuid4()), 'nope'])
def test_an_unknown_card_is_not_found(database_url, card_id):
    with pytest.raises(errors.NotFound):
        reveal(card_id)


def test_a_ciphertext_moved_to_another_card_does_not_decrypt(owner, admin, brand):
    pool_id = new_pool(admin, brand['id'], '23.50')
    fill(admin, pool_id, 2)  # one import: both cards sealed under the same data key
    [[first], [second]] = owner.run('SELECT id::text FROM cards WHERE pool_id = CAST(:p AS uuid)', p=pool_id)

    owner.run(  # the owner role swaps the two codes' ciphertexts
        'UPDATE cards SET code_sealed = CASE id WHEN CAST(:a AS uuid) THEN b.code_sealed ELSE a.code_sealed END'
        ' FROM (SELECT code_sealed FROM cards WHERE id = CAST(:a AS uuid)) a,'
        '      (SELECT code_sealed FROM cards WHERE id = CAST(:b AS uuid)) b'
        ' WHERE id IN (CAST(:a AS uuid), CAST(:b AS uuid))',
        a=first,
        b=second,
    )
    assert {c.card_id for c in (claim(brand['id']), claim(brand['id'])) if c} == {first, second}

    for card_id in (first, second):
        with pytest.raises(card_secrets.CardIntegrityError) as refused:
            reveal(card_id)
        assert refused.value.code == 'card_integrity_error'


# --- vendor cards --------------------------------------------------------------------------------------


def store(brand_id: str, **overrides: Any) -> str:
    values: dict[str, Any] = {
        'brand_id': brand_id,
        'denomination_cents': 2500,
        'vendor': 'tango',
        'vendor_reference': f'RA{uuid.uuid4().hex[:10]}',
        'card_code': new_code(),
        'card_number': '4000123412341234',
        'pin': '9876',
        'expires_on': '2033-03-31',
        'cost_cents': 2450,
        **overrides,
    }
    return db.in_transaction(lambda uow: card_claims.store_vendor_card(uow, **values))


def test_a_vendor_card_is_stored_claimed_and_reveals_its_secrets(owner, brand):
    code = new_code()
    card_id = store(brand['id'], card_code=code, vendor_reference='RA-001-' + code)

    [[source, status, vendor, reference, cost, pool]] = owner.run(
        'SELECT source, status, vendor, vendor_reference, cost_cents, pool_id FROM cards WHERE id = CAST(:id AS uuid)',
        id=card_id,
    )
    assert (source, status, vendor, reference, cost, pool) == ('api', 'claimed', 'tango', 'RA-001-' + code, 2450, None)
    card = reveal(card_id)
    assert (card.card_code, card.card_number, card.pin, card.expires_on) == (
        code,
        '4000123412341234',
        '9876',
        date(2033, 3, 31),
    )
    assert db.in_transaction(lambda uow: card_claims.find_vendor_card(uow, 'tango', 'RA-001-' + code)) == card_id


def test_vendor_cards_share_one_data_key_per_process(owner, brand):
    first, second = store(brand['id']), store(brand['id'])
    keys = owner.run(
        'SELECT DISTINCT key_id FROM cards WHERE id IN (CAST(:a AS uuid), CAST(:b AS uuid))', a=first, b=second
    )
    assert len(keys) == 1


def test_a_vendor_card_is_stored_once(brand):
    reference = f'RA{uuid.uuid4().hex[:10]}'
    store(brand['id'], vendor_reference=reference)
    with pytest.raises(errors.Conflict) as refused:
        store(brand['id'], vendor_reference=reference)
    assert refused.value.code == 'duplicate_card'


def test_an_unreadable_vendor_expiry_does_not_lose_the_card(brand):
    card_id = store(brand['id'], expires_on='end of next year', card_number=None, pin=None)
    card = reveal(card_id)
    assert (card.expires_on, card.card_number, card.pin) == (None, None, None)


# --- display -------------------------------------------------------------------------------------------


def test_a_masked_card_shows_at_most_the_last_four_characters(brand):
    code = new_code()
    card = reveal(store(brand['id'], card_code=code))

    shown = card_secrets.masked_card(card)

    assert shown == {'card_code': f'****{code[-4:]}', 'card_number': '****1234', 'expires_on': '2033-03-31'}
    assert card_secrets.masked_card({'code_last4': 'WXYZ', 'number_last4': None}) == {
        'card_code': '****WXYZ',
        'card_number': None,
        'expires_on': None,
    }
