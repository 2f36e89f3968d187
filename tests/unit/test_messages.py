"""What a delivered message says: the link or the card, the brand's instructions, and nothing a brand name or an
instruction could inject into the HTML."""

from __future__ import annotations

from datetime import UTC, date, datetime

from giftcards.card_secrets import RevealedCard
from giftcards.messages import Card, compose

LINK = 'https://gifts.example.com/redeem?token=abc'


def revealed() -> RevealedCard:
    return RevealedCard(
        card_id='c',
        brand_id='b',
        denomination_cents=2500,
        source='csv',
        card_code='CODE-1234',
        card_number='6006000011112222',
        pin='9876',
        expires_on=date(2027, 1, 31),
        code_last4='1234',
        number_last4='2222',
        vendor=None,
        vendor_reference=None,
    )


def test_a_link_message_holds_the_link_and_no_card() -> None:
    message = compose(
        Card('Books', 2500, None), link=LINK, link_expires_at=datetime(2027, 1, 5, tzinfo=UTC), secrets=None
    )

    assert message.subject == 'Your Books gift card ($25.00)'
    assert LINK in message.text and LINK in message.sms and 'January 5, 2027' in message.text
    assert 'Use it at checkout wherever Books gift cards are accepted.' in message.text
    assert f'href="{LINK}"' in message.html


def test_a_card_message_holds_the_card_and_the_brands_instructions() -> None:
    message = compose(Card('Books', 2500, 'Redeem at {brand}.com'), link=None, link_expires_at=None, secrets=revealed())

    for part in (message.text, message.html):
        assert 'CODE-1234' in part and '6006000011112222' in part and '9876' in part and '2027-01-31' in part
    assert 'Redeem at Books.com' in message.text and 'CODE-1234' in message.sms
    assert 'token' not in message.text
    assert 'CODE-1234' not in repr(message)


def test_the_html_escapes_what_came_from_people() -> None:
    message = compose(
        Card('<script>x</script>', 2500, '<img src=x onerror=alert(1)>'), link=LINK, link_expires_at=None, secrets=None
    )

    assert '<script>' not in message.html and '<img' not in message.html
    assert '&lt;script&gt;' in message.html
