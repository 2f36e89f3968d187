"""Embedded PostgreSQL for a machine with nothing but Python: the `pgserver` package's real binaries.

With DATABASE_URL set, that server is used and nothing is started. Otherwise a server runs with its data in
`$GIFTCARD_HOME/pgdata`, reached over a unix socket. Who stops it is decided by who started it:

- a process that started it (`giftcard serve`, a test session) stops it when it exits;
- a process that found it running (a second `giftcard serve`, `giftcard migrate`) leaves it running;
- `giftcard db start` starts it to keep: it runs until `giftcard db stop`.

`GIFTCARD_HOME` is one folder whatever the working directory: the variable when set (made absolute once, and
exported so that every child process agrees), else `.giftcard` at the root of the checkout this package was
installed from (found from the package's own location, or from the working directory upwards).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DB_NAME = 'giftcards'
MAX_CONNECTIONS = 300
HOME_DIR = '.giftcard'
_servers: dict[Path, Any] = {}
_homes: dict[str, Path] = {}  # GIFTCARD_HOME as set -> the folder it resolved to
_started_here: dict[Path, int] = {}  # data folder -> the pid of the process that started its server


def project_root() -> Path | None:
    """The checkout holding template.yaml: the one this package lives in (an editable install), else the
    working directory or the nearest of its parents that holds one."""
    package_checkout = Path(__file__).resolve().parents[2]
    candidates = [package_checkout, Path.cwd(), *Path.cwd().parents]
    return next((p for p in candidates if (p / 'template.yaml').is_file()), None)


def home() -> Path:
    """The local data folder (embedded database, keys, fake vendors' record), created on first use, and exported
    as GIFTCARD_HOME so that later reads and child processes resolve to the same folder."""
    configured = os.environ.get('GIFTCARD_HOME')
    if configured is not None and _homes.get(configured) is not None:
        return _homes[configured]  # asked on every request (tokens): no file system calls once known
    if configured:
        path = Path(configured).resolve()
    else:
        root = project_root()
        path = (root if root is not None else Path.home()) / HOME_DIR
    path.mkdir(parents=True, exist_ok=True)
    os.environ['GIFTCARD_HOME'] = str(path)
    _homes[str(path)] = path
    return path


def _pgserver() -> Any:
    # platformdirs reads XDG_RUNTIME_DIR when pgserver is imported; give it a private, existing folder.
    if 'XDG_RUNTIME_DIR' not in os.environ:
        runtime = Path(tempfile.gettempdir()) / f'giftcard-runtime-{os.getuid()}'
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ['XDG_RUNTIME_DIR'] = str(runtime)
    import pgserver

    return pgserver


def _data_dir(data_dir: Path | None) -> Path:
    return (data_dir or home() / 'pgdata').resolve()


def is_running(data_dir: Path | None = None) -> bool:
    """Whether a postmaster runs for the data folder (its pid file names a live process)."""
    pid_file = _data_dir(data_dir) / 'postmaster.pid'
    try:
        pid = int(pid_file.read_text().split('\n', 1)[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, run by another user
        return True
    return True


def start(data_dir: Path | None = None, *, keep: bool = False) -> Any:
    """Start the embedded server, or join the one running; answers the pgserver handle.

    A server this call starts is stopped when this process exits, unless `keep`. A server that was already
    running is never stopped by this process."""
    data_dir = _data_dir(data_dir)
    if data_dir in _servers:
        if keep:
            _started_here.pop(data_dir, None)
        return _servers[data_dir]
    pgserver = _pgserver()
    already_running = is_running(data_dir)
    # cleanup_mode=None: pgserver's own "stop with the last process" bookkeeping is replaced by the rule above.
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    if int(server.psql('SHOW max_connections;').split()[2]) < MAX_CONNECTIONS:
        # Concurrency tests and benchmarks open many connections; raise the limit once, then restart.
        server.psql(f"ALTER SYSTEM SET max_connections = '{MAX_CONNECTIONS}';")
        pgserver.pg_ctl(['-w', 'restart'], pgdata=server.pgdata, user=server.system_user)
    _servers[data_dir] = server
    if not already_running and not keep:
        _started_here[data_dir] = os.getpid()
    return server


def socket_dir(server: Any) -> str:
    return parse_qs(urlsplit(server.get_uri()).query)['host'][0]


def owner_url(server: Any, database: str = DB_NAME) -> str:
    return f'postgresql://postgres@/{database}?host={socket_dir(server)}'


def ensure_database(server: Any, database: str) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if '(1 row)' not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def database_url(*, keep: bool = False) -> str:
    """DATABASE_URL if set; otherwise the embedded server's owner URL, started (see `start`) or joined, and
    exported."""
    url = os.environ.get('DATABASE_URL')
    if url:
        return url
    server = start(keep=keep)
    ensure_database(server, DB_NAME)
    url = owner_url(server)
    os.environ['DATABASE_URL'] = url
    return url


def stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server if it runs; answers whether it was running."""
    data_dir = _data_dir(data_dir)
    _started_here.pop(data_dir, None)
    _servers.pop(data_dir, None)
    if not is_running(data_dir):
        return False
    pgserver = _pgserver()
    user = 'pgserver' if os.getuid() == 0 else None
    pgserver.pg_ctl(['-w', 'stop', '-m', 'fast'], pgdata=data_dir, user=user)
    return True


@atexit.register
def _stop_what_this_process_started() -> None:
    # A forked child inherits this handler (and the record); only the process that started the server stops it.
    for data_dir, pid in list(_started_here.items()):
        if pid == os.getpid():
            with contextlib.suppress(Exception):
                stop(data_dir)
