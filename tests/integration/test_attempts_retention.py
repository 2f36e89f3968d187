"""Redemption attempts are kept for their retention period and no longer: the monitor deletes older ones, a bounded
batch per run, through a database function that keeps every attempt younger than 7 days whatever it is asked; the
application role itself may delete none."""

from __future__ import annotations

from typing import Any

import pytest
from giftcards import db, monitor
from pg8000.native import DatabaseError

from tests import monitor_support as ms
from tests import provisioning_support as ps
from tests import redeem_support as rs


def attempt_aged(owner: Any, days: float, ip: str) -> int:
    [[attempt_id]] = owner.run(
        'INSERT INTO redemption_attempts (at, source_ip, source_network, user_agent, outcome)'
        " VALUES (now() - make_interval(secs => :s), CAST(:ip AS inet), CAST(:ip AS cidr), 'pytest', 'invalid_code')"
        ' RETURNING id',
        s=days * 86400,
        ip=ip,
    )
    return int(attempt_id)


def kept(ids: list[int]) -> list[int]:
    rows = ps.query('SELECT id FROM redemption_attempts WHERE id = ANY (CAST(:ids AS bigint[])) ORDER BY id', ids=ids)
    return [row['id'] for row in rows]


def prune_everything_due() -> None:
    while monitor.prune_attempts():
        pass


def test_the_monitor_deletes_attempts_past_the_retention_period_and_keeps_the_rest(owner: Any) -> None:
    ip = rs.unique_ip()
    old, recent, today = (attempt_aged(owner, days, ip) for days in (91, 89, 0))
    prune_everything_due()  # what other tests left past the period, so that the run below has these to delete
    old_again = attempt_aged(owner, 120, ip)

    ms.run()

    assert kept([old, recent, today, old_again]) == [recent, today]


def test_a_run_deletes_at_most_a_batch_oldest_first(owner: Any) -> None:
    prune_everything_due()
    ip = rs.unique_ip()
    ids = [attempt_aged(owner, 200 - i, ip) for i in range(3)]

    assert monitor.prune_attempts(limit=2) == 2
    assert kept(ids) == [ids[2]]


@pytest.mark.parametrize('days', [6, 0, -1])
def test_the_database_keeps_every_attempt_younger_than_a_week_whatever_it_is_asked(owner: Any, days: int) -> None:
    attempt = attempt_aged(owner, 6.5, rs.unique_ip())

    with pytest.raises(Exception, match='kept at least 7 days'):
        db.call('SELECT prune_redemption_attempts(make_interval(days => :d), 100)', d=days)
    assert kept([attempt]) == [attempt]


def test_the_application_role_cannot_delete_attempts_itself(owner: Any) -> None:
    attempt = attempt_aged(owner, 365, rs.unique_ip())

    with pytest.raises(Exception, match='permission denied'):
        db.call('DELETE FROM redemption_attempts WHERE id = :id', id=attempt)
    assert kept([attempt]) == [attempt]
    [[login]] = owner.run("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'giftcard_retention'")
    assert login is False


def test_attempts_stay_an_audit_trail_for_everyone_else_the_owner_included(owner: Any) -> None:
    attempt = attempt_aged(owner, 365, rs.unique_ip())

    with pytest.raises(DatabaseError, match='audit trail'):
        owner.run('DELETE FROM redemption_attempts WHERE id = :id', id=attempt)
    assert kept([attempt]) == [attempt]
