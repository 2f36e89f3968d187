"""What deliveries depend on, set by people: what a campaign's messages hold, a brand's instructions, and the SMS
opt-ins a client has collected.

- A campaign's messages hold a link to the redeem page (the default) or the card itself (`content`); its client's
  admins choose. A delivery keeps the content its campaign had when the redemption was fulfilled.
- A brand's instructions (how to spend its cards) appear in every message about its cards; the platform admin
  writes them.
- An SMS goes only to a number the client recorded an opt-in for: when it was given and where (`source`, e.g.
  "checkout form, terms v3"). A number that replied STOP is refused until it replies START: recording an opt-in
  does not override the recipient's own word. The client's admins record and list them; the list shows each
  number's opt-out too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from giftcards import auth, db, errors, pagination, recipients
from giftcards.db import UnitOfWork
from giftcards.deliveries import Content, audit
from giftcards.pagination import Page

FUTURE_SLACK = timedelta(minutes=5)  # an opt-in time this far ahead of ours is a clock's error, not a mistake
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no opt-in of an SMS recipient is older than this


class CampaignDelivery(NamedTuple):
    campaign_id: str
    client_id: str
    content: Content
    updated_at: datetime


class BrandMessage(NamedTuple):
    brand_id: str
    instructions: str
    updated_at: datetime


class SmsConsent(NamedTuple):
    client_id: str
    phone: str
    opted_in_at: datetime
    source: str
    recorded_at: datetime
    opted_out_at: datetime | None  # a STOP reply (or complaint) that still holds
    opt_out_source: str | None


_SET_CONTENT = """
INSERT INTO campaign_delivery_settings AS s (campaign_id, client_id, content, updated_by)
VALUES (CAST(:campaign AS uuid), CAST(:client AS uuid), :content, :subject)
ON CONFLICT (campaign_id) DO UPDATE SET content = EXCLUDED.content, updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING s.campaign_id::text, s.client_id::text, s.content, s.updated_at
"""


def set_campaign_content(subject: str, campaign_id: str, content: Content) -> CampaignDelivery:
    """What the campaign's messages hold from now on (its client's admins)."""

    def work(uow: UnitOfWork) -> CampaignDelivery:
        caller = auth.load_caller(uow, subject)
        campaign = auth.visible_campaign(uow, caller, campaign_id)
        if not caller.administers_client(campaign['client_id'], campaign['agency_id']):
            raise errors.Forbidden("Only the client's admins may change what its campaigns send.")
        row = uow.fetch_one(
            _SET_CONTENT, campaign=campaign['id'], client=campaign['client_id'], content=content, subject=subject
        )
        assert row is not None
        audit(uow, subject, 'campaign.delivery_content', 'campaign', campaign['id'], {'content': content})
        return CampaignDelivery(row['campaign_id'], row['client_id'], row['content'], row['updated_at'])

    return db.in_transaction(work)


_SET_INSTRUCTIONS = """
INSERT INTO brand_messages AS m (brand_id, instructions, updated_by)
VALUES (CAST(:brand AS uuid), :instructions, :subject)
ON CONFLICT (brand_id) DO UPDATE
   SET instructions = EXCLUDED.instructions, updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING m.brand_id::text, m.instructions, m.updated_at
"""


def set_brand_instructions(subject: str, brand_id: str, instructions: str) -> BrandMessage:
    """How to spend the brand's cards, in every message about them (platform admin)."""

    def work(uow: UnitOfWork) -> BrandMessage:
        caller = auth.load_caller(uow, subject)
        if not caller.sees_catalogue() or not auth.is_uuid(brand_id):
            raise errors.NotFound('No such brand.')
        auth.require_platform_admin(caller)
        if uow.fetch_one('SELECT 1 FROM brands WHERE id = CAST(:id AS uuid)', id=brand_id) is None:
            raise errors.NotFound('No such brand.')
        row = uow.fetch_one(_SET_INSTRUCTIONS, brand=brand_id, instructions=instructions, subject=subject)
        assert row is not None
        audit(uow, subject, 'brand.message', 'brand', brand_id, {})
        return BrandMessage(row['brand_id'], row['instructions'], row['updated_at'])

    return db.in_transaction(work)


# --- SMS opt-ins ---------------------------------------------------------------------------------------------

_CONSENT_COLUMNS = """c.client_id::text, c.phone, c.opted_in_at, c.source, c.recorded_at,
       o.opted_out_at, o.source AS opt_out_source"""
_OPT_OUT_JOIN = (
    "LEFT JOIN delivery_opt_outs o ON o.channel = 'sms' AND o.address = c.phone AND o.opted_in_again_at IS NULL"
)

_RECORD = f"""
WITH recorded AS (
    INSERT INTO sms_consents AS c (client_id, phone, opted_in_at, source, recorded_by)
    VALUES (CAST(:client AS uuid), :phone, :opted_in_at, :source, :subject)
    ON CONFLICT (client_id, phone) DO UPDATE
       SET opted_in_at = EXCLUDED.opted_in_at, source = EXCLUDED.source, recorded_by = EXCLUDED.recorded_by,
           recorded_at = now()
    RETURNING c.*
)
SELECT {_CONSENT_COLUMNS} FROM recorded c {_OPT_OUT_JOIN}
"""

_OPTED_OUT = "SELECT delivery_consent(CAST(:client AS uuid), 'sms', :phone) = 'opted_out'"

_LIST = f"""
SELECT {_CONSENT_COLUMNS}
  FROM sms_consents c {_OPT_OUT_JOIN}
 WHERE c.client_id = CAST(:client AS uuid) AND (CAST(:phone AS text) IS NULL OR c.phone = :phone)
   AND (CAST(:after AS text) IS NULL OR c.phone > :after)
 ORDER BY c.phone
 LIMIT CAST(:n AS integer)
"""


def _consent(row: dict[str, Any]) -> SmsConsent:
    return SmsConsent(
        client_id=row['client_id'],
        phone=row['phone'],
        opted_in_at=row['opted_in_at'],
        source=row['source'],
        recorded_at=row['recorded_at'],
        opted_out_at=row['opted_out_at'],
        opt_out_source=row['opt_out_source'],
    )


def _phone(text: str) -> str:
    phone = recipients.normalise_phone(text)
    if phone is None:
        message = 'is not a phone number in international form (E.164), e.g. +14155550123'
        raise errors.ValidationFailed(f'phone: {message}', details=[{'field': 'phone', 'message': message}])
    return phone


def _administered_client(uow: UnitOfWork, subject: str, client_id: str, action: str) -> dict[str, Any]:
    caller = auth.load_caller(uow, subject)
    client = auth.visible_client(uow, caller, client_id)
    if not caller.administers_client(client['id'], client['agency_id']):
        raise errors.Forbidden(f"Only the client's admins may {action}.")
    return client


def record_sms_consent(
    subject: str, client_id: str, phone: str, source: str, opted_in_at: datetime | None = None
) -> SmsConsent:
    """Record that `phone` opted in to the client's messages (now, unless `opted_in_at` says when); a later record
    replaces the earlier one. 409 `recipient_opted_out` for a number whose STOP reply still holds."""
    number = _phone(phone)
    now = datetime.now(UTC)
    given = opted_in_at or now
    if given.tzinfo is None:
        raise errors.ValidationFailed(
            'opted_in_at: give a time zone', details=[{'field': 'opted_in_at', 'message': 'give a time zone'}]
        )
    if not EARLIEST <= given <= now + FUTURE_SLACK:
        problem = 'is in the future' if given > now else f'is before {EARLIEST.year}'
        raise errors.ValidationFailed(f'opted_in_at: {problem}', details=[{'field': 'opted_in_at', 'message': problem}])

    def work(uow: UnitOfWork) -> SmsConsent:
        client = _administered_client(uow, subject, client_id, 'record its opt-ins')
        if uow.value(_OPTED_OUT, client=client['id'], phone=number):
            raise errors.Conflict(
                'This number replied STOP: it receives nothing until it replies START.', code='recipient_opted_out'
            )
        row = uow.fetch_one(
            _RECORD, client=client['id'], phone=number, opted_in_at=given, source=source.strip(), subject=subject
        )
        assert row is not None
        audit(uow, subject, 'sms_consent.recorded', 'client', client['id'], {'source': source.strip()})
        return _consent(row)

    return db.in_transaction(work)


def list_sms_consents(
    subject: str,
    client_id: str,
    *,
    phone: str | None = None,
    limit: int = pagination.DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[SmsConsent]:
    """The client's recorded opt-ins by number, each with its opt-out if one holds; `phone` narrows to one."""
    number = _phone(phone) if phone is not None else None
    (after,) = pagination.decode_cursor(cursor, size=1)
    if after is not None and not isinstance(after, str):
        raise errors.ValidationFailed('cursor: not a cursor this API issued')

    def work(uow: UnitOfWork) -> Page[SmsConsent]:
        client = _administered_client(uow, subject, client_id, 'see its opt-ins')
        rows = uow.fetch(_LIST, client=client['id'], phone=number, after=after, n=limit + 1)
        return pagination.page_of(rows, limit, lambda r: (r['phone'],), _consent)

    return db.in_transaction(work, read_only=True)
