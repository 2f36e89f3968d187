"""PostgreSQL access through pg8000's native API: parameterized SQL only, no ORM.

- One lazily opened connection per thread and role (a warm Lambda has one thread), replaced when it has gone
  stale. TLS with a verifying context for any non-local server.
- A statement with parameters runs as a prepared statement (`Connection.prepare`), one round trip each: each
  connection keeps the MAX_PREPARED most recently used, and closes on the server the one it forgets. A statement
  without parameters is sent as a simple query, also one round trip.
- `UnitOfWork`: a transaction that rolls back unless `commit()` was called. BEGIN (with what the transaction sets
  first) is sent when the first statement is. A COMMIT that meets a broken connection raises OutcomeUnknown.
- `in_transaction(work)`: runs `work(uow)` and commits, retrying serialization failures and deadlocks a bounded
  number of times. Only for work whose sole side effects are in this database.
- `call(sql)`: one statement in a transaction of its own, which the server commits: one round trip. A use case
  that must take one round trip is one call of a database function (as `ledger_transfer` is).
- `read(*queries)`: SELECTs outside any transaction of the caller's.
- Constraint violations become domain errors through `register_constraint`.
- `Scope`: what the database lets a transaction of the application role see (row-level security, migration 0022).
  A transaction enters its scope first (`gc_enter`, sent with BEGIN); one that entered none sees no tenant's rows.
  The scope is the unit of work's, or else the one `acting_as` set for what the current request does.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
from pg8000.native import DatabaseError, InterfaceError

from giftcards import errors
from giftcards.config import ConfigurationError, Settings, get_settings

Role = Literal['app', 'owner']
T = TypeVar('T')

SERIALIZATION_FAILURE, DEADLOCK, QUERY_CANCELED, FEATURE_NOT_SUPPORTED = '40001', '40P01', '57014', '0A000'
# Data exceptions a value sent by a caller can cause: a malformed literal (a uuid, an integer), text the database
# cannot store (NUL), a value too long or out of range, a date it cannot read. Others of SQLSTATE class 22 (division
# by zero, ...) mean a bug, and stay errors.
INPUT_DATA_EXCEPTIONS = {'22P02', '22021', '22P05', '22001', '22003', '22007', '22008'}
_RETRYABLE = {SERIALIZATION_FAILURE, DEADLOCK}
_INTEGRITY = {'23505', '23514', '23503', '23P01', '23502'}
MAX_PREPARED = 256  # per connection

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
        return errors.raised_by_the_database(err_code, message.strip())
    return exc


def is_input_data_exception(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a value a caller could have sent (see INPUT_DATA_EXCEPTIONS). Left
    to the use case that meets it (the CSV import names the file's line); what no use case handles becomes a 422
    at the HTTP edge (the error handlers of `api.app`) rather than a 500."""
    return sqlstate(exc) in INPUT_DATA_EXCEPTIONS


def invalid_input() -> errors.ValidationFailed:
    return errors.ValidationFailed('A value in the request cannot be stored as given.', code='invalid_input')


# --- scopes --------------------------------------------------------------------------------------------


class Scope(NamedTuple):
    """What a transaction may see, as `gc_enter` (migrations 0022, 0025) reads it: `subject:<sub>` (a signed-in
    caller, through its memberships), `redeem:<hex of the code's hash>` (the public redeem page, for one code),
    `monitor`, or one of the scopes of delivering cards, each of which sees one delivery's client: `delivery:<id>`
    (sending it), `delivery-message:<provider's message id>` (hearing what became of it) and
    `redeem-link:<hex of the link token's hash>` (the redeem page, for a delivered link)."""

    text: str

    @classmethod
    def of_subject(cls, subject: str) -> Scope:
        return cls(f'subject:{subject}')

    @classmethod
    def redeeming(cls, code_hash: bytes) -> Scope:
        return cls(f'redeem:{code_hash.hex()}')

    @classmethod
    def delivering(cls, delivery_id: str | None = None) -> Scope:
        """The deliver function sending one delivery; with none, hearing the replies recipients send (STOP, START),
        which concern no tenant: that scope sees no tenant's rows."""
        return cls(f'delivery:{delivery_id or ""}')

    @classmethod
    def of_provider_message(cls, message_id: str) -> Scope:
        """The deliver function hearing what became of the message the provider knows as `message_id`."""
        return cls(f'delivery-message:{message_id}')

    @classmethod
    def of_link(cls, token_hash: bytes) -> Scope:
        """The public redeem page, for the delivered link whose token hashes to `token_hash`."""
        return cls(f'redeem-link:{token_hash.hex()}')

    def entering(self) -> str:
        """The statement that enters this scope, for a message with no parameters (BEGIN's): the scope is written as
        hex digits, which no text in it can escape."""
        return f"SELECT count(*) FROM gc_enter(convert_from(decode('{self.text.encode().hex()}', 'hex'), 'UTF8'))"


MONITOR = Scope('monitor')
# The statement that enters a scope (and answers a subject's memberships): the one place a scope reaches the database.
ENTER = 'SELECT role, agency_id, client_id FROM gc_enter(:scope)'

_acting_as: contextvars.ContextVar[Scope | None] = contextvars.ContextVar('giftcards_scope', default=None)


@contextmanager
def acting_as(scope: Scope | None) -> Iterator[None]:
    """Run what follows in `scope`: each unit of work and read that names no scope of its own enters this one."""
    token = _acting_as.set(scope)
    try:
        yield
    finally:
        _acting_as.reset(token)


def current_scope() -> Scope | None:
    return _acting_as.get()


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


def _secret_params(arn: str, settings: Settings, *, fresh: bool = False) -> dict[str, Any]:
    from aws_lambda_powertools.utilities import parameters

    secret: Any = parameters.get_secret(arn, transform='json', max_age=settings.secrets_max_age_s, force_fetch=fresh)
    return {
        'user': secret['username'],
        'password': secret['password'],
        'host': settings.db_host or secret['host'],
        'port': int(secret.get('port', 5432)),
        'database': secret.get('dbname') or settings.db_name,
    }


def connection_params(
    role: Role = 'app', settings: Settings | None = None, *, owner_secret_arn: str | None = None, fresh: bool = False
) -> dict[str, Any]:
    """pg8000 keyword arguments for the application or the owner (migrating) role.

    Without DATABASE_URL the role's credentials are a secret's: the application's is DB_SECRET_ARN; the owner's is
    `owner_secret_arn`, which `owner_connection` reads from DB_OWNER_SECRET_ARN. Only the code that opens owner
    connections reads that setting, so a function that never migrates needs neither it nor the right to read it.
    `fresh`: read the secret again rather than from this process's cache."""
    settings = settings or get_settings()
    if settings.database_url:
        params = _url_params(settings.database_url)
        if role == 'app' and settings.db_app_user:
            params['user'] = settings.db_app_user
            params['password'] = settings.db_app_password.get_secret_value() if settings.db_app_password else None
    else:
        arn = settings.db_secret_arn if role == 'app' else owner_secret_arn
        if not arn:
            setting = 'DB_SECRET_ARN' if role == 'app' else 'DB_OWNER_SECRET_ARN'
            raise ConfigurationError(f'Set DATABASE_URL, or {setting} in AWS.')
        params = _secret_params(arn, settings, fresh=fresh)
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


def connect(
    role: Role = 'app', settings: Settings | None = None, *, owner_secret_arn: str | None = None
) -> pg8000.native.Connection:
    """A new connection. A refused login (SQLSTATE class 28) with credentials from a secret is tried once more with
    the secret read again: it may have been rotated since this process read it."""
    try:
        try:
            conn = pg8000.native.Connection(**connection_params(role, settings, owner_secret_arn=owner_secret_arn))
        except DatabaseError as exc:
            if not (sqlstate(exc) or '').startswith('28') or (settings or get_settings()).database_url:
                raise
            fresh = connection_params(role, settings, owner_secret_arn=owner_secret_arn, fresh=True)
            conn = pg8000.native.Connection(**fresh)
    except (InterfaceError, OSError) as exc:
        raise errors.ServiceUnavailable('The database is unavailable; try again.') from exc
    except DatabaseError as exc:
        if not (sqlstate(exc) or '').startswith('28'):
            raise
        raise errors.ServiceUnavailable('The database refused the login; try again.') from exc
    conn.register_in_adapter(pg8000.native.TIMESTAMPTZ, _timestamptz_in)
    return conn


def _timestamptz_in(text: str) -> Any:
    """A timestamptz as the server writes it ('2026-11-26 17:32:17.123456+00'), read by `datetime.fromisoformat`
    (pg8000's own reader uses strptime: about fifty times slower, and a provision reads three). The session's
    DateStyle is ISO, PostgreSQL's default. 'infinity' and '-infinity' stay text, as pg8000 leaves them."""
    if text in ('infinity', '-infinity'):
        return text
    return datetime.fromisoformat(text)


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


# --- statements ----------------------------------------------------------------------------------------


class _Statements:
    """The prepared statements of one connection, by SQL text, most recently used last; bounded."""

    def __init__(self) -> None:
        self.prepared: OrderedDict[str, pg8000.native.PreparedStatement] = OrderedDict()

    def run(self, conn: pg8000.native.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        statement = self.prepared.get(sql)
        if statement is None:
            statement = conn.prepare(sql)
            self.prepared[sql] = statement
            if len(self.prepared) > MAX_PREPARED:
                _, forgotten = self.prepared.popitem(last=False)
                forgotten.close()
        else:
            self.prepared.move_to_end(sql)
        try:
            rows = statement.run(**params)
        except DatabaseError as exc:
            if sqlstate(exc) == FEATURE_NOT_SUPPORTED and 'cached plan' in str(exc):
                # A migration changed what the statement answers: it is prepared afresh next time.
                del self.prepared[sql]
                with contextlib.suppress(DatabaseError, InterfaceError):
                    statement.close()
                raise RetryableError('a prepared statement went stale') from exc
            raise
        return _dicts(statement.columns, rows)


_statements: weakref.WeakKeyDictionary[pg8000.native.Connection, _Statements] = weakref.WeakKeyDictionary()


def _run(conn: pg8000.native.Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """One statement, one round trip: prepared when it has parameters, a simple query when it has none."""
    if not params:
        rows = conn.run(sql)
        return _dicts(conn.columns, rows)
    return _statements.setdefault(conn, _Statements()).run(conn, sql, params)


def _dicts(columns: list[dict[str, Any]] | None, rows: list[list[Any]] | None) -> list[dict[str, Any]]:
    """Rows as dicts keyed by their columns' names."""
    names = [c['name'] for c in columns or []]
    return [dict(zip(names, row, strict=True)) for row in rows or []]


# --- unit of work --------------------------------------------------------------------------------------


class UnitOfWork:
    """One transaction. Rolls back on exit unless `commit()` was called.

    BEGIN is sent with what the transaction sets first, in one simple query, when the first statement is.

    `keyed`: every statement of the transaction finds its rows by key, and is planned with sequential scans
    disabled (SET LOCAL): that includes what the statements' foreign keys check, whose plans the server keeps for
    the session; planned while a table was small, a check would otherwise read the whole table, and keep doing so.

    `read_only`: BEGIN READ ONLY (the server refuses any write); its COMMIT only ends it, so a connection lost then
    takes nothing with it.

    `scope`: what the transaction may see (row-level security), entered with BEGIN; by default the one `acting_as`
    set (not on a connection the caller gives). The owner role enters none: it owns the tables.

    `repeatable_read`: one snapshot for every statement (BEGIN ISOLATION LEVEL REPEATABLE READ).
    """

    def __init__(
        self,
        role: Role = 'app',
        conn: pg8000.native.Connection | None = None,
        *,
        keyed: bool = False,
        read_only: bool = False,
        scope: Scope | None = None,
        repeatable_read: bool = False,
    ) -> None:
        self.role = role
        self.read_only = read_only
        self._repeatable_read = repeatable_read
        self._keyed = keyed
        self._scope = scope
        self.scope: Scope | None = None
        self._given = conn
        self.conn: pg8000.native.Connection
        self.committed = False
        self._begun = False

    def __enter__(self) -> UnitOfWork:
        self.committed = False
        self._begun = False
        self.conn = self._given if self._given is not None else get_connection(self.role)
        # A connection given by the caller is in whatever role the caller chose: it enters only a scope it is given.
        self.scope = self._scope if self._given is not None else (self._scope or current_scope())
        if self.role != 'app':
            self.scope = None
        begin = [
            'BEGIN'
            + (' ISOLATION LEVEL REPEATABLE READ' if self._repeatable_read else '')
            + (' READ ONLY' if self.read_only else '')
        ]
        if self._keyed:
            begin.append('SET LOCAL enable_seqscan = off')
        if self.scope is not None:
            begin.append(self.scope.entering())
        self._begin = '; '.join(begin)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._begun and not self.committed:
            try:
                self.conn.run('ROLLBACK')
            except (InterfaceError, OSError, DatabaseError):
                if self._given is None:
                    drop_connection(self.role)

    def _begin_once(self) -> None:
        """BEGIN, on the transaction's first statement. A connection that turns out to be stale (the server or the
        proxy closed it while the Lambda was frozen) is replaced, and BEGIN sent again on the new one: nothing of
        the transaction has run yet."""
        if self._begun:
            return
        self._begun = True
        try:
            self.conn.run(self._begin)
        except (InterfaceError, OSError):
            if self._given is not None:
                raise
            drop_connection(self.role)
            self.conn = get_connection(self.role)
            self._send(lambda: self.conn.run(self._begin))

    def _send(self, exchange: Callable[[], T], *, committing: bool = False) -> T:
        """One exchange with the server, its failures as the domain knows them.

        `committing`: the exchange carries the COMMIT. If the connection breaks then, the transaction may have
        committed before it broke: the error is OutcomeUnknown rather than an invitation to try again."""
        try:
            return exchange()
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

    def fetch(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        self._begin_once()
        return self._send(lambda: _run(self.conn, sql, params))

    def enter(self, scope: Scope) -> list[dict[str, Any]]:
        """Enter `scope` for the rest of the transaction; answers a subject's memberships (ENTER)."""
        rows = self.fetch(ENTER, scope=scope.text)
        self.scope = scope
        return rows

    def fetch_many(self, *queries: tuple[str, dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Several statements, with their parameters, one after another: the rows of each, in order."""
        return [self.fetch(sql, **params) for sql, params in queries]

    def fetch_one(self, sql: str, **params: Any) -> dict[str, Any] | None:
        rows = self.fetch(sql, **params)
        return rows[0] if rows else None

    def value(self, sql: str, **params: Any) -> Any:
        rows = self.fetch(sql, **params)
        return next(iter(rows[0].values())) if rows else None

    def execute(self, sql: str, **params: Any) -> None:
        """Run a statement for its effect. (A caller that needs to know which rows it touched says RETURNING and
        uses `fetch`.)"""
        self.fetch(sql, **params)

    def copy(self, sql: str, stream: Iterable[bytes] | Any) -> int:
        """`COPY ... FROM STDIN` with the driver's COPY support, `stream` an iterable of bytes or a file object;
        answers the number of rows copied."""
        self._begin_once()

        def copy() -> int:
            self.conn.run(sql, stream=stream)
            return int(self.conn.row_count)

        return self._send(copy)

    def commit(self) -> None:
        if self._begun and self.read_only:
            # Its COMMIT only ends it: a connection lost now takes nothing with it, and what was read stands.
            with contextlib.suppress(errors.ServiceUnavailable):
                self._send(lambda: self.conn.run('COMMIT'))
        elif self._begun:  # a transaction that ran nothing has nothing to commit
            self._send(lambda: self.conn.run('COMMIT'), committing=True)
        self.committed = True

    def fetch_and_commit(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run a last statement and commit. Answers the statement's rows; raises as `fetch` or `commit`."""
        rows = self.fetch(sql, **params)
        self.commit()
        return rows


def in_transaction(
    work: Callable[[UnitOfWork], T],
    *,
    attempts: int = 5,
    role: Role = 'app',
    keyed: bool = False,
    read_only: bool = False,
    scope: Scope | None = None,
    repeatable_read: bool = False,
) -> T:
    """Run `work` in a transaction and commit; run it again on serialization failure or deadlock. `keyed`,
    `read_only`, `scope` and `repeatable_read`: see UnitOfWork."""
    for attempt in range(1, attempts + 1):
        try:
            with UnitOfWork(
                role, keyed=keyed, read_only=read_only, scope=scope, repeatable_read=repeatable_read
            ) as uow:
                result = work(uow)
                if not uow.committed:  # `work` may have committed with its last statement (fetch_and_commit)
                    uow.commit()
                return result
        except RetryableError:
            if attempt == attempts:
                break
            _back_off(attempt)
    raise errors.ServiceUnavailable('The system is busy; try again.', code='busy')


def _back_off(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * 2**attempt))


def call(sql: str, *, role: Role = 'app', attempts: int = 5, **params: Any) -> list[dict[str, Any]]:
    """One statement in a transaction of its own, which the server commits when the statement ends: one round
    trip. A serialization failure, a deadlock or a stale plan rolled it back, and it runs again. A connection lost
    while the statement ran leaves its outcome unknown (OutcomeUnknown): a statement that only reads uses `read`."""
    for attempt in range(1, attempts + 1):
        conn = get_connection(role)
        try:
            return _run(conn, sql, params)
        except UnicodeEncodeError as exc:  # nothing was sent: the statement's parameters are encoded first
            raise invalid_input() from exc
        except DatabaseError as exc:
            if not _stale_function_plan(exc):
                error = translate(exc)
                if not isinstance(error, RetryableError):
                    raise error from exc
            else:
                drop_connection(role)
        except RetryableError:
            pass
        except (InterfaceError, OSError) as exc:
            drop_connection(role)
            raise errors.OutcomeUnknown() from exc
        if attempt < attempts:
            _back_off(attempt)
    raise errors.ServiceUnavailable('The system is busy; try again.', code='busy')


def read(
    *queries: tuple[str, dict[str, Any]], role: Role = 'app', scope: Scope | None = None, scoped: bool = True
) -> list[list[dict[str, Any]]]:
    """SELECTs, with their parameters, outside any transaction of the caller's: the rows of each, in order. Nothing
    of it (locks, a snapshot) stays open while the caller goes on. A lost connection or a stale plan is retried once
    on a new one: reading again is harmless.

    In a scope (`scope`, else the one `acting_as` set; the application role only) they run in one read-only
    transaction that enters it first. `scoped=False`: each runs alone and sees what was committed when it started
    (a statement that enters its scope itself, as ENTER does)."""
    scope = (scope or current_scope()) if role == 'app' and scoped else None
    for attempt in (1, 2):
        conn = get_connection(role)
        try:
            if scope is None:
                return [_run(conn, sql, params) for sql, params in queries]
            conn.run(f'BEGIN READ ONLY; {scope.entering()}')
            try:
                rows = [_run(conn, sql, params) for sql, params in queries]
            finally:
                conn.run('ROLLBACK')  # it only read: ending it either way keeps what was read
            return rows
        except UnicodeEncodeError as exc:
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


@contextmanager
def owner_connection() -> Iterator[pg8000.native.Connection]:
    """A fresh connection as the owner role (migrations, administration); closed afterwards."""
    conn = connect('owner', owner_secret_arn=get_settings().db_owner_secret_arn)
    try:
        yield conn
    finally:
        conn.close()
