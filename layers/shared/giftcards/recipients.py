"""Who a card is delivered to: a provision's `deliveryMethod` and `deliveryAddress`, checked and normalised once.

`recipient` is the one rule every caller goes through (provisioning checks it before it reads or charges anything):
the method is `email`, `sms`, or absent / `none` (no delivery, and then no address); an e-mail address must be
one a mail server can take (a local part of the usual characters, a domain of at least two labels; stored with the
domain in lower case, an internationalised domain as its ASCII form); a phone number is normalised to E.164 (a
`+`, or `00`, then the country code: spaces, dots, dashes and brackets between digits are dropped). Anything else
is a 422 naming the field.

Addresses are personal data: logs and lists show them masked (`masked`).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from giftcards import errors

Channel = Literal['email', 'sms']
CHANNELS: tuple[Channel, ...] = ('email', 'sms')
NO_DELIVERY = 'none'

# Why a recipient may not be messaged: what `delivery_consent` (migration 0023) answers other than 'granted'.
CONSENT_REFUSALS = {
    'missing': 'no SMS opt-in is recorded for this number',
    'opted_out': 'the recipient opted out (STOP reply or complaint)',
}

EMAIL_MAX = 254  # RFC 5321's limit on a forward path
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')
_TOP_LABEL = re.compile(r'[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}')
_PHONE_SEPARATORS = re.compile(r'[\s.\-()/]')
_E164 = re.compile(r'\+[1-9][0-9]{6,14}')


class Recipient(NamedTuple):
    channel: Channel
    address: str  # normalised: an e-mail address, or a phone number in E.164

    def __repr__(self) -> str:  # never the address itself
        return f'Recipient({self.channel}, {masked(self.channel, self.address)})'


def _refused(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f'{field}: {message}', details=[{'field': field, 'message': message}])


def recipient(method: str | None, address: str | None) -> Recipient | None:
    """The recipient a provision names, normalised; None for no delivery. Raises ValidationFailed (422) naming
    `deliveryMethod` or `deliveryAddress`."""
    if method is None or method == NO_DELIVERY:
        if address is not None and address.strip():
            raise _refused('deliveryAddress', 'give deliveryMethod email or sms with an address')
        return None
    if method not in CHANNELS:
        raise _refused('deliveryMethod', 'must be email, sms or none')
    if address is None or not address.strip():
        raise _refused('deliveryAddress', f'required for deliveryMethod {method}')
    if method == 'email':
        email = normalise_email(address)
        if email is None:
            raise _refused('deliveryAddress', 'is not a valid e-mail address')
        return Recipient('email', email)
    phone = normalise_phone(address)
    if phone is None:
        raise _refused('deliveryAddress', 'is not a phone number in international form (E.164), e.g. +14155550123')
    return Recipient('sms', phone)


def normalise_email(text: str) -> str | None:
    """The address with its domain in lower case (and an internationalised domain in its ASCII form), or None."""
    value = text.strip()
    local, at, domain = value.rpartition('@')
    if not at or not local or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    try:
        ascii_domain = domain.encode('idna').decode('ascii').lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split('.')
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if not _TOP_LABEL.fullmatch(labels[-1]):
        return None
    email = f'{local}@{ascii_domain}'
    return email if len(email) <= EMAIL_MAX else None


def normalise_phone(text: str) -> str | None:
    """The number in E.164 (`+` and 7 to 15 digits, the first not 0), or None. A number without its country code
    (no leading `+` or `00`) cannot be placed, and is refused rather than guessed."""
    value = _PHONE_SEPARATORS.sub('', text.strip())
    if value.startswith('00'):
        value = '+' + value[2:]
    return value if _E164.fullmatch(value) else None


def masked(channel: str, address: str) -> str:
    """An address as lists and logs show it: `j***@example.com`, `+1*******0123`."""
    if channel == 'email':
        local, _, domain = address.rpartition('@')
        return f'{local[:1]}***@{domain}'
    return address[:2] + '*' * max(len(address) - 6, 0) + address[-4:]
