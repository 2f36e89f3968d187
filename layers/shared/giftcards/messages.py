"""What a delivered message says: the brand's card, its value and how to use it, in plain text and HTML (e-mail) or
one short text (SMS).

A message holds either the link to the redeem page (`link`, the default: the card is shown there, once) or the
card itself (`card`, when the campaign is set to send it). The brand's instructions (`brand_messages`) say how to
spend the card; without them, a general sentence does. Every value from the database or a caller passes through
`html.escape` in the HTML part.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import NamedTuple

from giftcards.card_secrets import RevealedCard
from giftcards.records import repr_hiding

DEFAULT_INSTRUCTIONS = 'Use it at checkout wherever {brand} gift cards are accepted.'
SMS_MAX = 480  # three concatenated segments of GSM text


class Message(NamedTuple):
    """One message, every part of it. Its texts hold a link token or a card: they stay out of `repr`."""

    subject: str
    text: str
    html: str
    sms: str

    def __repr__(self) -> str:  # what it says (a card) never
        return repr_hiding(self, 'text', 'html', 'sms')


class Card(NamedTuple):
    """What the message is about."""

    brand: str
    value_cents: int
    instructions: str | None


def dollars(cents: int) -> str:
    return f'${cents // 100:,}.{cents % 100:02d}'


def compose(card: Card, *, link: str | None, link_expires_at: datetime | None, secrets: RevealedCard | None) -> Message:
    """The message for a card: with its link (and when the link expires), or with the card's secrets."""
    value = dollars(card.value_cents)
    instructions = (card.instructions or DEFAULT_INSTRUCTIONS).replace('{brand}', card.brand)
    subject = f'Your {card.brand} gift card ({value})'
    lines = [f'You have received a {value} {card.brand} gift card.', '']
    html_parts = [f'<p>You have received a <strong>{escape(value)} {escape(card.brand)}</strong> gift card.</p>']
    if secrets is not None:
        shown = [('Card code', secrets.card_code), ('Card number', secrets.card_number), ('PIN', secrets.pin)]
        if secrets.expires_on is not None:
            shown.append(('Expires', secrets.expires_on.isoformat()))
        lines += [f'{label}: {value_}' for label, value_ in shown if value_]
        html_parts.append(
            '<dl>'
            + ''.join(f'<dt>{escape(label)}</dt><dd><code>{escape(v)}</code></dd>' for label, v in shown if v)
            + '</dl>'
        )
        sms = f'Your {value} {card.brand} gift card: ' + ', '.join(f'{label} {v}' for label, v in shown[:3] if v)
    else:
        assert link is not None
        until = f', until {_day(link_expires_at)}' if link_expires_at is not None else ''
        note = f'The link works once{until}: keep the card details when you see them.'
        lines += ['Open this link to see your card:', link, note]
        html_parts.append(f'<p><a href="{escape(link)}">Show my gift card</a></p><p>{escape(note)}</p>')
        sms = f'Your {value} {card.brand} gift card is here: {link}'
    lines += ['', instructions]
    html_parts.append(f'<p>{escape(instructions)}</p>')
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{escape(subject)}</title></head><body>{"".join(html_parts)}</body></html>'
    )
    return Message(subject=subject, text='\n'.join(lines) + '\n', html=html, sms=sms[:SMS_MAX])


def _day(moment: datetime) -> str:
    return f'{moment:%B} {moment.day}, {moment.year}'
