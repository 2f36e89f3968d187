"""Test fixtures: a fresh PostgreSQL database per test session, built by the project's own migrations.

The server is the embedded one (pgserver) unless DATABASE_URL names another; the session's database is
created on it and dropped at the end, so parallel sessions and the dev database never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.scopes import TESTS_PLATFORM_ADMIN, migrate_for_tests

os.environ.setdefault('POWERTOOLS_TRACE_DISABLED', 'true')
os.environ.setdefault('POWERTOOLS_METRICS_NAMESPACE', 'GiftCardsTest')
os.environ.setdefault('POWERTOOLS_SERVICE_NAME', 'giftcards')
os.environ.setdefault('AWS_DEFAULT_REGION', 'us-east-1')
os.environ.setdefault('ENVIRONMENT', 'local')

# The processes the tests start (`giftcard serve` and its execution environments, `giftcard check`) run this
# checkout's code, as pytest's `pythonpath` makes the tests do: the venv's editable install may point at another
# checkout of the project (a git worktree sharing the venv), whose code would otherwise answer.
_CHECKOUT = Path(__file__).resolve().parents[1]
os.environ['PYTHONPATH'] = os.pathsep.join(
    [str(_CHECKOUT / 'layers' / 'shared'), str(_CHECKOUT / 'local'), *filter(None, [os.environ.get('PYTHONPATH')])]
)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path='/' + name))


@pytest.fixture(scope='session')
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from giftcard_local import embedded
    from giftcards import db
    from giftcards.config import get_settings

    # A server of this session's own: sessions running side by side never stop each other's database.
    own_server = 'DATABASE_URL' not in os.environ and 'GIFTCARD_HOME' not in os.environ
    os.environ.setdefault('GIFTCARD_HOME', str(tmp_path_factory.getbasetemp() / 'giftcard-home'))
    base = embedded.database_url()
    name = f'gc_test_{uuid.uuid4().hex[:12]}'
    admin_url = _with_database(base, 'postgres')
    os.environ['DATABASE_URL'] = admin_url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        conn.run(f'CREATE DATABASE "{name}"')
    url = _with_database(base, name)
    os.environ['DATABASE_URL'] = url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        migrate_for_tests(conn)
    yield url
    db.reset_connections()
    os.environ['DATABASE_URL'] = admin_url
    get_settings.cache_clear()
    with db.owner_connection() as conn:
        conn.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    os.environ['DATABASE_URL'] = url
    get_settings.cache_clear()
    if own_server:
        # Subprocesses of the tests (giftcard serve) joined this server too; stop it rather than leave a
        # PostgreSQL running after every test run.
        embedded.stop()


@pytest.fixture(scope='session', autouse=True)
def _acting_as_platform_admin() -> Iterator[None]:
    """The tests' own setup acts as their platform admin (tests/scopes.py), module fixtures included."""
    from giftcards import db

    with db.acting_as(db.Scope.of_subject(TESTS_PLATFORM_ADMIN)):
        yield


@pytest.fixture(autouse=True)
def _unscoped(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `unscoped` runs with no scope of its own: only what it enters."""
    from giftcards import db

    if not request.node.get_closest_marker('unscoped'):
        yield
        return
    with db.acting_as(None):
        yield


@pytest.fixture
def owner(database_url: str) -> Iterator[object]:
    """An owner-role connection to the test database (setting up memberships, inspecting state)."""
    from giftcards import db

    with db.owner_connection() as conn:
        yield conn


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    from giftcards.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
