"""Abuse protection for the public redeem route, kept in PostgreSQL: every attempt is a row in
`redemption_attempts`, and failed attempts per source network in a sliding window decide a 429.

- The source is API Gateway's `requestContext.http.sourceIp`, never `X-Forwarded-For` (the caller writes
  that header). IPv4 addresses count one by one; IPv6 addresses by their /64, the block one subscriber
  usually holds, so that rotating through it gains nothing.
- Only failures (`invalid_code`) count: a person redeeming many good codes is never slowed down. Past the
  limit every attempt from the network is refused unread, valid code or not; answering a valid code would
  turn the 429 into an oracle for guesses.
- Checking and recording happen in one transaction under an advisory lock on the network, so parallel
  guesses cannot overshoot the limit.
- Attempts are kept REDEEM_ATTEMPTS_RETENTION_DAYS (90 by default); the monitor deletes older ones
  (`monitor.prune_attempts`, the database's `prune_redemption_attempts`, migration 0024).
"""

from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from giftcards import auth, db, errors, limits, pagination
from giftcards.config import get_settings
from giftcards.db import UnitOfWork

Outcome = Literal[
    'redeemed',  # a card was provisioned for the code
    'replayed',  # the code had been redeemed: its card was shown again
    'invalid_code',  # unknown, voided or malformed: the only outcome that counts against the limit
    'rate_limited',
    'campaign_not_active',
    'insufficient_credit',
    'unavailable',  # provisioning answered 503 (no stock, vendor outcome unknown, database busy)
    'rejected',  # any other refusal of a valid code
    'error',  # an unexpected failure (a bug); recorded for review, answered as 500 by the error mapping
]
FAILURE: Outcome = 'invalid_code'
# The first key of the two-key advisory lock: this module's namespace, so no other lock shares the space.
_LOCK_NAMESPACE = 0x52454445  # 'REDE'
UNKNOWN_SOURCE = '0.0.0.0'  # noqa: S104 - a bucket for a source API Gateway did not give, not a bind address


class Limits(NamedTuple):
    max_failures: int
    window: timedelta

    @classmethod
    def configured(cls) -> Limits:
        settings = get_settings()
        return cls(settings.redeem_max_failures, timedelta(seconds=settings.redeem_failure_window_s))


class Source(NamedTuple):
    """Where an attempt came from: the address, the network it counts against, and the user agent."""

    ip: str
    network: str
    user_agent: str | None

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> Source:
        try:
            address = ipaddress.ip_address((ip or '').strip())
        except ValueError:
            address = ipaddress.ip_address(UNKNOWN_SOURCE)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        prefix = 32 if address.version == 4 else 64
        network = ipaddress.ip_network(f'{address}/{prefix}', strict=False)
        return cls(str(address), str(network), user_agent[: limits.USER_AGENT.max_length] if user_agent else None)


def lock(uow: UnitOfWork, source: Source) -> None:
    """Serialize the check-and-record of attempts from one network until this transaction ends."""
    uow.execute('SELECT pg_advisory_xact_lock(:ns, hashtext(:net))', ns=_LOCK_NAMESPACE, net=source.network)


def retry_after(uow: UnitOfWork, source: Source, now: datetime, limits: Limits) -> int | None:
    """Seconds until the network may try again, or None when it is under the limit."""
    oldest_counted = uow.value(
        'SELECT at FROM redemption_attempts WHERE source_network = CAST(:net AS cidr) AND outcome = :failure'
        ' AND at > :since ORDER BY at DESC OFFSET CAST(:skip AS integer) LIMIT 1',
        net=source.network,
        failure=FAILURE,
        since=now - limits.window,
        skip=limits.max_failures - 1,
    )
    if oldest_counted is None:
        return None
    return max(1, math.ceil((oldest_counted + limits.window - now).total_seconds()))


def record(uow: UnitOfWork, source: Source, outcome: Outcome, at: datetime, code_id: str | None = None) -> None:
    """Append one attempt. `code_id` only for a code that was recognised; a failure stores nothing of the code."""
    uow.execute(
        'INSERT INTO redemption_attempts (at, source_ip, source_network, user_agent, outcome, code_id)'
        ' VALUES (:at, CAST(:ip AS inet), CAST(:net AS cidr), :ua, :outcome, CAST(:code_id AS uuid))',
        at=at,
        ip=source.ip,
        net=source.network,
        ua=source.user_agent,
        outcome=outcome,
        code_id=code_id,
    )


def record_now(source: Source, outcome: Outcome, at: datetime, code_id: str | None = None) -> None:
    """Record an attempt in its own transaction (after provisioning, which commits on its own)."""
    db.in_transaction(lambda uow: record(uow, source, outcome, at, code_id))


# --- fraud review --------------------------------------------------------------------------------------


class Attempt(NamedTuple):
    """One attempt at the public redeem route: where it came from and how it ended."""

    id: int
    at: datetime
    ip: str
    network: str  # what the failure limit counts against: the IPv4 address, or the IPv6 /64
    user_agent: str | None
    outcome: Outcome
    code_id: str | None  # a code that was recognised


def _invalid(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f'{field}: {message}', details=[{'field': field, 'message': message}])


def _network_filter(ip: str | None) -> str | None:
    if ip is None:
        return None
    try:
        return str(ipaddress.ip_network(ip.strip(), strict=False))
    except ValueError:
        raise _invalid('ip', 'must be an IP address or a CIDR block') from None


def _after(cursor: str | None) -> dict[str, Any]:
    at, key = pagination.decode_cursor(cursor)
    if at is None:
        return {'before_at': None, 'before_id': None}
    try:
        before_at = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        before_at = None
    if before_at is None or not isinstance(key, int):
        raise _invalid('cursor', 'not a cursor this API issued')
    return {'before_at': before_at, 'before_id': key}


def list_attempts(
    subject: str, ip: str | None, since: datetime | None, limit: int, cursor: str | None
) -> pagination.Page[Attempt]:
    """Attempts newest first, optionally from one address or block and since a time (platform admins)."""
    network = _network_filter(ip)
    before = _after(cursor)

    def work(uow: UnitOfWork) -> pagination.Page[Attempt]:
        auth.require_platform_admin(auth.load_caller(uow, subject))
        rows = uow.fetch(
            'SELECT id, at, host(source_ip) AS ip, CAST(source_network AS text) AS network, user_agent, outcome,'
            ' code_id::text FROM redemption_attempts'
            ' WHERE (CAST(:net AS cidr) IS NULL OR source_ip <<= CAST(:net AS cidr))'
            ' AND (CAST(:since AS timestamptz) IS NULL OR at >= CAST(:since AS timestamptz))'
            ' AND (CAST(:before_at AS timestamptz) IS NULL'
            '      OR (at, id) < (CAST(:before_at AS timestamptz), CAST(:before_id AS bigint)))'
            ' ORDER BY at DESC, id DESC LIMIT CAST(:n AS integer)',
            net=network,
            since=since,
            n=limit + 1,
            **before,
        )
        return pagination.page_of(rows, limit, lambda r: (r['at'], r['id']), lambda r: Attempt(**r))

    return db.in_transaction(work, read_only=True)
