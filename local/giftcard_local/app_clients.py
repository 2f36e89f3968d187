"""The integrations' app clients the local authorizer accepts: one per integrating system, each its own identity.

In AWS each integrating system has its own Cognito app client (client credentials, scope `giftcards/provision`),
whose id is its subject and is listed in the JWT authorizer's audience (template parameter `IntegrationClientIds`).
Locally the same list lives in `GIFTCARD_HOME/app-clients.json`: `giftcard integration add NAME` registers a client,
`remove` takes it out (its tokens are refused from then on), and `giftcard token NAME --client` signs a token only
for a registered client, as Cognito issues tokens only to its own clients.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from giftcard_local import embedded

FILE = 'app-clients.json'
PROVISION_SCOPE = 'giftcards/provision'

_read_lock = threading.Lock()
_cache: dict[Path, tuple[int, dict[str, tuple[str, ...]]]] = {}


def _path(home: Path | None) -> Path:
    return (home or embedded.home()) / FILE


def registered(home: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Each registered client id and its scopes. Read again only when the file changes (a stat per call)."""
    path = _path(home)
    try:
        changed = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    with _read_lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != changed:
            clients = json.loads(path.read_text(encoding='utf-8'))
            cached = (changed, {client: tuple(scopes) for client, scopes in clients.items()})
            _cache[path] = cached
        return dict(cached[1])


@contextlib.contextmanager
def _changing(home: Path | None) -> Iterator[dict[str, list[str]]]:
    """The registry for changing, under an exclusive lock; written back whole (never a partial file)."""
    path = _path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f'.{FILE}.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        clients = json.loads(path.read_text(encoding='utf-8')) if path.exists() else {}
        yield clients
        tmp = path.with_name(f'.{FILE}.{uuid.uuid4().hex}')
        tmp.write_text(json.dumps(clients, indent=2, sort_keys=True) + '\n', encoding='utf-8')
        os.replace(tmp, path)


def add(client_id: str, home: Path | None = None, scopes: tuple[str, ...] = (PROVISION_SCOPE,)) -> None:
    """Register an integration's app client (again: its scopes are replaced)."""
    if not client_id or client_id != client_id.strip():
        raise ValueError('an app client id is a non-empty name without surrounding spaces')
    with _changing(home) as clients:
        clients[client_id] = list(scopes)


def remove(client_id: str, home: Path | None = None) -> bool:
    """Take a client out of the audience; answers whether it was registered."""
    with _changing(home) as clients:
        return clients.pop(client_id, None) is not None
