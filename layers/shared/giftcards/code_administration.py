"""Administering redemption codes (a campaign's admins, or above): issue a batch (its codes shown once), list them
(masked), void one. The codes themselves, their hash and their lookup are `giftcards.codes`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from giftcards import auth, db, errors, pagination
from giftcards.codes import GROUP, CodeStatus, code_hash, generate_code
from giftcards.db import UnitOfWork
from giftcards.money import to_dollars

MAX_ISSUE = 10_000


class CodeAlreadyRedeemed(errors.Conflict):
    code = 'code_redeemed'
    default_message = 'This code was already redeemed and cannot be voided.'


class RedemptionCode(NamedTuple):
    """An issued code as its administrators see it: after it was issued, only its last 4 symbols are known."""

    id: str
    campaign_id: str
    brand_id: str
    denomination_cents: int
    last4: str
    status: CodeStatus
    batch_id: str
    issued_by: str
    issued_at: datetime
    redeemed_at: datetime | None
    voided_at: datetime | None
    voided_by: str | None


def _redemption_code(row: dict[str, Any]) -> RedemptionCode:
    return RedemptionCode(**row)


_CODE_COLUMNS = (
    'rc.id::text, rc.campaign_id::text, rc.brand_id::text, rc.denomination_cents, rc.last4, rc.status,'
    ' rc.batch_id::text, rc.issued_by, rc.issued_at, rc.redeemed_at, rc.voided_at, rc.voided_by'
)


class IssuedBatch(NamedTuple):
    batch_id: str
    campaign_id: str
    brand_id: str
    denomination_cents: int
    codes: list[str]  # in clear: the only time they exist so


def _administered_campaign(uow: UnitOfWork, subject: str, campaign_id: str, action: str) -> dict[str, Any]:
    caller = auth.load_caller(uow, subject)
    campaign = auth.visible_campaign(uow, caller, campaign_id)
    if not caller.administers_client(campaign['client_id'], campaign['agency_id']):
        raise errors.Forbidden(f'Only an admin of this campaign may {action}.')
    return campaign


def _invalid_field(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f'{field}: {message}', details=[{'field': field, 'message': message}])


def insert_codes(
    uow: UnitOfWork,
    campaign_id: str,
    brand_id: str,
    denomination_cents: int,
    count: int,
    *,
    actor: str,
    generate: Callable[[], str] = generate_code,
) -> IssuedBatch:
    """Store `count` new codes as hashes in one statement; answers them (the only time they exist in clear).

    A hash already stored (80 random bits make it all but impossible) is skipped by the statement and
    replaced by a fresh code in another round."""
    batch_id = str(uuid.uuid4())
    issued: list[str] = []
    for _ in range(5):
        wanted = count - len(issued)
        fresh: dict[bytes, str] = {}
        while len(fresh) < wanted:
            code = generate()
            fresh[code_hash(code)] = code
        stored = uow.fetch(
            'INSERT INTO redemption_codes (campaign_id, brand_id, denomination_cents, code_hash, last4, batch_id,'
            ' issued_by)'
            ' SELECT CAST(:campaign AS uuid), CAST(:brand AS uuid), :denomination, h, l, CAST(:batch AS uuid), :actor'
            ' FROM unnest(CAST(:hashes AS bytea[]), CAST(:last4s AS text[])) AS t (h, l)'
            ' ON CONFLICT (code_hash) DO NOTHING RETURNING code_hash',
            campaign=campaign_id,
            brand=brand_id,
            denomination=denomination_cents,
            batch=batch_id,
            actor=actor,
            hashes=list(fresh),
            last4s=[code[-GROUP:] for code in fresh.values()],
        )
        issued.extend(fresh[bytes(r['code_hash'])] for r in stored)
        if len(issued) == count:
            return IssuedBatch(batch_id, campaign_id, brand_id, denomination_cents, issued)
    raise errors.ServiceUnavailable('Could not issue unique codes; try again.', code='busy')


def issue_codes(subject: str, campaign_id: str, brand_id: str, denomination_cents: int, count: int) -> IssuedBatch:
    """`count` new codes for a brand and denomination the brand offers (the campaign's admin, or above)."""
    if not 1 <= count <= MAX_ISSUE:
        raise _invalid_field('count', f'must be between 1 and {MAX_ISSUE}')

    def work(uow: UnitOfWork) -> IssuedBatch:
        campaign = _administered_campaign(uow, subject, campaign_id, 'issue codes for it')
        if campaign['status'] == 'ended':
            raise errors.CampaignNotActive('The campaign has ended; no more codes can be issued for it.')
        brand = (
            uow.fetch_one('SELECT id::text, denominations_cents FROM brands WHERE id = CAST(:id AS uuid)', id=brand_id)
            if auth.is_uuid(brand_id)
            else None
        )
        if brand is None:
            raise _invalid_field('brand_id', 'no such brand')
        if denomination_cents not in brand['denominations_cents']:
            offered = ', '.join(str(to_dollars(c)) for c in sorted(brand['denominations_cents']))
            raise _invalid_field('denomination', f'the brand offers {offered}')
        batch = insert_codes(uow, campaign['id'], brand['id'], denomination_cents, count, actor=subject)
        uow.execute(
            'INSERT INTO audit_events (actor, action, entity_type, entity_id, details)'
            " VALUES (:actor, 'codes.issued', 'campaign', CAST(:id AS uuid), CAST(:details AS jsonb))",
            actor=subject,
            id=campaign['id'],
            details=json.dumps(
                {
                    'batch_id': batch.batch_id,
                    'brand_id': brand['id'],
                    'denomination_cents': denomination_cents,
                    'count': count,
                }
            ),
        )
        return batch

    return db.in_transaction(work)


def list_codes(
    subject: str, campaign_id: str, limit: int, cursor: str | None, status: CodeStatus | None = None
) -> pagination.Page[RedemptionCode]:
    """A campaign's codes, oldest first (the campaign's admin, or above)."""
    after = pagination.time_cursor_params(cursor)

    def work(uow: UnitOfWork) -> pagination.Page[RedemptionCode]:
        campaign = _administered_campaign(uow, subject, campaign_id, 'list its codes')
        rows = uow.fetch(
            f'SELECT {_CODE_COLUMNS} FROM redemption_codes rc WHERE rc.campaign_id = CAST(:campaign AS uuid)'
            ' AND (CAST(:status AS text) IS NULL OR rc.status = :status)'
            ' AND (CAST(:after_at AS timestamptz) IS NULL'
            '      OR (rc.issued_at, rc.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)))'
            ' ORDER BY rc.issued_at, rc.id LIMIT CAST(:n AS integer)',
            campaign=campaign['id'],
            status=status,
            n=limit + 1,
            **after,
        )
        return pagination.page_of(rows, limit, lambda r: (r['issued_at'], r['id']), _redemption_code)

    return db.in_transaction(work)


def void_code(subject: str, code_id: str) -> RedemptionCode:
    """Void an issued code (idempotent); a redeemed code cannot be voided (409)."""

    def work(uow: UnitOfWork) -> RedemptionCode:
        found = (
            uow.fetch_one('SELECT campaign_id::text FROM redemption_codes WHERE id = CAST(:id AS uuid)', id=code_id)
            if auth.is_uuid(code_id)
            else None
        )
        if found is None:
            raise errors.NotFound('No such code.')
        try:
            _administered_campaign(uow, subject, found['campaign_id'], 'void its codes')
        except errors.NotFound:
            raise errors.NotFound('No such code.') from None
        row = uow.fetch_one(
            f"UPDATE redemption_codes rc SET status = 'void', voided_at = now(), voided_by = :actor"
            f" WHERE rc.id = CAST(:id AS uuid) AND rc.status = 'issued' RETURNING {_CODE_COLUMNS}",
            id=code_id,
            actor=subject,
        )
        if row is not None:
            uow.execute(
                'INSERT INTO audit_events (actor, action, entity_type, entity_id, details)'
                " VALUES (:actor, 'code.voided', 'redemption_code', CAST(:id AS uuid), '{}'::jsonb)",
                actor=subject,
                id=code_id,
            )
            return _redemption_code(row)
        row = uow.fetch_one(
            f'SELECT {_CODE_COLUMNS} FROM redemption_codes rc WHERE rc.id = CAST(:id AS uuid)', id=code_id
        )
        assert row is not None
        if row['status'] == 'redeemed':
            raise CodeAlreadyRedeemed()
        return _redemption_code(row)

    return db.in_transaction(work)
