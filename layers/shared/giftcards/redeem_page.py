"""The end customer's page, rendered on the server: a form to enter a code, and the card it buys.

It works without JavaScript (a plain form post). With JavaScript, copy buttons appear next to the card's
secrets. The one inline script and the one inline style are allowed by their hashes in the
Content-Security-Policy, so nothing else can run or style the page. Every text that came from a caller or
the database passes through `html.escape`.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from typing import NamedTuple

TITLE = 'Redeem your gift card'

_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1f;background:#f4f4f7}
main{max-width:34rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.5rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-bottom:.25rem}
.hint{margin:0 0 .5rem;color:#4a4a55;font-size:.9375rem}
input{width:100%;padding:.625rem .75rem;font:inherit;font-family:ui-monospace,monospace;letter-spacing:.05em;
text-transform:uppercase;border:2px solid #6b6b78;border-radius:.375rem}
input:focus,button:focus,a:focus{outline:3px solid #1a5fd0;outline-offset:2px}
button{font:inherit;padding:.625rem 1rem;border:0;border-radius:.375rem;background:#1a5fd0;color:#fff;cursor:pointer}
form button{margin-top:1rem;width:100%}
.alert{padding:.75rem 1rem;border-radius:.375rem;margin:0 0 1rem;border-left:.375rem solid}
.error{background:#fdecec;border-color:#b3261e}
.warning{background:#fff4e0;border-color:#9a5b00}
.card{border:1px solid #d0d0d8;border-radius:.5rem;padding:1rem;margin-bottom:1rem}
.card h2{margin:0;font-size:1.25rem}
.value{font-size:2rem;font-weight:700;margin:.25rem 0 1rem}
dl{margin:0}
dt{font-weight:600;margin-top:.75rem}
dd{margin:0;display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
code{font-size:1.125rem;word-break:break-all}
dd button{padding:.25rem .75rem;font-size:.9375rem}
.note{color:#4a4a55;font-size:.9375rem}
"""

_SCRIPT = """
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  var status = document.getElementById('copy-status');
  button.hidden = false;
  button.addEventListener('click', function () {
    var text = document.getElementById(button.getAttribute('data-copy')).textContent;
    navigator.clipboard.writeText(text).then(function () {
      status.textContent = button.getAttribute('data-label') + ' copied.';
    }, function () {
      status.textContent = 'Could not copy. Select the text and copy it instead.';
    });
  });
});
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    'Cache-Control': 'no-store',
    'Pragma': 'no-cache',
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Strict-Transport-Security': 'max-age=63072000; includeSubDomains',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    'Cross-Origin-Opener-Policy': 'same-origin',
}

# What the page says for each refusal; the code (machine) is what the JSON answer carries.
MESSAGES = {
    'invalid_code': "We couldn't find that code. Check it for typos and try again.",
    'campaign_not_active': (
        "This promotion isn't available right now. Please try again later, or contact whoever sent you the code."
    ),
    'rate_limited': 'Too many attempts from your network. Please wait {wait} and try again.',
    'unavailable': (
        "Your gift card is temporarily unavailable. Your code is still valid and you won't be charged twice: "
        'please try again {wait}.'
    ),
    'missing_code': 'Enter the code you received.',
    'invalid_link': (
        'This link has expired or was already used. If you have not seen your card yet, ask whoever sent it to send '
        'it again.'
    ),
    'bad_request': "We couldn't read that request. Please enter your code again.",
    'rejected': "This code can't be redeemed right now. Please contact whoever sent you the code.",
}


class CardView(NamedTuple):
    """What the card page shows; every field is escaped when rendered."""

    brand: str
    value_cents: int
    card_code: str | None
    card_number: str | None
    pin: str | None
    expires_on: str | None
    redemption_code_last4: str
    replayed: bool
    by_link: bool = False  # shown through a delivered message's link, which works once


def dollars(cents: int) -> str:
    return f'${cents // 100:,}.{cents % 100:02d}'


def _wait(seconds: int | None) -> str:
    if not seconds:
        return 'in a few minutes'
    if seconds < 90:
        return f'in {seconds} seconds' if seconds != 1 else 'in 1 second'
    minutes = -(-seconds // 60)
    return f'in {minutes} minutes'


def message_for(kind: str, retry_after: int | None = None) -> str:
    text = MESSAGES.get(kind, MESSAGES['rejected'])
    return text.format(wait=_wait(retry_after).removeprefix('in ') if kind == 'rate_limited' else _wait(retry_after))


def _document(body: str, *, with_script: bool = False) -> str:
    script = f'<script>{_SCRIPT}</script>\n' if with_script else ''
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n<meta name="robots" content="noindex, nofollow">\n'
        f'<title>{escape(TITLE)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n'
        f'{body}</main>\n{script}</body>\n</html>\n'
    )


def form_page(*, error: str | None = None, tone: str = 'error', code: str = '') -> str:
    """The code form; after a refusal, the message above it and the code as typed (escaped) in it."""
    alert = ''
    described = 'code-hint'
    if error:
        alert = f'<div class="alert {escape(tone)}" role="alert" id="code-error">{escape(error)}</div>\n'
        described = 'code-hint code-error'
    invalid = ' aria-invalid="true"' if error and tone == 'error' else ''
    body = (
        f'<h1>{escape(TITLE)}</h1>\n{alert}'
        '<form method="post" action="redeem" autocomplete="off">\n'
        '<label for="code">Redemption code</label>\n'
        '<p class="hint" id="code-hint">The 16 letters and numbers you received, like ABCD-EFGH-JKMN-PQRS. '
        'Dashes and spaces are optional.</p>\n'
        f'<input id="code" name="code" type="text" required maxlength="64" autocomplete="off" '
        f'autocapitalize="characters" autocorrect="off" spellcheck="false" inputmode="text" '
        f'aria-describedby="{described}"{invalid} value="{escape(code[:64])}">\n'
        '<button type="submit">Get my gift card</button>\n'
        '</form>\n'
    )
    return _document(body)


def _secret(label: str, ident: str, value: str | None) -> str:
    if not value:
        return ''
    return (
        f'<dt>{escape(label)}</dt>\n<dd><code id="{ident}">{escape(value)}</code>'
        f'<button type="button" data-copy="{ident}" data-label="{escape(label)}" aria-label="Copy {escape(label)}"'
        ' hidden>Copy</button></dd>\n'
    )


AGAIN_BY_CODE = 'Entering your code again shows this card again.'
AGAIN_BY_LINK = 'The link you followed works only once: copy or print these details now.'


def link_page(brand: str, value_cents: int, token: str) -> str:
    """What a delivered link opens: the card it is for, behind a button. Following the link shows nothing secret and
    uses nothing (mail scanners follow links); the button's form post uses the link, once."""
    body = (
        '<h1>Your gift card is ready</h1>\n'
        f'<section class="card" aria-labelledby="card-title">\n<h2 id="card-title">{escape(brand)}</h2>\n'
        f'<p class="value">{escape(dollars(value_cents))}</p>\n</section>\n'
        '<p class="note">This link works once: the card is shown on the next page, and only there. Have a way to '
        'copy or print it ready.</p>\n'
        '<form method="post" action="redeem" autocomplete="off">\n'
        f'<input type="hidden" name="token" value="{escape(token)}">\n'
        '<button type="submit">Show my gift card</button>\n'
        '</form>\n'
    )
    return _document(body)


def card_page(card: CardView) -> str:
    """The card the code bought: brand, value, code, number and PIN, with copy buttons when scripts run."""
    again = '<p class="note">You redeemed this code before; this is the same card.</p>\n' if card.replayed else ''
    expires = f'<dt>Expires</dt>\n<dd>{escape(card.expires_on)}</dd>\n' if card.expires_on else ''
    body = (
        '<h1>Your gift card</h1>\n'
        f'{again}'
        f'<section class="card" aria-labelledby="card-title">\n'
        f'<h2 id="card-title">{escape(card.brand)}</h2>\n'
        f'<p class="value">{escape(dollars(card.value_cents))}</p>\n<dl>\n'
        f'{_secret("Card code", "card-code", card.card_code)}'
        f'{_secret("Card number", "card-number", card.card_number)}'
        f'{_secret("PIN", "card-pin", card.pin)}'
        f'{expires}'
        f'<dt>Redemption code</dt>\n<dd>ending in {escape(card.redemption_code_last4)}</dd>\n'
        '</dl>\n<p role="status" aria-live="polite" id="copy-status"></p>\n</section>\n'
        '<p class="note">Keep this page private: anyone with these details can spend the card. '
        f'{AGAIN_BY_LINK if card.by_link else AGAIN_BY_CODE}</p>\n'
        '<p><a href="redeem">Redeem another code</a></p>\n'
    )
    return _document(body, with_script=True)
