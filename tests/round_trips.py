"""Counting the exchanges with the database server, through pg8000's public API: each `Connection.run` (a simple
query, or one with parameters), each `Connection.prepare` and each `PreparedStatement.run` is one round trip."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pg8000.native
import pytest
from giftcards import db


@dataclass(frozen=True)
class Sent:
    """One round trip: what it was (`run`, `prepare` or `execute`), the SQL and the names of its parameters."""

    what: str
    sql: str
    params: tuple[str, ...]

    @property
    def words(self) -> str:
        """The SQL's first words, on one line: enough to tell the statements of a test apart."""
        return ' '.join(self.sql.split())[:60]


@contextmanager
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Every round trip of every connection while the block runs, in order. The block starts on new connections, so
    that each statement it runs is prepared, and known by its SQL, while recording: a test warms them up inside the
    block and then clears the list."""
    db.reset_connections()
    sent: list[Sent] = []
    sql_of: dict[int, str] = {}
    run, prepare, execute = (
        pg8000.native.Connection.run,
        pg8000.native.Connection.prepare,
        pg8000.native.PreparedStatement.run,
    )

    def counted_run(conn: Any, sql: str, *args: Any, **params: Any) -> Any:
        sent.append(Sent('run', sql, tuple(sorted(params))))
        return run(conn, sql, *args, **params)

    def counted_prepare(conn: Any, sql: str) -> Any:
        sent.append(Sent('prepare', sql, ()))
        statement = prepare(conn, sql)
        sql_of[id(statement)] = sql
        return statement

    def counted_execute(statement: Any, **params: Any) -> Any:
        sent.append(Sent('execute', sql_of.get(id(statement), '?'), tuple(sorted(params))))
        return execute(statement, **params)

    with monkeypatch.context() as patch:
        patch.setattr(pg8000.native.Connection, 'run', counted_run)
        patch.setattr(pg8000.native.Connection, 'prepare', counted_prepare)
        patch.setattr(pg8000.native.PreparedStatement, 'run', counted_execute)
        yield sent
