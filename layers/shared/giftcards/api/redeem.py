"""The public redeem routes (no login): `GET /redeem`, the page; `POST /redeem`, a code for its card.

`POST /redeem` takes JSON `{"code": ...}` and answers JSON, or a browser's form post
(`application/x-www-form-urlencoded`) and answers the HTML page, with the same statuses either way. Every
answer carries the page's security headers and is never cached. The body is read here rather than by the
resolver's validation because a form post is not JSON; whatever arrives, the answer is a 4xx, never a 5xx.

A delivered message's link is `GET /redeem?token=...`: a page naming the card, whose button posts the token
(`{"token": ...}` or the form field `token`) to `POST /redeem`, which shows the card once (`giftcards.delivery_links`).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from giftcards import codes, delivery_links, errors, ratelimit, redeem_page, redeeming
from giftcards.api.app import ErrorEnvelope, answers, parse_json, source
from giftcards.api.models import Answer, Dollars, IsoTimestamp
from giftcards.money import to_dollars
from giftcards.observability import logger

router = Router()

FORM = 'application/x-www-form-urlencoded'
JSON = 'application/json'
HTML = 'text/html; charset=utf-8'
_MAX_FORM_FIELDS = 20


class MissingCode(errors.ValidationFailed):
    code, default_message = 'missing_code', 'code: give the redemption code (or a link token) as a string'


class RedeemedCard(Answer):
    brand: str
    brand_id: str
    value: Dollars
    card_code: str
    card_number: str | None
    pin: str | None
    expires_on: date | None


class RedeemedCode(Answer):
    id: str
    status: Literal['pending', 'fulfilled', 'failed']
    code: str  # masked
    created_at: IsoTimestamp


class RedeemAnswer(Answer):
    """The card of a code: what the customer may see, and nothing about the payer, the cost or the source."""

    success: Literal[True]
    replayed: bool
    card: RedeemedCard
    redemption: RedeemedCode


def render(redeemed: redeeming.Redeemed) -> RedeemAnswer:
    """What the customer may see: the card, not the payer's balance, the cost or where the card came from."""
    card, redemption = redeemed.provisioned.card, redeemed.provisioned.redemption
    return RedeemAnswer(
        success=True,
        replayed=redeemed.replayed,
        card=RedeemedCard(
            brand=redeemed.brand_name,
            brand_id=card.brand_id,
            value=to_dollars(card.denomination_cents),
            card_code=card.card_code,
            card_number=card.card_number,
            pin=card.pin,
            expires_on=card.expires_on,
        ),
        redemption=RedeemedCode(
            id=redemption.id,
            status=redemption.status,
            code=codes.masked(redeemed.code_last4),
            created_at=redemption.created_at,
        ),
    )


HTML_PAGE: dict[str, Any] = {'text/html': {'schema': {'type': 'string', 'description': 'the redeem page'}}}


def _refusals(described: dict[int, str]) -> dict[int, Any]:
    """The refusals of `POST /redeem`: JSON in the error envelope, or the page with the message for a form post."""
    envelope: dict[str, Any] = {'application/json': {'model': ErrorEnvelope}, **HTML_PAGE}
    return {status: {'description': text, 'content': envelope} for status, text in described.items()}


def _content_type() -> str:
    header = router.current_event.headers.get('content-type') or ''
    return header.split(';')[0].strip().lower()


def _html(status: int, page: str, extra: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status, content_type=HTML, body=page, headers={**redeem_page.SECURITY_HEADERS, **(extra or {})}
    )


def _json(status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(',', ':')),
        headers={**redeem_page.SECURITY_HEADERS, **(extra or {})},
    )


def _accepts_only_json() -> bool:
    accept = (router.current_event.headers.get('accept') or '').lower()
    return JSON in accept and 'text/html' not in accept


def _body_text() -> str:
    try:
        return router.current_event.decoded_body or ''
    except (ValueError, UnicodeDecodeError):
        raise errors.BadRequest('The request body could not be read.') from None


Typed = tuple[Literal['code', 'token'], str]


def _code_from_form() -> Typed:
    try:
        fields = parse_qs(_body_text(), keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
    except ValueError:
        raise errors.BadRequest('The form could not be read.') from None
    token = fields.get('token') or ['']
    if token[0]:
        return 'token', token[0]
    values = fields.get('code') or ['']
    if not values[0].strip():
        raise MissingCode(redeem_page.MESSAGES['missing_code'])
    return 'code', values[0]


def _code_from_json() -> Typed:
    text = _body_text()
    if not text.strip():
        raise MissingCode()
    try:
        body = parse_json(text)
    except ValueError:
        raise errors.MalformedJson() from None
    if not isinstance(body, dict) or len(body) != 1:
        raise MissingCode()
    ((kind, value),) = body.items()
    if kind not in ('code', 'token') or not isinstance(value, str):
        raise MissingCode()
    return kind, value


def _page_kind(error: errors.DomainError) -> str:
    if isinstance(
        error, codes.InvalidCode | delivery_links.InvalidLink | errors.RateLimited | errors.CampaignNotActive
    ):
        return error.code
    if isinstance(error, MissingCode):
        return 'missing_code'
    if isinstance(error, errors.BadRequest | errors.MalformedJson):
        return 'bad_request'
    if error.status == 503:
        return 'unavailable'
    return 'rejected'


def _card_view(redeemed: redeeming.Redeemed) -> redeem_page.CardView:
    card = redeemed.provisioned.card
    return redeem_page.CardView(
        brand=redeemed.brand_name,
        value_cents=card.denomination_cents,
        card_code=card.card_code,
        card_number=card.card_number,
        pin=card.pin,
        expires_on=card.expires_on.isoformat() if card.expires_on else None,
        redemption_code_last4=redeemed.code_last4,
        replayed=redeemed.replayed,
    )


def _retry_after(error: errors.DomainError) -> int | None:
    value = error.headers.get('Retry-After')
    return int(value) if value and value.isdigit() else None


def _linked_view(linked: delivery_links.LinkedCard) -> redeem_page.CardView:
    card = linked.card
    assert card is not None
    return redeem_page.CardView(
        brand=linked.brand_name,
        value_cents=linked.denomination_cents,
        card_code=card.card_code,
        card_number=card.card_number,
        pin=card.pin,
        expires_on=card.expires_on.isoformat() if card.expires_on else None,
        redemption_code_last4=linked.code_last4,
        replayed=False,
        by_link=True,
    )


def render_linked(linked: delivery_links.LinkedCard) -> RedeemAnswer:
    """The card a link showed, in the shape of a redeemed code's."""
    card = linked.card
    assert card is not None
    return RedeemAnswer(
        success=True,
        replayed=False,
        card=RedeemedCard(
            brand=linked.brand_name,
            brand_id=card.brand_id,
            value=to_dollars(card.denomination_cents),
            card_code=card.card_code,
            card_number=card.card_number,
            pin=card.pin,
            expires_on=card.expires_on,
        ),
        redemption=RedeemedCode(
            id=linked.redemption_id,
            status='fulfilled',
            code=codes.masked(linked.code_last4),
            created_at=linked.created_at,
        ),
    )


@router.get(
    '/redeem',
    summary='The redeem page (public HTML); with `?token=`, the page of a delivered link',
    description='A link token names its card (brand and value) and a button that shows it; following the link uses '
    'nothing.',
    responses={
        **answers(
            {422: '`invalid_text`: a parameter holds text no page can show'},
            description='The page: a form for the code, or the card a link is for behind a button',
            content=HTML_PAGE,
        ),
        **_refusals(
            {
                404: '`invalid_link`: the link expired or was used: the page says so, or JSON for a caller that '
                'accepts only JSON'
            }
        ),
    },
)
def get_redeem() -> Response[str]:
    token = router.current_event.get_query_string_value(delivery_links.QUERY)
    if token is None:
        return _html(200, redeem_page.form_page())
    try:
        linked = delivery_links.peek(token)
    except delivery_links.InvalidLink as error:
        if _accepts_only_json():
            return _json(error.status, error.body())
        return _html(404, redeem_page.form_page(error=redeem_page.message_for('invalid_link')))
    return _html(200, redeem_page.link_page(linked.brand_name, linked.denomination_cents, token))


@router.post(
    '/redeem',
    summary='Redeem a code (public): JSON {code} answers JSON; a form post answers the HTML page',
    description='Unknown, voided and malformed codes are all 404 invalid_code. Failed attempts are limited per '
    'source IP (429 with Retry-After).',
    responses={
        **answers(
            {},
            description='The card: JSON for a JSON post, the card page for a form post',
            content={'application/json': {'model': RedeemAnswer}, **HTML_PAGE},
        ),
        **_refusals(
            {
                400: '`malformed_json`, `malformed_body` or `bad_request`: the body cannot be read',
                404: '`invalid_code`: no such code (unknown, voided or malformed); `invalid_link`: the link token '
                'expired or was used',
                409: '`campaign_not_active` or `insufficient_credit`: the code cannot be redeemed now',
                415: '`unsupported_media_type`: neither JSON nor a form post',
                422: '`missing_code`: no code given, or `invalid_text`',
                429: '`rate_limited`: too many failed attempts from this network; see Retry-After',
                503: '`fulfilment_pending`, `fulfilment_unavailable`, `outcome_unknown`, `service_unavailable` or '
                '`busy`: try again later with the same code',
            }
        ),
    },
)
def post_redeem() -> Response[str]:
    content_type = _content_type()
    as_page = content_type == FORM
    typed = ''
    try:
        if as_page:
            kind, typed = _code_from_form()
        elif content_type in ('', JSON):
            kind, typed = _code_from_json()
        else:
            raise errors.UnsupportedMediaType('Send {"code": ...} as application/json, or post the form.')
        origin = source(router)
        if kind == 'token':
            token, typed = typed, ''  # a link's token is never put back into a page
            linked = delivery_links.open_link(token, source_ip=origin['ip'], user_agent=origin['user_agent'])
            if as_page:
                return _html(200, redeem_page.card_page(_linked_view(linked)))
            return _json(200, render_linked(linked).model_dump(mode='json'))
        redeemed = redeeming.redeem(typed, ratelimit.Source.of(origin['ip'], origin['user_agent']))
    except errors.DomainError as error:
        if error.status >= 500:
            logger.warning('redeem failed', extra={'error_code': error.code, 'status': error.status})
        if not as_page:
            return _json(error.status, error.body(), error.headers)
        shown = _page_kind(error)
        message = redeem_page.message_for(shown, _retry_after(error))
        tone = 'warning' if shown in ('unavailable', 'rate_limited', 'campaign_not_active') else 'error'
        # Keep what was typed so a typo can be fixed, except after a refusal that is not about the code.
        keep = typed if shown in ('invalid_code', 'unavailable', 'campaign_not_active') else ''
        return _html(error.status, redeem_page.form_page(error=message, tone=tone, code=keep), error.headers)
    if as_page:
        return _html(200, redeem_page.card_page(_card_view(redeemed)))
    return _json(200, render(redeemed).model_dump(mode='json'))
