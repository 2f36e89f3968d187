"""A provision's recipient: e-mail addresses checked for syntax, phone numbers normalised to E.164, and every refusal
a 422 naming its field."""

from __future__ import annotations

import pytest
from giftcards import errors, recipients
from giftcards.recipients import Recipient


@pytest.mark.parametrize(
    ('given', 'stored'),
    [
        ('ann@example.com', 'ann@example.com'),
        ('  Ann.Lee+gift@Example.COM ', 'Ann.Lee+gift@example.com'),
        ("o'brien_2@mail.example.co.uk", "o'brien_2@mail.example.co.uk"),
        ('x@b\u00fccher.de', 'x@xn--bcher-kva.de'),
    ],
)
def test_an_email_address_is_accepted_with_its_domain_in_lower_case(given: str, stored: str) -> None:
    assert recipients.recipient('email', given) == Recipient('email', stored)


@pytest.mark.parametrize(
    'address',
    [
        'no-at-sign',
        'a@localhost',
        'a@@example.com',
        '@example.com',
        'a@example..com',
        '.a@example.com',
        'a.@example.com',
        'a b@example.com',
        'a@-example.com',
        'a@example.c',
        'a@example.123',
        '\u00e9@example.com',
        'a@exa_mple.com',
        'x' * 65 + '@example.com',
        'a@' + 'b' * 250 + '.com',
        '"quoted"@example.com',
    ],
)
def test_an_email_address_no_mail_server_takes_is_refused(address: str) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        recipients.recipient('email', address)

    assert refused.value.details == [{'field': 'deliveryAddress', 'message': 'is not a valid e-mail address'}]


@pytest.mark.parametrize(
    ('given', 'stored'),
    [
        ('+14155550123', '+14155550123'),
        ('+1 (415) 555-0123', '+14155550123'),
        ('0044 20 7946 0958', '+442079460958'),
        ('+49.30.901820', '+4930901820'),
        ('+683 4002', '+6834002'),  # Niue: seven digits in all
    ],
)
def test_a_phone_number_is_normalised_to_e164(given: str, stored: str) -> None:
    assert recipients.recipient('sms', given) == Recipient('sms', stored)


@pytest.mark.parametrize(
    'number', ['4155550123', '(415) 555-0123', '+0415550123', '+12345', '+1234567890123456', '+1 415 CALL NOW', '']
)
def test_a_number_that_is_not_e164_is_refused(number: str) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        recipients.recipient('sms', number)

    assert refused.value.details is not None and refused.value.details[0]['field'] == 'deliveryAddress'


@pytest.mark.parametrize(
    ('method', 'address', 'field'),
    [
        ('fax', 'a@example.com', 'deliveryMethod'),
        ('Email', 'a@example.com', 'deliveryMethod'),
        ('email', None, 'deliveryAddress'),
        ('sms', '  ', 'deliveryAddress'),
        (None, 'a@example.com', 'deliveryAddress'),
        ('none', '+14155550123', 'deliveryAddress'),
    ],
)
def test_a_method_and_address_that_do_not_go_together_are_refused(
    method: str | None, address: str | None, field: str
) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        recipients.recipient(method, address)

    assert refused.value.status == 422 and refused.value.details is not None
    assert refused.value.details[0]['field'] == field


def test_no_method_or_none_means_no_delivery() -> None:
    assert recipients.recipient(None, None) is None
    assert recipients.recipient('none', None) is None
    assert recipients.recipient('none', '') is None


def test_addresses_are_masked_for_lists_and_logs() -> None:
    assert recipients.masked('email', 'ann.lee@example.com') == 'a***@example.com'
    assert recipients.masked('sms', '+14155550123') == '+1******0123'
    assert '0123' not in repr(Recipient('email', 'x0123@example.com')).split('@')[0]
