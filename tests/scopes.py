"""Whom the tests' own setup and inspection act as when they use the application role.

Row-level security (migration 0022) shows a transaction that entered no scope nothing, so the tests' fixtures act
as a platform admin of their own (an autouse fixture in conftest). A use case given a subject enters that subject's
scope itself; what the database shows each scope is proven in tests/integration/test_row_level_security.py.
"""

from __future__ import annotations

from typing import Any

TESTS_PLATFORM_ADMIN = 'tests-platform-admin'


def migrate_for_tests(owner: Any) -> None:
    """Migrate the database `owner` (an owner connection) is on, and make the tests' platform admin one."""
    from giftcards.migrations_runner import migrate

    migrate(owner)
    owner.run(
        "INSERT INTO memberships (subject, role) VALUES (:s, 'platform_admin') ON CONFLICT DO NOTHING",
        s=TESTS_PLATFORM_ADMIN,
    )
