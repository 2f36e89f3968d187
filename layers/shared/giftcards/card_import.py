"""Importing a CSV file of cards into a pool (`import_cards`, platform admin), all or nothing.

The header is read here; the rest of the file is COPYed raw into a temporary staging table and its values checked as
a whole in SQL. The rows are then read back in batches, hashed and encrypted in Python (the HMAC key and the data key
never reach the database) while the database inserts the previous batch into `cards` and `available_cards` (binary
COPY), all in one transaction. Codes given twice or stored before are caught by the unique index on their hashes;
only then are the hashes compared to name the lines. A bad file answers 422 with `[{line, message}]` (the header is
line 1) and imports nothing.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

from pg8000.native import DatabaseError

from giftcards import card_secrets, crypto, db, errors, pools
from giftcards.auth import is_uuid, load_caller, require_platform_admin
from giftcards.db import UnitOfWork
from giftcards.observability import logger

REQUIRED_COLUMNS = ('card_code', 'card_number')
OPTIONAL_COLUMNS = ('pin', 'expires_on')
MAX_CODE_LENGTH = 128
MAX_NUMBER_LENGTH = 64
MAX_PIN_LENGTH = 32
MAX_REPORTED_ERRORS = 100
BATCH_PAGES = 64  # of the staging table (about 5,000 cards) sealed per round trip: bounds the import's memory
_MAX_HEADER_BYTES = 1_024
_BOM = codecs.BOM_UTF8


def _invalid_file(details: list[dict[str, Any]]) -> errors.ValidationFailed:
    first = details[0]
    more = f' (and {len(details) - 1} more)' if len(details) > 1 else ''
    return errors.ValidationFailed(
        f'line {first["line"]}: {first["message"]}{more}; nothing was imported', code='invalid_file', details=details
    )


def _read_header(stream: IO[bytes]) -> list[str]:
    """The column names of the file's first line (a UTF-8 BOM and CR LF allowed); the stream is left after it."""
    raw = stream.readline(_MAX_HEADER_BYTES + 1)
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    if not raw.strip():
        raise _invalid_file([{'line': 1, 'message': 'the file is empty; send a header line and one line per card'}])
    if len(raw) > _MAX_HEADER_BYTES:
        raise _invalid_file([{'line': 1, 'message': 'the header line is too long'}])
    try:
        names = next(csv.reader([raw.decode('utf-8').rstrip('\r\n')]))
    except (UnicodeDecodeError, csv.Error):
        raise _invalid_file([{'line': 1, 'message': 'the header is not valid UTF-8 CSV'}]) from None
    columns = [name.strip().lower() for name in names]
    allowed = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    expected = 'card_code,card_number (and optionally pin, expires_on)'
    if not set(columns) & set(allowed):
        missing = f'missing header: the first line must name the columns {expected}'
        raise _invalid_file([{'line': 1, 'message': missing}])
    problems = [f'unknown column {name!r}; expected {expected}' for name in columns if name not in allowed]
    problems += [f'column {name!r} appears more than once' for name in allowed if columns.count(name) > 1]
    problems += [f'missing column {name!r}' for name in REQUIRED_COLUMNS if name not in columns]
    if problems:
        raise _invalid_file([{'line': 1, 'message': message} for message in problems])
    return columns


_STAGING = """
CREATE TEMPORARY TABLE card_import_rows (
    line         bigint GENERATED ALWAYS AS IDENTITY (START WITH 2),
    card_code    text,
    card_number  text,
    pin          text,
    expires_on   text
) ON COMMIT DROP
"""

_HASHES = """
CREATE TEMPORARY TABLE card_import_hashes (line bigint NOT NULL, code_hash bytea NOT NULL) ON COMMIT DROP
"""

_DATE = r"btrim(expires_on) ~ '^\d{4}-\d{2}-\d{2}$' AND pg_input_is_valid(btrim(expires_on), 'date')"

# The first problem of each line that can be seen on the plaintext, for the whole file in one pass. Duplicates
# are found on keyed hashes instead, so that no plaintext code is ever sorted (a sort may spill to a temp file).
_ROW_ERRORS = f"""
SELECT line, message FROM (
    SELECT line, CASE
        WHEN coalesce(btrim(card_code), '') = '' THEN 'card_code is empty'
        WHEN length(btrim(card_code)) > {MAX_CODE_LENGTH} THEN 'card_code is longer than {MAX_CODE_LENGTH} characters'
        WHEN length(btrim(card_number)) > {MAX_NUMBER_LENGTH}
            THEN 'card_number is longer than {MAX_NUMBER_LENGTH} characters'
        WHEN length(btrim(pin)) > {MAX_PIN_LENGTH} THEN 'pin is longer than {MAX_PIN_LENGTH} characters'
        WHEN concat(card_code, card_number, pin, expires_on) ~ '[[:cntrl:]]'
            THEN 'control characters (such as line breaks or tabs) are not allowed in a value'
        WHEN coalesce(btrim(expires_on), '') = '' THEN NULL
        WHEN NOT ({_DATE}) THEN 'expires_on is not a valid date written YYYY-MM-DD'
        WHEN CAST(btrim(expires_on) AS date) < current_date THEN 'expires_on is in the past'
    END AS message
    FROM card_import_rows
) e WHERE message IS NOT NULL ORDER BY line LIMIT {MAX_REPORTED_ERRORS}
"""

_DUPLICATE_ERRORS = f"""
SELECT line, message FROM (
    SELECT line, format('card_code duplicates the code on line %s', first_line) AS message
      FROM (SELECT line, min(line) OVER (PARTITION BY code_hash) AS first_line FROM card_import_hashes) d
     WHERE line > first_line
    UNION ALL
    SELECT h.line, 'card_code is already stored (imported or bought earlier)'
      FROM card_import_hashes h WHERE EXISTS (SELECT 1 FROM cards c WHERE c.code_hash = h.code_hash)
) e ORDER BY line LIMIT {MAX_REPORTED_ERRORS}
"""

# What is sealed of each row of a file found valid; the expiry in days since 2000-01-01, as binary COPY takes a date.
_STAGED = (
    "btrim(card_code), NULLIF(btrim(card_number), ''), NULLIF(btrim(pin), ''),"
    " CAST(NULLIF(btrim(expires_on), '') AS date) - DATE '2000-01-01'"
)

# Binary COPY: the server parses no text. As CSV, parsing the hex and uuids was a sixth of the insert.
_CARD_COLUMNS = (
    'pool_id',
    'brand_id',
    'denomination_cents',
    'cost_cents',
    'key_id',
    'source',
    'status',
    'id',
    'code_hash',
    'code_sealed',
    'number_sealed',
    'pin_sealed',
    'code_last4',
    'number_last4',
    'expires_on',
)
_COPY_CARDS = f'COPY cards ({", ".join(_CARD_COLUMNS)}) FROM STDIN WITH (FORMAT binary)'
_COPY_AVAILABLE = 'COPY available_cards (pool_id, card_id) FROM STDIN WITH (FORMAT binary)'
_BINARY_HEADER = b'PGCOPY\n\xff\r\n\x00' + bytes(8)  # signature, then no flags and no header extension
_BINARY_TRAILER = b'\xff\xff'
_BINARY_NULL = b'\xff\xff\xff\xff'

_COPY_LINE = re.compile(r'\bline (\d+)')


def _copy_error(exc: DatabaseError) -> errors.ValidationFailed | None:
    """A 422 naming the file line of a COPY data error (bad quoting, wrong number of columns, bad UTF-8)."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    if not str(info.get('C', '')).startswith('22'):
        return None
    # The context is 'COPY card_import_rows, line N[, column c]: "<the line's text>"': take only the number,
    # never the text (it holds card codes). COPY counts from the first line after the header.
    match = _COPY_LINE.search(info.get('W', ''))
    line = int(match.group(1)) + 1 if match else 1
    message = str(info.get('M', 'the line could not be read'))
    return _invalid_file([{'line': line, 'message': message}])


_UUID_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))  # byte 6 of a version 4 UUID, from a random byte
_UUID_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))  # byte 8: the RFC 4122 variant


def _random_card_ids(count: int) -> list[bytes]:
    """`count` random (version 4) UUIDs of 16 bytes, from one read of the system's random source."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_UUID_VERSION)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    return [bytes(raw[at : at + 16]) for at in range(0, len(raw), 16)]


def _binary(value: bytes) -> bytes:
    """One field of binary COPY data: its length, then its bytes."""
    return len(value).to_bytes(4, 'big') + value


_UUID_LENGTH, _HASH_LENGTH, _DATE_LENGTH = (16).to_bytes(4, 'big'), (32).to_bytes(4, 'big'), (4).to_bytes(4, 'big')


def _fixed_fields(pool: dict[str, Any], key: card_secrets.DataKey) -> bytes:
    """The start of each card's binary COPY row in one import: the field count, then pool, brand, denomination, cost,
    key, source and status."""
    return len(_CARD_COLUMNS).to_bytes(2, 'big') + b''.join(
        _binary(value)
        for value in (
            uuid.UUID(pool['id']).bytes,
            uuid.UUID(pool['brand_id']).bytes,
            int(pool['denomination_cents']).to_bytes(8, 'big', signed=True),
            int(pool['cost_per_card_cents']).to_bytes(8, 'big', signed=True),
            uuid.UUID(key.id).bytes,
            b'csv',
            b'available',
        )
    )


def _sealed_batch(
    staged: str, fixed: bytes, pool_id: bytes, sealer: crypto.Sealer, hasher: Callable[[str], bytes]
) -> tuple[bytes, bytes]:
    """Binary COPY data for cards and available_cards from one batch of valid staged rows (`_STAGED`, a JSON
    array): new ids, hashes, ciphertexts.

    `fixed` is `_fixed_fields`. The rows go in card id order, so that consecutive inserts meet neighbouring pages of
    the primary keys (a fifth less work for the server than random order); the ids stay random, and unrelated to
    the order of the file.
    """
    staged_rows = json.loads(staged)
    rows = []
    for card_id, (code, number, pin, expiry) in zip(_random_card_ids(len(staged_rows)), staged_rows, strict=True):
        fields = (
            fixed,
            _UUID_LENGTH,
            card_id,
            _HASH_LENGTH,
            hasher(code),
            _binary(sealer.seal(code, card_id)),
            _binary(sealer.seal(number, card_id)) if number else _BINARY_NULL,
            _binary(sealer.seal(pin, card_id)) if pin else _BINARY_NULL,
            _binary(code[-4:].encode()),
            _binary(number[-4:].encode()) if number else _BINARY_NULL,
            _DATE_LENGTH + expiry.to_bytes(4, 'big', signed=True) if expiry is not None else _BINARY_NULL,
        )
        rows.append((card_id, b''.join(fields)))
    rows.sort()
    available = (2).to_bytes(2, 'big') + _binary(pool_id) + _UUID_LENGTH
    return (
        b''.join([_BINARY_HEADER, *(row for _, row in rows), _BINARY_TRAILER]),
        b''.join([_BINARY_HEADER, *(available + card_id for card_id, _ in rows), _BINARY_TRAILER]),
    )


def _staged_batches(uow: UnitOfWork, columns: str, condition: str = 'true') -> Iterator[str]:
    """`columns` of the staging table's rows where `condition` holds, BATCH_PAGES pages of the table at a time.

    A batch comes as the text of one JSON array of rows, for the caller to decode (the import: in the sealing
    thread). As rows, pg8000 decoded the result field by field in Python, which cost more than the encryption.
    Pages are picked by ctid, which needs no index (a range past the rows holds none).
    """
    pages = uow.value("SELECT pg_relation_size('card_import_rows') / current_setting('block_size')::int")
    for first in range(0, pages, BATCH_PAGES):
        rows = uow.value(
            f'SELECT json_agg(json_build_array({columns}))::text FROM card_import_rows'
            f" WHERE {condition} AND ctid >= '({first},0)' AND ctid < '({first + BATCH_PAGES},0)'"
        )
        if rows:
            yield rows


def _insert_staged(uow: UnitOfWork, pool: dict[str, Any], key: card_secrets.DataKey) -> int:
    """Seal the staged rows and COPY them into cards and available_cards, a batch at a time.

    A second thread seals the next batch while the server inserts the last (indexes, WAL, and at the end of the
    statement the foreign key checks), instead of each waiting for the other. It starts only once pg8000 has sent
    the batch: every exchange with the server needs the GIL back, and while the other thread was busy each waited
    up to the switch interval (5 ms) for it, the server idle meanwhile.
    """
    sealer, hasher = crypto.Sealer(key.plaintext), crypto.keyed_hasher(card_secrets.CODE_HASH_PURPOSE)
    fixed, pool_id = _fixed_fields(pool, key), uuid.UUID(pool['id']).bytes
    sealed: deque[Future[tuple[bytes, bytes]]] = deque()
    imported = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix='card-sealer') as sealing:

        def seal(staged: str | None) -> None:
            if staged:
                sealed.append(sealing.submit(_sealed_batch, staged, fixed, pool_id, sealer, hasher))

        def then_seal(data: bytes, staged: str | None) -> Iterator[bytes]:
            """`data` as a COPY stream, which seals `staged` once pg8000 has sent `data`."""
            yield data
            seal(staged)

        batches = _staged_batches(uow, _STAGED)
        seal(next(batches, None))
        while sealed:
            cards_data, available_data = sealed.popleft().result()
            imported += _copy_cards(uow, then_seal(cards_data, next(batches, None)), available_data)
    return imported


def _copy_cards(uow: UnitOfWork, cards_data: Iterable[bytes], available_data: bytes) -> int:
    """COPY one sealed batch; answers the number of cards. available_cards goes first: its short COPY is over
    before `cards_data` (see `_insert_staged`) sets the sealing thread going. Each table's data goes as one
    message: pg8000 sends a file object in 8 kB writes, each of which needs the GIL back."""
    uow.copy(_COPY_AVAILABLE, [available_data])
    try:
        return uow.copy(_COPY_CARDS, cards_data)
    except DatabaseError as exc:
        if db.sqlstate(exc) == '55P03':  # waited too long on a concurrent import's uncommitted equal code
            raise errors.Conflict(
                'Another import is storing some of the same card codes; try again when it has finished.',
                code='import_in_progress',
            ) from None
        raise


def _duplicates(uow: UnitOfWork) -> list[dict[str, Any]]:
    """Lines whose code is in the file twice or already stored, found by comparing keyed hashes."""
    hasher = crypto.keyed_hasher(card_secrets.CODE_HASH_PURPOSE)
    uow.execute(_HASHES)
    for rows in _staged_batches(uow, 'line, btrim(card_code)', "coalesce(btrim(card_code), '') <> ''"):
        data = ''.join(f'{line},\\x{hasher(code).hex()}\n' for line, code in json.loads(rows))
        uow.copy('COPY card_import_hashes (line, code_hash) FROM STDIN WITH (FORMAT csv)', [data.encode()])
    return uow.fetch(_DUPLICATE_ERRORS)


def _refused(*problem_lists: list[dict[str, Any]]) -> errors.ValidationFailed:
    problems = sorted((p for problems in problem_lists for p in problems), key=lambda p: p['line'])
    return _invalid_file([{'line': p['line'], 'message': p['message']} for p in problems[:MAX_REPORTED_ERRORS]])


def import_cards(subject: str, pool_id: str, csv_stream: IO[bytes]) -> int:
    """Import a CSV file of cards into a pool, all or nothing (platform admin); answers the number imported.

    `csv_stream` is a binary file-like object at the start of the file; it is read once, as a stream.
    Raises ValidationFailed (422, `details: [{line, message}]`) for a bad file, NotFound for an unknown pool,
    Conflict when another import into the pool is running.

    A file that passes the checks on its plaintext is inserted straight away; the unique index on the code hashes
    refuses a code stored before or given twice, and only then are the hashes compared to name the lines.
    """
    with UnitOfWork() as uow:
        require_platform_admin(load_caller(uow, subject))
        pool = _lock_pool(uow, pool_id)
        columns = _read_header(csv_stream)
        uow.execute("SET LOCAL work_mem = '64MB'")  # comparing 100,000 hashes stays in memory
        uow.execute(_STAGING)
        try:
            uow.copy(f'COPY card_import_rows ({", ".join(columns)}) FROM STDIN WITH (FORMAT csv)', csv_stream)
        except DatabaseError as exc:
            raise (_copy_error(exc) or exc) from None
        if not uow.value('SELECT EXISTS (SELECT 1 FROM card_import_rows)'):
            raise _invalid_file([{'line': 2, 'message': 'the file holds no cards after the header'}])
        if problems := uow.fetch(_ROW_ERRORS):
            raise _refused(problems, _duplicates(uow))
        key = card_secrets.new_data_key()
        card_secrets.store_key(uow, key)
        uow.execute('SAVEPOINT card_import')
        try:
            imported = _insert_staged(uow, pool, key)
        except errors.Conflict as exc:
            if exc.code != 'duplicate_card':
                raise
            uow.execute('ROLLBACK TO SAVEPOINT card_import')
            duplicates = _duplicates(uow)
            raise (_refused(duplicates) if duplicates else exc) from None
        uow.execute(
            'UPDATE card_pools SET card_count = card_count + :n WHERE id = CAST(:id AS uuid)', n=imported, id=pool_id
        )
        pools.audit(uow, subject, 'pool.cards_imported', pool_id, {'imported': imported, 'key_id': key.id})
        uow.commit()
    logger.info('cards imported', extra={'pool_id': pool_id, 'imported': imported})
    return imported


def _lock_pool(uow: UnitOfWork, pool_id: str) -> dict[str, Any]:
    """The pool, locked: imports into one pool run one at a time (claims never lock the pool row)."""
    try:
        row = (
            uow.fetch_one(
                'SELECT id::text AS id, brand_id::text AS brand_id, denomination_cents, cost_per_card_cents'
                ' FROM card_pools WHERE id = CAST(:id AS uuid) FOR NO KEY UPDATE NOWAIT',
                id=pool_id,
            )
            if is_uuid(pool_id)
            else None
        )
    except DatabaseError as exc:
        if db.sqlstate(exc) == '55P03':
            raise errors.Conflict(
                'Another import into this pool is running; try again when it has finished.', code='import_in_progress'
            ) from None
        raise
    if row is None:
        raise errors.NotFound('No such pool.')
    return row
