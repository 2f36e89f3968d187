"""Memberships: who holds which role in which tenant. Written by operators (CLI, owner role); read by `auth`."""

from __future__ import annotations

from typing import Any

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
