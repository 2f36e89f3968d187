"""CSV import into a card pool: streamed through COPY, checked as a whole, stored encrypted, all or nothing."""

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
    """A card code no other test uses, with letters outside 0-9a-f so that it cannot hide inside hex."""
    return 'ZQ' + uuid.uuid4().hex[:14].upper()


def new_pool(admin: str, brand: dict[str, Any], denomination: str = '25', cost: str = '23.50') -> pools.Pool:
    request = pools.PoolRequest.model_validate(
        {'brand_id': brand['id'], 'denomination': Decimal(denomination), 'cost_per_card': Decimal(cost)}
    )
    return db.in_transaction(lambda uow: pools.create_pool(uow, admin, request))


def import_text(admin: str, pool_id: str, text: str | bytes) -> int:
    data = text.encode() if isinstance(text, str) else text
    return card_import.import_cards(admin, pool_id, io.BytesIO(data))


def rejected(admin: str, pool_id: str, text: str | bytes) -> list[dict[str, Any]]:
    """The line-numbered problems of a file that must be refused."""
    with pytest.raises(errors.ValidationFailed) as refused:
        import_text(admin, pool_id, text)
    assert refused.value.status == 422
    assert refused.value.details
    return refused.value.details


def pool_cards(owner: Any, pool_id: str) -> list[dict[str, Any]]:
    rows = owner.run(
        'SELECT id::text, code_last4, number_last4, expires_on, status, source, cost_cents, pin_sealed IS NOT NULL'
        ' FROM cards WHERE pool_id = CAST(:p AS uuid) ORDER BY code_last4',
        p=pool_id,
    )
    names = ['id', 'code_last4', 'number_last4', 'expires_on', 'status', 'source', 'cost_cents', 'has_pin']
    return [dict(zip(names, row, strict=True)) for row in rows]


def stock(admin: str, pool_id: str) -> tuple[int, int]:
    """(available, claimed) as the pool answers them."""
    pool = db.in_transaction(lambda uow: pools.get_pool(uow, admin, pool_id))
    return pool.available, pool.claimed


def stored(code: str) -> bool:
    return bool(
        db.in_transaction(
            lambda uow: uow.value('SELECT count(*) FROM cards WHERE code_hash = :h', h=card_secrets.code_hash(code))
        )
    )


@pytest.fixture
def admin(owner: Any) -> str:
    return factories.platform_admin(owner)


@pytest.fixture
def pool(admin: str) -> pools.Pool:
    return new_pool(admin, factories.brand(denominations_cents=(2500, 5000)))


# --- a good file ---------------------------------------------------------------------------------------


def test_import_stores_every_card_in_the_pool_as_available(owner, admin, pool):
    codes = [new_code() for _ in range(3)]
    text = (
        'expires_on,pin,card_number,card_code\n'
        f'2031-12-31,4821,6006491234567890,{codes[0]}\n'
        f',,6006490000001111,{codes[1]}\n'
        f'2030-01-15,0007,,{codes[2]}\n'
    )

    assert import_text(admin, pool.id, text) == 3

    rows = {row['code_last4']: row for row in pool_cards(owner, pool.id)}
    assert set(rows) == {code[-4:] for code in codes}
    first, second, third = (rows[code[-4:]] for code in codes)
    assert (first['number_last4'], first['expires_on'], first['has_pin']) == ('7890', date(2031, 12, 31), True)
    assert (second['number_last4'], second['expires_on'], second['has_pin']) == ('1111', None, False)
    assert (third['number_last4'], third['expires_on'], third['has_pin']) == (None, date(2030, 1, 15), True)
    assert {(r['status'], r['source'], r['cost_cents']) for r in rows.values()} == {('available', 'csv', 2350)}
    assert stock(admin, pool.id) == (3, 0)
    listed = owner.run('SELECT count(*) FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool.id)
    assert listed == [[3]]


def test_a_file_of_many_batches_stores_every_card_once_with_its_own_values(monkeypatch, owner, admin, pool):
    monkeypatch.setattr(card_import, 'BATCH_PAGES', 1)  # a page of the staging table holds about 100 of these lines
    lines = {new_code(): (f'6006{i:012d}', f'{i:04d}') for i in range(1_000)}
    text = 'card_code,card_number,pin,expires_on\n' + ''.join(
        f'{code},{number},{pin},2031-12-31\n' for code, (number, pin) in lines.items()
    )

    assert import_text(admin, pool.id, text) == 1_000

    hashes = owner.run('SELECT code_hash FROM cards WHERE pool_id = CAST(:p AS uuid)', p=pool.id)
    assert sorted(bytes(h) for [h] in hashes) == sorted(card_secrets.code_hash(code) for code in lines)
    assert stock(admin, pool.id) == (1_000, 0)
    assert db.in_transaction(pools.check_inventory) == []
    for _ in range(5):
        claimed = db.in_transaction(lambda uow: card_claims.claim_card(uow, pool.brand_id, 2500))
        assert claimed is not None
        card = db.in_transaction(lambda uow, card_id=claimed.card_id: card_secrets.reveal_card(uow, card_id))
        assert (card.card_number, card.pin, card.expires_on) == (*lines[card.card_code], date(2031, 12, 31))


def test_a_second_file_adds_to_the_pool(admin, pool):
    import_text(admin, pool.id, f'card_code,card_number\n{new_code()},1\n')
    assert import_text(admin, pool.id, f'card_code,card_number\n{new_code()},2\n{new_code()},3\n') == 2
    assert stock(admin, pool.id) == (3, 0)


def test_crlf_line_endings_and_a_utf8_bom_are_read(owner, admin, pool):
    codes = [new_code(), new_code()]
    text = f'card_code,card_number,pin\r\n{codes[0]},1111222233334444,12\r\n{codes[1]},5555666677778888,34\r\n'

    assert import_text(admin, pool.id, b'\xef\xbb\xbf' + text.encode()) == 2

    assert all(stored(code) for code in codes)
    rows = pool_cards(owner, pool.id)
    assert sorted(r['number_last4'] for r in rows) == ['4444', '8888']


def test_values_are_trimmed_and_quoted_fields_are_read(admin, pool):
    code = new_code()
    assert import_text(admin, pool.id, f'card_code,card_number\n"  {code} ", "12,34"\n') == 1
    assert stored(code)


def test_no_card_secret_is_stored_in_plaintext(owner, admin, pool):
    code, number, pin = new_code(), 'NQ' + uuid.uuid4().hex[:14].upper(), 'PX' + uuid.uuid4().hex[:6].upper()
    import_text(admin, pool.id, f'card_code,card_number,pin\n{code},{number},{pin}\n')

    # Every column of every row (bytea as hex) of the tables the import writes, and of the whole audit trail.
    dumped = ' '.join(
        str(row[0])
        for table in ('cards', 'available_cards', 'card_data_keys', 'card_pools', 'audit_events')
        for row in owner.run(f'SELECT t::text FROM {table} t')
    )
    for secret in (code, number, pin):
        assert secret not in dumped
        assert secret.encode().hex() not in dumped
    assert code[-4:] in dumped  # the last 4 characters are kept for display


def test_import_is_logged_without_card_codes(caplog, admin, pool):
    code = new_code()
    with caplog.at_level('DEBUG'):
        import_text(admin, pool.id, f'card_code,card_number\n{code},1\n')
        rejected(admin, pool.id, f'card_code,card_number\n{code},1\n')

    logged = ' '.join(str(record.__dict__) for record in caplog.records)
    assert 'cards imported' in logged
    assert code not in logged


# --- a bad file: refused whole, with line numbers --------------------------------------------------------


def test_a_bad_file_imports_nothing_and_names_each_bad_line(admin, pool):
    good, twice = new_code(), new_code()
    text = (
        'card_code,card_number,expires_on\n'  # line 1
        f'{good},1,2031-01-01\n'  # 2
        f'{twice},2,\n'  # 3
        f'{new_code()},3,2031-01-01\n'  # 4
        f'{new_code()},4,2031-02-30\n'  # 5: no such date
        ',5,\n'  # 6: no code
        f'{twice},6,\n'  # 7: the code of line 3 again
    )

    details = rejected(admin, pool.id, text)

    assert details == [
        {'line': 5, 'message': 'expires_on is not a valid date written YYYY-MM-DD'},
        {'line': 6, 'message': 'card_code is empty'},
        {'line': 7, 'message': 'card_code duplicates the code on line 3'},
    ]
    assert not stored(good)
    assert stock(admin, pool.id) == (0, 0)


def test_a_bad_date_on_line_5_is_refused(admin, pool):
    rows = [f'{new_code()},1,2031-01-01\n' for _ in range(3)] + [f'{new_code()},1,2031-02-30\n']
    details = rejected(admin, pool.id, 'card_code,card_number,expires_on\n' + ''.join(rows))
    assert details == [{'line': 5, 'message': 'expires_on is not a valid date written YYYY-MM-DD'}]


def test_a_code_given_twice_is_refused_naming_both_lines(admin, pool):
    twice = new_code()
    rows = [new_code(), twice, new_code(), new_code(), new_code(), twice, new_code()]  # lines 2..8
    details = rejected(admin, pool.id, 'card_code,card_number\n' + ''.join(f'{code},1\n' for code in rows))
    assert details == [{'line': 7, 'message': 'card_code duplicates the code on line 3'}]
    assert stock(admin, pool.id) == (0, 0)


def test_a_code_given_twice_batches_apart_is_refused_naming_both_lines(monkeypatch, admin, pool):
    monkeypatch.setattr(card_import, 'BATCH_PAGES', 1)
    twice = new_code()
    rows = [twice, *(new_code() for _ in range(500)), twice]  # lines 2..503
    details = rejected(admin, pool.id, 'card_code,card_number\n' + ''.join(f'{code},1\n' for code in rows))
    assert details == [{'line': 503, 'message': 'card_code duplicates the code on line 2'}]
    assert stock(admin, pool.id) == (0, 0)


def test_a_code_already_stored_is_refused_with_its_line(admin, pool):
    earlier = new_code()
    import_text(admin, pool.id, f'card_code,card_number\n{earlier},1\n')
    fresh = new_code()

    details = rejected(admin, pool.id, f'card_code,card_number\n{fresh},2\n{earlier},3\n')

    assert details == [{'line': 3, 'message': 'card_code is already stored (imported or bought earlier)'}]
    assert not stored(fresh)
    assert stock(admin, pool.id) == (1, 0)


def test_a_code_stored_in_another_pool_is_a_duplicate_too(admin, pool):
    code = new_code()
    other = new_pool(admin, factories.brand())
    import_text(admin, other.id, f'card_code,card_number\n{code},1\n')

    assert rejected(admin, pool.id, f'card_code,card_number\n{code},1\n')[0]['line'] == 2


@pytest.mark.parametrize(
    ('row', 'message'),
    [
        (',1,', 'card_code is empty'),
        ('   ,1,', 'card_code is empty'),
        (f'{"C" * 129},1,', 'card_code is longer than 128 characters'),
        (f'CODE{{}},{"9" * 65},', 'card_number is longer than 64 characters'),
        ('CODE{},1,2031-13-01', 'expires_on is not a valid date written YYYY-MM-DD'),
        ('CODE{},1,31/12/2031', 'expires_on is not a valid date written YYYY-MM-DD'),
        ('CODE{},1,2001-01-01', 'expires_on is in the past'),
        ('"CODE{}\tX",1,', 'control characters (such as line breaks or tabs) are not allowed in a value'),
    ],
)
def test_a_bad_value_is_refused_with_its_line(admin, pool, row, message):
    text = f'card_code,card_number,expires_on\n{new_code()},1,\n{row.format(uuid.uuid4().hex)}\n'
    assert rejected(admin, pool.id, text) == [{'line': 3, 'message': message}]


@pytest.mark.parametrize(
    ('text', 'line', 'message'),
    [
        ('', 1, 'the file is empty'),
        ('\n', 1, 'the file is empty'),
        ('card_code,card_number\n', 2, 'the file holds no cards'),
        ('ZQ1234567890,4111111111111111\nZQ99,1\n', 1, 'missing header'),
        ('card_code,card_number,balance\nZQ1,1,25\n', 1, "unknown column 'balance'"),
        ('card_code,pin\nZQ1,1\n', 1, "missing column 'card_number'"),
        ('card_code,card_number,card_code\nZQ1,1,ZQ2\n', 1, "column 'card_code' appears more than once"),
        ('card_code,card_number\nZQ{},1\nZQ{},2,3\n', 3, 'extra data after last expected column'),
        ('card_code,card_number\nZQ{},1\nZQ{}\n', 3, 'missing data for column'),
        ('card_code,card_number\n"ZQ{},1\n', 2, 'unterminated CSV quoted field'),
        (b'card_code,card_number\nZQ\xff\xfe,1\n', 2, 'invalid byte sequence'),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(admin, pool, text, line, message):
    if isinstance(text, str):
        text = text.replace('{}', uuid.uuid4().hex[:8])
    [problem, *_] = rejected(admin, pool.id, text)
    assert problem['line'] == line
    assert message in problem['message']
    assert stock(admin, pool.id) == (0, 0)


def test_errors_are_capped_and_sorted(admin, pool):
    text = 'card_code,card_number\n' + ',1\n' * (card_import.MAX_REPORTED_ERRORS + 20)
    details = rejected(admin, pool.id, text)
    assert len(details) == card_import.MAX_REPORTED_ERRORS
    assert [d['line'] for d in details] == list(range(2, card_import.MAX_REPORTED_ERRORS + 2))


# --- who and where -------------------------------------------------------------------------------------


def test_only_a_platform_admin_imports(owner, pool):
    tree = factories.hierarchy_tree(owner)
    with pytest.raises(errors.Forbidden):
        import_text(tree.agency_admin, pool.id, f'card_code,card_number\n{new_code()},1\n')


@pytest.mark.parametrize('pool_id', [str(uuid.uuid4()), 'not-a-uuid'])
def test_importing_into_an_unknown_pool_is_not_found(admin, pool_id):
    with pytest.raises(errors.NotFound):
        import_text(admin, pool_id, f'card_code,card_number\n{new_code()},1\n')


def test_a_second_import_into_a_pool_while_one_runs_is_a_conflict(database_url, admin, pool):
    with db.owner_connection() as running:
        running.run('BEGIN')
        running.run('SELECT 1 FROM card_pools WHERE id = CAST(:id AS uuid) FOR NO KEY UPDATE', id=pool.id)
        with pytest.raises(errors.Conflict) as refused:
            import_text(admin, pool.id, f'card_code,card_number\n{new_code()},1\n')
        running.run('ROLLBACK')
    assert refused.value.code == 'import_in_progress'


def test_a_code_stored_while_the_import_waits_is_reported_as_stored(admin, pool):
    code = new_code()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            import_text(admin, pool.id, f'card_code,card_number\n{new_code()},1\n{code},2\n')
        except BaseException as exc:  # asserted below
            outcome.append(exc)
        finally:
            db.reset_connections()

    with db.owner_connection() as other, db.UnitOfWork('owner', conn=other) as racing:
        card_claims.store_vendor_card(
            racing,
            brand_id=pool.brand_id,
            denomination_cents=2500,
            vendor='tango',
            vendor_reference=None,
            card_code=code,
            card_number=None,
            pin=None,
            expires_on=None,
            cost_cents=2400,
        )
        importer = threading.Thread(target=run)
        importer.start()
        time.sleep(0.5)  # the import now waits on the unique index for this uncommitted card
        racing.commit()
    importer.join()

    [refused] = outcome
    assert isinstance(refused, errors.ValidationFailed)
    assert refused.details == [{'line': 3, 'message': 'card_code is already stored (imported or bought earlier)'}]
    assert stock(admin, pool.id) == (0, 0)


def test_stock_bookkeeping_agrees_with_the_cards(admin, pool):
    import_text(admin, pool.id, 'card_code,card_number\n' + ''.join(f'{new_code()},1\n' for _ in range(5)))
    db.in_transaction(lambda uow: card_claims.claim_card(uow, pool.brand_id, 2500))
    assert db.in_transaction(pools.check_inventory) == []


def test_the_database_keeps_a_csv_card_to_its_pools_brand_and_denomination(owner, admin, pool):
    import_text(admin, pool.id, f'card_code,card_number\n{new_code()},1\n')
    [[card_id]] = owner.run('SELECT id::text FROM cards WHERE pool_id = CAST(:p AS uuid)', p=pool.id)
    with pytest.raises(Exception, match='cards_pool_fkey'):
        owner.run('UPDATE cards SET denomination_cents = 5000 WHERE id = CAST(:id AS uuid)', id=card_id)
