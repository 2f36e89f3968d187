"""Memberships: who holds which role in which tenant. Written by operators (CLI, owner role); read by `auth`, and by
`signed_in`, which names what a person administers (`GET /me`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from giftcards import db
from giftcards.auth import Role, is_uuid


class MembershipError(Exception):
    pass


def grant(conn: Any, subject: str, role: str, *, agency_id: str | None = None, client_id: str | None = None) -> None:
    """Add a membership (idempotent). `conn` is an owner pg8000 connection: the app role cannot write these."""
    if role not in {r.value for r in Role}:
        raise MembershipError(f'unknown role {role!r}')
    if role == Role.PLATFORM_ADMIN and (agency_id or client_id):
        raise MembershipError('platform_admin takes no --agency or --client')
    if role == Role.AGENCY_ADMIN and not agency_id:
        raise MembershipError('agency_admin needs --agency ID')
    if role in (Role.CLIENT_ADMIN, Role.CLIENT_INTEGRATION) and not client_id:
        raise MembershipError(f'{role} needs --client ID')
    for label, value, table in (('agency', agency_id, 'agencies'), ('client', client_id, 'clients')):
        if value is not None and (
            not is_uuid(value) or not conn.run(f'SELECT 1 FROM {table} WHERE id = :id', id=value)
        ):
            raise MembershipError(f'no {label} with id {value}')
    conn.run(
        'INSERT INTO memberships (subject, role, agency_id, client_id) VALUES (:s, :r, :a, :c) ON CONFLICT DO NOTHING',
        s=subject,
        r=role,
        a=agency_id,
        c=client_id,
    )


# --- what a signed-in person administers -------------------------------------------------------------------

_ADMINISTERED = """
SELECT m.role, a.id::text AS agency_id, a.name AS agency_name, a.account_id::text AS agency_account_id,
       c.id::text AS client_id, c.name AS client_name, c.account_id::text AS client_account_id,
       c.agency_id::text AS client_agency_id
  FROM memberships m
  LEFT JOIN agencies a ON a.id = m.agency_id
  LEFT JOIN clients c ON c.id = m.client_id
 WHERE m.subject = :s AND m.role <> 'client_integration'
 ORDER BY m.role, coalesce(a.name, c.name), coalesce(a.id, c.id)
"""


class Tenant(NamedTuple):
    """An agency or client the caller administers, named, with its credit account."""

    id: str
    name: str
    account_id: str
    agency_id: str | None = None  # a client's agency


class SignedIn(NamedTuple):
    """What a person's memberships let them administer: where the console starts. Integration memberships are left
    out: they administer nothing (an integration may only provision)."""

    subject: str
    platform_admin: bool
    agencies: list[Tenant]
    clients: list[Tenant]


def signed_in(subject: str) -> SignedIn:
    (rows,) = db.read((_ADMINISTERED, {'s': subject}))
    agencies = [
        Tenant(r['agency_id'], r['agency_name'], r['agency_account_id'])
        for r in rows
        if r['role'] == Role.AGENCY_ADMIN and r['agency_id']
    ]
    clients = [
        Tenant(r['client_id'], r['client_name'], r['client_account_id'], r['client_agency_id'])
        for r in rows
        if r['role'] == Role.CLIENT_ADMIN and r['client_id']
    ]
    return SignedIn(subject, any(r['role'] == Role.PLATFORM_ADMIN for r in rows), agencies, clients)
