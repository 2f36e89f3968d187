"""PostgreSQL access through pg8000: parameterized SQL only, no ORM.

- One lazily opened connection per thread (a warm Lambda has one thread; the local server has many),
  reopened when it has gone stale. TLS with a verifying context for any non-local server.
- `UnitOfWork`: a transaction that rolls back unless `commit()` was called.
- `in_transaction(work)`: runs `work(uow)` and commits, retrying serialization failures and deadlocks
  a bounded number of times. Only for work whose sole side effects are in this database.
- Constraint violations become domain errors through `register_constraint`.
- A statement with parameters is prepared once per connection and then costs one round trip (`_execute`).
"""

from __future__ import annotations

import contextlib
import functools
import random
import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
from pg8000 import converters as pg8000_converters
from pg8000 import core as pg8000_core
from pg8000.converters import make_params
from pg8000.exceptions import DatabaseError, InterfaceError

from giftcards import errors
from giftcards.config import Settings, get_settings

Role = Literal['app', 'owner']
T = TypeVar('T')

SERIALIZATION_FAILURE, DEADLOCK, QUERY_CANCELED, FEATURE_NOT_SUPPORTED = '40001', '40P01', '57014', '0A000'
# Data exceptions a value sent by a caller can cause: a malformed literal (a uuid, an integer), text the database
# cannot store (NUL), a value too long or out of range, a date it cannot read. Others of SQLSTATE class 22 (division
# by zero, ...) mean a bug, and stay errors.
INPUT_DATA_EXCEPTIONS = {'22P02', '22021', '22P05', '22001', '22003', '22007', '22008'}
_RETRYABLE = {SERIALIZATION_FAILURE, DEADLOCK}
_INTEGRITY = {'23505', '23514', '23503', '23P01', '23502'}

_constraints: dict[str, Callable[[], errors.DomainError]] = {}
_local = threading.local()


class RetryableError(Exception):
    """A serialization failure or deadlock: the transaction was rolled back and may be run again."""


def register_constraint(name: str, error: Callable[[], errors.DomainError]) -> None:
    """Map a named database constraint to the domain error its violation means."""
    _constraints[name] = error


def sqlstate(exc: BaseException) -> str | None:
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get('C')
    return None


def _stale_function_plan(exc: DatabaseError) -> bool:
    """A PL/pgSQL function this session compiled before a migration changed a column's type: its plans keep the
    old type of NEW's column, and fail on every call in this session."""
    return sqlstate(exc) == '42804' and 'when preparing the plan' in str(exc)


def translate(exc: DatabaseError) -> Exception:
    """The domain error a database error stands for, or the original error when it means a bug."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = info.get('C')
    if code in _RETRYABLE:
        return RetryableError(info.get('M'))
    if code == QUERY_CANCELED:
        return errors.ServiceUnavailable('The database took too long to answer; try again.')
    if code in _INTEGRITY and info.get('n') in _constraints:
        return _constraints[info['n']]()
    if code and code.startswith('P0') and info.get('M', '').startswith('giftcards:'):
        # Raised by our own triggers: "giftcards:<code>: message".
        _, err_code, message = info['M'].split(':', 2)
        return errors.ValidationFailed(message.strip(), code=err_code)
    return exc


def is_input_data_exception(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a value a caller could have sent (see INPUT_DATA_EXCEPTIONS). Left
    to the use case that meets it (the CSV import names the file's line); what no use case handles becomes a 422
    at the HTTP edge (`errors.register`) rather than a 500."""
    return sqlstate(exc) in INPUT_DATA_EXCEPTIONS


def invalid_input() -> errors.ValidationFailed:
    return errors.ValidationFailed('A value in the request cannot be stored as given.', code='invalid_input')


# --- connecting ----------------------------------------------------------------------------------------


def _url_params(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    params: dict[str, Any] = {
        'user': unquote(parts.username or 'postgres'),
        'password': unquote(parts.password) if parts.password else None,
        'database': unquote(parts.path.lstrip('/')) or 'postgres',
    }
    host = query.get('host', [parts.hostname or ''])[0]
    port = parts.port or int(query.get('port', ['5432'])[0])
    if host.startswith('/'):
        params['unix_sock'] = f'{host}/.s.PGSQL.{port}'
    else:
        params['host'], params['port'] = host or 'localhost', port
    sslmode = query.get('sslmode', [None])[0]
    if sslmode is not None:
        params['_sslmode'] = sslmode
    return params


def _secret_params(arn: str, settings: Settings) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    secret: Any = parameters.get_secret(arn, transform='json', max_age=settings.secrets_max_age_s)
    return {
        'user': secret['username'],
        'password': secret['password'],
        'host': settings.db_host or secret['host'],
        'port': int(secret.get('port', 5432)),
        'database': secret.get('dbname') or settings.db_name,
    }


def connection_params(role: Role = 'app', settings: Settings | None = None) -> dict[str, Any]:
    """pg8000 keyword arguments for the application or the owner (migrating) role."""
    settings = settings or get_settings()
    if settings.database_url:
        params = _url_params(settings.database_url)
        if role == 'app' and settings.db_app_user:
            params['user'] = settings.db_app_user
            params['password'] = settings.db_app_password.get_secret_value() if settings.db_app_password else None
    else:
        arn = settings.db_secret_arn if role == 'app' else settings.db_owner_secret_arn
        if not arn:
            raise RuntimeError('Set DATABASE_URL, or DB_SECRET_ARN / DB_OWNER_SECRET_ARN in AWS.')
        params = _secret_params(arn, settings)
    sslmode = params.pop('_sslmode', None)
    local = 'unix_sock' in params or params.get('host') in ('localhost', '127.0.0.1', '::1')
    want_tls = settings.db_tls if settings.db_tls is not None else not local
    if sslmode == 'disable':
        want_tls = False
    if want_tls:
        params['ssl_context'] = ssl.create_default_context()  # verifies the certificate and host name
    # pg8000's timeout bounds connecting and every socket read; the server-side statement_timeout
    # (set on the role by the migrations) fires first, so a hung server cannot hold a Lambda forever.
    params['timeout'] = settings.db_connect_timeout_s + settings.db_statement_timeout_ms / 1000
    params['application_name'] = f'giftcards-{settings.environment}'
    return params


def connect(role: Role = 'app', settings: Settings | None = None) -> pg8000.native.Connection:
    try:
        conn = pg8000.native.Connection(**connection_params(role, settings))
    except (InterfaceError, OSError) as exc:
        raise errors.ServiceUnavailable('The database is unavailable; try again.') from exc
    conn.register_in_adapter(TIMESTAMPTZ_OID, _timestamptz_in)
    return conn


TIMESTAMPTZ_OID = 1184


def _timestamptz_in(text: str) -> Any:
    """A timestamptz as the server writes it ('2026-11-26 17:32:17.123456+00'), read by `datetime.fromisoformat`
    (pg8000 uses strptime: about fifty times slower, and a provision reads three); pg8000's own reader for any
    other form (infinity, years beyond 9999)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return pg8000_converters.timestamptz_in(text)


def get_connection(role: Role = 'app') -> pg8000.native.Connection:
    """This thread's connection for `role`, opened on first use."""
    conns: dict[str, pg8000.native.Connection] = getattr(_local, 'conns', None) or {}
    _local.conns = conns
    if role not in conns:
        conns[role] = connect(role)
    return conns[role]


def drop_connection(role: Role = 'app') -> None:
    conns = getattr(_local, 'conns', {})
    conn = conns.pop(role, None)
    if conn is not None:
        # It is being thrown away; a broken socket may not close cleanly.
        with contextlib.suppress(Exception):
            conn.close()


def reset_connections() -> None:
    """Close this thread's connections (tests, and after the database was recreated)."""
    for role in list(getattr(_local, 'conns', {})):
        drop_connection(role)


# --- one round trip per statement ----------------------------------------------------------------------

# pg8000 turns `:name` parameters into `$n` with a Python scan of the whole text on every call, and runs a statement
# in three exchanges with the server (Parse, then Describe, then Bind and Execute), parsed and planned every time.
# Instead each connection prepares a statement once (a protocol-level named statement) and then runs it in one
# exchange: Bind, Execute and Sync sent together. Named statements are session state: behind RDS Proxy they may pin
# the client's session to one database connection. A warm Lambda holds one connection for its life anyway, so what
# this costs is multiplexing headroom on the proxy, bounded by the functions' concurrency.
_parse_parameters = functools.lru_cache(maxsize=1024)(pg8000.native.to_statement)
MAX_PREPARED = 500  # per connection; statements beyond it are parsed every time


@dataclass(frozen=True)
class _Prepared:
    name: bytes
    columns: list[dict[str, Any]] | None
    input_funcs: list[Any]
    statement: str
    values: Callable[[dict[str, Any]], tuple[Any, ...]]


_prepared: weakref.WeakKeyDictionary[pg8000.native.Connection, dict[str, _Prepared]] = weakref.WeakKeyDictionary()


def _prepare(conn: pg8000.native.Connection, sql: str) -> _Prepared:
    statements = _prepared.setdefault(conn, {})
    found = statements.get(sql)
    if found is None:
        statement, values = _parse_parameters(sql)
        name, columns, input_funcs = conn.prepare_statement(statement, ())
        found = _Prepared(name, columns, input_funcs, statement, values)
        if len(statements) < MAX_PREPARED:
            statements[sql] = found
    return found


_EXECUTE = b'E' + struct.pack('!i', 9) + b'\x00' + struct.pack('!i', 0)  # Execute the unnamed portal, all rows
_SYNC = b'S' + struct.pack('!i', 4)


def _bind_and_execute(out: bytearray, statement: bytes, params: tuple[Any, ...] | list[Any]) -> None:
    """Append to `out` the Bind of a prepared statement (text parameters and results) and its Execute. No Flush
    messages between them (pg8000 sends one after each message, and the server then writes its answer in as many
    pieces): the Sync at the end of the exchange flushes everything once."""
    body = bytearray(b'\x00' + statement + struct.pack('!hh', 0, len(params)))
    for value in params:
        if value is None:
            body += b'\xff\xff\xff\xff'
        else:
            encoded = value.encode('utf-8')
            body += struct.pack('!i', len(encoded)) + encoded
    body += b'\x00\x00'
    out += b'B' + struct.pack('!i', len(body) + 4) + body + _EXECUTE


def _execute(
    conn: pg8000.native.Connection,
    sql: str,
    params: dict[str, Any],
    *,
    begin_first: tuple[str, ...] = (),
    then_commit: bool = False,
) -> list[list[Any]]:
    """`conn.run(sql, **params)` in one round trip once the connection has prepared `sql`. The statements of
    `begin_first` (BEGIN, and what the transaction sets first) travel in the same write before it; with
    `then_commit`, COMMIT after it (after an error the server skips the rest, up to the Sync)."""
    (context,) = _exchange(conn, [(sql, params)], begin_first=begin_first, then_commit=then_commit)
    conn._context = context  # what `conn.columns` and `conn.row_count` read
    return context.rows


def _receive(read: Callable[[int], bytes], size: int) -> bytes:
    """`size` bytes from the connection's buffered reader (which reads until it has them, or the end)."""
    try:
        data = read(size)
    except OSError as exc:
        raise InterfaceError('network error') from exc
    if len(data) != size:
        raise InterfaceError('network error')
    return data


_HEADER = struct.Struct('!ci')  # a backend message's type and length (which counts itself, not the type)
_FIELD_LENGTH = struct.Struct('!i')


def _read_answers(conn: pg8000.native.Connection, answers: list[pg8000_core.Context]) -> None:
    """Read everything up to the ReadyForQuery that answers the Sync, each message into the context of the
    statement it answers (each answer ends with its CommandComplete, and `handle` moves on to the next).

    The messages already in the connection's read buffer are handled where they lie (`peek`), and then consumed
    at once: a provision's exchange brings about fifteen, most of them a few bytes long, and reading each one
    apart, header then body, was a tenth of its Python time. Only a message that is not yet wholly in the
    buffer is read apart. Bytes after the ReadyForQuery stay in the buffer. Row values are decoded as pg8000
    decodes them; every other message goes to pg8000's handler for it.
    """
    sock, handlers, encoding = conn._sock, conn.message_types, conn._client_encoding
    current, last = 0, len(answers) - 1
    data_row, bind_complete = pg8000_core.DATA_ROW, pg8000_core.BIND_COMPLETE
    command_complete, ready = pg8000_core.COMMAND_COMPLETE, pg8000_core.READY_FOR_QUERY

    def handle(code: bytes, body: bytes | memoryview, start: int, end: int) -> None:
        nonlocal current
        context = answers[current]
        if code == data_row:
            row: list[Any] = []
            at = start + 2
            for func in context.input_funcs:
                (size,) = _FIELD_LENGTH.unpack_from(body, at)
                at += 4
                if size == -1:
                    row.append(None)
                else:
                    row.append(func(str(body[at : at + size], encoding=encoding)))
                    at += size
            context.rows.append(row)
        elif code != bind_complete:
            handlers[code](bytes(body[start:end]), context)
        if code == command_complete and current < last:
            current += 1

    while True:
        try:
            buffered = sock.peek(5)
        except (OSError, ValueError) as exc:
            raise InterfaceError('network error') from exc
        if not buffered:
            raise InterfaceError('network error')
        at, size, handled = 0, len(buffered), b''
        while handled != ready and size - at >= 5:
            code, length = _HEADER.unpack_from(buffered, at)
            if at + 1 + length > size:
                break
            handle(code, buffered, at + 5, at + 1 + length)
            at, handled = at + 1 + length, code
        if at:
            _receive(sock.read, at)  # consume what was handled
        else:  # the next message is not wholly buffered yet: read it apart
            handled, length = _HEADER.unpack(_receive(sock.read, 5))
            handle(handled, _receive(sock.read, length - 4), 0, length - 4)
        if handled == ready:
            return


def _exchange(
    conn: pg8000.native.Connection,
    statements: list[tuple[str, dict[str, Any]]],
    *,
    begin_first: tuple[str, ...] = (),
    then_commit: bool = False,
) -> list[pg8000_core.Context]:
    """Prepared statements sent in one write and answered in one read: each statement's answer in its own
    context, in order. `begin_first`: statements without parameters sent before them (BEGIN, and what the
    transaction sets first). The server runs them one after another and, after an error, skips the rest up to
    the Sync; the first error is raised.

    Uses pg8000's message writers and handlers (the version is pinned).
    """
    prepared = [_prepare(conn, sql) for sql, _ in statements]
    contexts = [pg8000_core.Context(p.statement, columns=p.columns, input_funcs=p.input_funcs) for p in prepared]
    answers, out = [*(pg8000_core.Context(sql) for sql in begin_first), *contexts], bytearray()
    for sql in begin_first:
        _bind_and_execute(out, _prepare(conn, sql).name, ())
    for statement, (_, params) in zip(prepared, statements, strict=True):
        _bind_and_execute(out, statement.name, make_params(conn.py_types, statement.values(params)))
    if then_commit:
        _bind_and_execute(out, _prepare(conn, 'COMMIT').name, ())
        answers = [*answers, pg8000_core.Context('COMMIT')]
    out += _SYNC
    try:
        conn._sock.write(out)
        conn._sock.flush()
    except (OSError, ValueError, AttributeError) as exc:  # ValueError, AttributeError: pg8000 closed the socket
        raise InterfaceError('network error') from exc
    _read_answers(conn, answers)
    error = next((a.error for a in answers if a.error is not None), None)
    if error is None:
        return contexts
    if isinstance(error, DatabaseError) and sqlstate(error) == FEATURE_NOT_SUPPORTED and 'cached plan' in str(error):
        # A migration changed what a prepared statement answers: prepare afresh, and run the work again.
        _prepared.pop(conn, None)
        raise RetryableError('a prepared statement went stale') from error
    raise error


# --- unit of work --------------------------------------------------------------------------------------


class UnitOfWork:
    """One transaction. Rolls back on exit unless `commit()` was called.

    BEGIN is not sent on entering: it travels with the transaction's first statement, in the same round trip
    (or on its own first, for a first statement without parameters or a COPY).

    `keyed`: every statement of the transaction finds its rows by key, and is planned with sequential scans
    disabled (SET LOCAL, sent with BEGIN). That includes what the statements' foreign keys check, whose plans
    the server keeps for the session: planned while a table was small, a check would otherwise read the whole
    table, and keep doing so as it grows, or as a hot row leaves dead versions in it.
    """

    def __init__(
        self,
        role: Role = 'app',
        conn: pg8000.native.Connection | None = None,
        *,
        keyed: bool = False,
        read_only: bool = False,
    ) -> None:
        self.role = role
        self.read_only = read_only
        begin = 'BEGIN READ ONLY' if read_only else 'BEGIN'
        self._begin = (begin, 'SET LOCAL enable_seqscan = off') if keyed else (begin,)
        self._given = conn
        self.conn: pg8000.native.Connection
        self.committed = False
        self._begun = False

    def __enter__(self) -> UnitOfWork:
        self.committed = False
        self._begun = False
        self.conn = self._given if self._given is not None else get_connection(self.role)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._begun and not self.committed:
            try:
                self.conn.run('ROLLBACK')
            except (InterfaceError, OSError, DatabaseError):
                if self._given is None:
                    drop_connection(self.role)

    def _run(self, sql: str, *, then_commit: bool = False, **params: Any) -> list[list[Any]]:
        if then_commit or (params and 'stream' not in params):
            return self._send(
                lambda begin: _execute(
                    self.conn, sql, params, begin_first=self._begin if begin else (), then_commit=then_commit
                ),
                committing=then_commit and not self.read_only,
            )
        committing = sql == 'COMMIT' and not self.read_only
        return self._send(lambda _: self.conn.run(sql, **params), begin_alone=True, committing=committing)

    def _send(self, exchange: Callable[[bool], T], *, begin_alone: bool = False, committing: bool = False) -> T:
        """One exchange with the server (`exchange(begin)` sends BEGIN first when `begin`). The transaction's
        first exchange begins it: BEGIN travels with it, or (`begin_alone`) is sent on its own before it.

        `committing`: the exchange carries the COMMIT. If the connection breaks then, the transaction may have
        committed before it broke: the exchange is never sent again, and the error is OutcomeUnknown rather than
        an invitation to try again."""
        try:
            if not self._begun:
                if not begin_alone:
                    return self._first_exchange(lambda: exchange(True), resend=not committing)
                self._first_exchange(lambda: [self.conn.run(sql) for sql in self._begin])
            return exchange(False)
        except UnicodeEncodeError as exc:
            # Text that cannot be sent (a lone surrogate); the edge refuses it first. The exchange may have been
            # cut short, so the connection is not used again.
            if self._given is None:
                drop_connection(self.role)
            raise invalid_input() from exc
        except DatabaseError as exc:
            if self._given is None and _stale_function_plan(exc):
                # The transaction was aborted, so nothing of it is kept: run it again on a new session, which
                # compiles the function afresh.
                drop_connection(self.role)
                raise RetryableError('a function plan went stale') from exc
            raise translate(exc) from exc
        except (InterfaceError, OSError) as exc:
            if self._given is None:
                drop_connection(self.role)
            if committing:
                raise errors.OutcomeUnknown() from exc
            # Nothing was committed: the server rolls back a transaction whose connection is gone.
            raise errors.ServiceUnavailable('The database connection was lost; try again.') from exc

    def _first_exchange(self, send: Callable[[], T], *, resend: bool = True) -> T:
        """The exchange that begins the transaction. When the connection turns out to be stale (the server or the
        proxy closed it while the Lambda was frozen), it is sent again once on a new one, unless it was a whole
        transaction (BEGIN ... COMMIT in one exchange): that one may have committed before the connection broke,
        and is reported as a lost connection instead."""
        self._begun = True
        try:
            return send()
        except (InterfaceError, OSError):
            if self._given is not None or not resend:
                raise
            drop_connection(self.role)
            self.conn = get_connection(self.role)
            return send()

    def fetch(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        rows = self._run(sql, **params)
        return _dicts(self.conn.columns, rows)  # the columns of the statement just run

    def fetch_many(self, *queries: tuple[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Several statements, with their parameters, in one round trip: the rows of each, in order. The server
        runs them one after another; after an error it skips the rest, and the error is raised."""
        contexts = self._send(
            lambda begin: _exchange(self.conn, list(queries), begin_first=self._begin if begin else ()),
            begin_alone=False,
        )
        return [_rows(context) for context in contexts]

    def fetch_one(self, sql: str, **params: Any) -> dict[str, Any] | None:
        rows = self.fetch(sql, **params)
        return rows[0] if rows else None

    def value(self, sql: str, **params: Any) -> Any:
        rows = self._run(sql, **params)
        return rows[0][0] if rows else None

    def execute(self, sql: str, **params: Any) -> int:
        """Run a statement; answers the number of rows it touched."""
        self._run(sql, **params)
        return int(self.conn.row_count)

    def commit(self) -> None:
        if self._begun and self.read_only:
            # Its COMMIT only ends it: a connection lost now takes nothing with it, and what was read stands.
            with contextlib.suppress(errors.ServiceUnavailable):
                self._run('COMMIT')
        elif self._begun:  # a transaction that ran nothing has nothing to commit
            self._run('COMMIT')
        self.committed = True

    def fetch_and_commit(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run a last statement and commit, in one round trip: the rows the transaction locked are released one
        exchange sooner (what matters on a hot row). Answers the statement's rows; raises as `fetch` or `commit`."""
        rows = self._run(sql, then_commit=True, **params)
        self.committed = True
        return _dicts(self.conn.columns, rows)


def in_transaction(
    work: Callable[[UnitOfWork], T],
    *,
    attempts: int = 5,
    role: Role = 'app',
    keyed: bool = False,
    read_only: bool = False,
) -> T:
    """Run `work` in a transaction and commit; run it again on serialization failure or deadlock. `keyed`: see
    UnitOfWork. `read_only`: a transaction that only reads (BEGIN READ ONLY: the server refuses any write), whose
    lost COMMIT is no unknown outcome."""
    for attempt in range(1, attempts + 1):
        try:
            with UnitOfWork(role, keyed=keyed, read_only=read_only) as uow:
                result = work(uow)
                if not uow.committed:  # `work` may have committed with its last statement (fetch_and_commit)
                    uow.commit()
                return result
        except RetryableError:
            if attempt == attempts:
                break
            time.sleep(random.uniform(0, 0.005 * 2**attempt))
    raise errors.ServiceUnavailable('The system is busy; try again.', code='busy')


def read(*queries: tuple[str, dict[str, Any]], role: Role = 'app') -> list[list[dict[str, Any]]]:
    """SELECTs, with their parameters, in one round trip outside any transaction of the caller's: the rows of each.

    Each sees what was committed when it started, as in a READ COMMITTED transaction; the server runs them in an
    implicit transaction that ends with the exchange, so nothing of it (locks, a snapshot) stays open while the
    caller goes on. A stale connection is replaced, and the reads sent again, once."""
    for attempt in (1, 2):
        conn = get_connection(role)
        try:
            return [_rows(context) for context in _exchange(conn, list(queries))]
        except UnicodeEncodeError as exc:  # nothing was sent: `_exchange` encodes before it writes
            raise invalid_input() from exc
        except DatabaseError as exc:
            raise translate(exc) from exc
        except RetryableError:
            if attempt == 2:
                raise errors.ServiceUnavailable('The system is busy; try again.', code='busy') from None
        except (InterfaceError, OSError) as exc:
            drop_connection(role)
            if attempt == 2:
                raise errors.ServiceUnavailable('The database connection was lost; try again.') from exc
    raise AssertionError('unreachable')


def _rows(context: pg8000_core.Context) -> list[dict[str, Any]]:
    return _dicts(context.columns, context.rows)


def _dicts(columns: list[dict[str, Any]] | None, rows: list[list[Any]] | None) -> list[dict[str, Any]]:
    """Rows as dicts keyed by their columns' names."""
    names = [c['name'] for c in columns or []]
    return [dict(zip(names, row, strict=True)) for row in rows or []]


@contextmanager
def owner_connection() -> Iterator[pg8000.native.Connection]:
    """A fresh connection as the owner role (migrations, administration); closed afterwards."""
    conn = connect('owner')
    try:
        yield conn
    finally:
        conn.close()
