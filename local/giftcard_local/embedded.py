"""Embedded PostgreSQL for a machine with nothing but Python: the `pgserver` package's real binaries.

With DATABASE_URL set, that server is used and nothing is started. Otherwise a server runs with its data in
`$GIFTCARD_HOME/pgdata`, reached over a unix socket; a second process reuses the running server, and it is
stopped when the last process that started or joined it exits.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DB_NAME = 'giftcards'
MAX_CONNECTIONS = 300
_servers: dict[Path, Any] = {}


def home() -> Path:
    path = Path(os.environ.get('GIFTCARD_HOME', '.giftcard')).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pgserver() -> Any:
    # platformdirs reads XDG_RUNTIME_DIR when pgserver is imported; give it a private, existing folder.
    if 'XDG_RUNTIME_DIR' not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f'giftcard-runtime-{os.getuid()}'
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ['XDG_RUNTIME_DIR'] = str(runtime)
    import pgserver

    return pgserver


def start(data_dir: Path | None = None) -> Any:
    """Start (or join) the embedded server; answers the pgserver handle."""
    data_dir = (data_dir or home() / 'pgdata').resolve()
    if data_dir in _servers:
        return _servers[data_dir]
    server = _pgserver().get_server(data_dir, cleanup_mode='stop')
    if int(server.psql('SHOW max_connections;').split()[2]) < MAX_CONNECTIONS:
        # Concurrency tests and benchmarks open many connections; raise the limit once, then restart.
        server.psql(f"ALTER SYSTEM SET max_connections = '{MAX_CONNECTIONS}';")
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(['-w', 'restart'], pgdata=server.pgdata, user=server.system_user)
    _servers[data_dir] = server
    return server


def socket_dir(server: Any) -> str:
    return parse_qs(urlsplit(server.get_uri()).query)['host'][0]


def owner_url(server: Any, database: str = DB_NAME) -> str:
    return f'postgresql://postgres@/{database}?host={socket_dir(server)}'


def ensure_database(server: Any, database: str) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if '(1 row)' not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def database_url() -> str:
    """DATABASE_URL if set; otherwise the embedded server's owner URL, started on demand, exported."""
    url = os.environ.get('DATABASE_URL')
    if url:
        return url
    server = start()
    ensure_database(server, DB_NAME)
    url = owner_url(server)
    os.environ['DATABASE_URL'] = url
    return url


def stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs; answers whether it was running."""
    data_dir = (data_dir or home() / 'pgdata').resolve()
    if not (data_dir / 'postmaster.pid').exists():
        return False
    pgserver = _pgserver()
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    user = 'pgserver' if os.getuid() == 0 else None
    pg_ctl(['-w', 'stop', '-m', 'fast'], pgdata=data_dir, user=user)
    _servers.pop(data_dir, None)
    del pgserver
    return True
