"""Who is calling and what they may do: the only place roles are decided.

Identity is the verified JWT's `sub` (or `client_id` for app-client tokens), taken from the HTTP API JWT
authorizer's claims. Roles and tenant scope come from the `memberships` table, never from the token.
A caller outside its scope gets 404 for what it may not see and 403 for what it may see but not do.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, NamedTuple

from giftcards import errors
from giftcards.db import Scope, UnitOfWork


class Role(StrEnum):
    PLATFORM_ADMIN = 'platform_admin'
    AGENCY_ADMIN = 'agency_admin'
    CLIENT_ADMIN = 'client_admin'
    CLIENT_INTEGRATION = 'client_integration'


class Caller(NamedTuple):
    subject: str
    platform_admin: bool = False
    agency_admin_of: frozenset[str] = frozenset()
    client_admin_of: frozenset[str] = frozenset()
    integration_of: frozenset[str] = frozenset()

    # --- what the caller may see (else 404) ---
    # An integration sees nothing: it may only provision gift cards for its client's campaigns (may_provision),
    # which it names itself; every read of the API is for admins.
    def sees_agency(self, agency_id: str) -> bool:
        return self.platform_admin or agency_id in self.agency_admin_of

    def sees_client(self, client_id: str, agency_id: str) -> bool:
        return self.sees_agency(agency_id) or client_id in self.client_admin_of

    def sees_catalogue(self) -> bool:
        """The brands on offer: any admin, each of whom chooses brands for campaigns."""
        return bool(self.platform_admin or self.agency_admin_of or self.client_admin_of)

    # --- what the caller may do (else 403) ---
    def administers_agency(self, agency_id: str) -> bool:
        return self.sees_agency(agency_id)

    def administers_client(self, client_id: str, agency_id: str) -> bool:
        # Every role that sees a client is one of its admins (integrations see none).
        return self.sees_client(client_id, agency_id)

    def may_provision(self, client_id: str) -> bool:
        return self.platform_admin or client_id in self.client_admin_of or client_id in self.integration_of


def subject_from_claims(claims: dict[str, Any] | None) -> str:
    claims = claims or {}
    subject = claims.get('sub') or claims.get('client_id')
    if not isinstance(subject, str) or not subject:
        raise errors.Unauthorized()
    return subject


# The caller's memberships: the rows `caller_from` reads, for the subject in parameter :s.
MEMBERSHIPS_QUERY = 'SELECT role, agency_id::text, client_id::text FROM memberships WHERE subject = :s'
# The same as one JSON value, for a statement that reads them together with other things (one round trip).
MEMBERSHIPS = (
    "(SELECT coalesce(jsonb_agg(jsonb_build_object('role', role, 'agency_id', agency_id::text,"
    " 'client_id', client_id::text)), '[]') FROM memberships WHERE subject = :s)"
)


def load_caller(uow: UnitOfWork, subject: str) -> Caller:
    """The caller `subject`, whose scope the rest of the transaction is in (row-level security): entering it
    answers the memberships, in the one statement reading them would take."""
    scope = Scope.of_subject(subject)
    if uow.scope == scope:
        return caller_from(subject, uow.fetch(MEMBERSHIPS_QUERY, s=subject))
    return caller_from(subject, uow.enter(scope))


def caller_from(subject: str, rows: list[dict[str, Any]]) -> Caller:
    """The caller whose memberships are `rows` (what MEMBERSHIPS_QUERY answers, or MEMBERSHIPS)."""
    by_role: dict[str, set[str]] = {r.value: set() for r in Role}
    for row in rows:
        by_role[row['role']].add(row['agency_id'] or row['client_id'] or '')
    return Caller(
        subject=subject,
        platform_admin=bool(by_role['platform_admin']),
        agency_admin_of=frozenset(by_role['agency_admin']),
        client_admin_of=frozenset(by_role['client_admin']),
        integration_of=frozenset(by_role['client_integration']),
    )


_UUID_TEXT = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')


def is_uuid(value: object) -> bool:
    """Whether `value` is an id in the one spelling this API answers with (8-4-4-4-12 hex digits). Other spellings
    Python's UUID would take (`urn:uuid:...`, braces, no dashes) name no entity here, and PostgreSQL refuses some."""
    return isinstance(value, str) and _UUID_TEXT.fullmatch(value) is not None


def require_platform_admin(caller: Caller) -> None:
    if not caller.platform_admin:
        raise errors.Forbidden('Only a platform admin may do this.')


def visible_agency(uow: UnitOfWork, caller: Caller, agency_id: str) -> dict[str, Any]:
    """The agency row if the caller may see it; 404 otherwise (also for an unknown id)."""
    if not is_uuid(agency_id):
        raise errors.NotFound('No such agency.')
    row = uow.fetch_one(
        'SELECT id::text, name, account_id::text, created_at FROM agencies WHERE id = :id', id=agency_id
    )
    if row is None or not caller.sees_agency(row['id']):
        raise errors.NotFound('No such agency.')
    return row


def visible_client(uow: UnitOfWork, caller: Caller, client_id: str) -> dict[str, Any]:
    if not is_uuid(client_id):
        raise errors.NotFound('No such client.')
    row = uow.fetch_one(
        'SELECT id::text, agency_id::text, name, account_id::text, created_at FROM clients WHERE id = :id',
        id=client_id,
    )
    if row is None or not caller.sees_client(row['id'], row['agency_id']):
        raise errors.NotFound('No such client.')
    return row


def visible_campaign(uow: UnitOfWork, caller: Caller, campaign_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_uuid(campaign_id):
        raise errors.NotFound('No such campaign.')
    row = uow.fetch_one(
        'SELECT c.id::text, c.client_id::text, cl.agency_id::text, c.name, c.status, c.paused_reason,'
        ' c.budget_mode, c.account_id::text, c.created_at, c.updated_at'
        ' FROM campaigns c JOIN clients cl ON cl.id = c.client_id WHERE c.id = :id'
        + (' FOR UPDATE OF c' if lock else ''),
        id=campaign_id,
    )
    if row is None or not caller.sees_client(row['client_id'], row['agency_id']):
        raise errors.NotFound('No such campaign.')
    return row
