"""The public redeem routes through the redeem function, fed API Gateway v2 events with no authorizer claims:
the page, JSON and form posts, refusals, the failure limit per source IP, security headers, hostile input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest
from giftcards import code_administration, codes, ratelimit, redeem_page
from redeem_app import lambda_handler

from tests import redeem_support as rs
from tests.events import call, http_event

FORM = 'application/x-www-form-urlencoded'
LIMIT = ratelimit.Limits.configured().max_failures  # 10 unless REDEEM_MAX_FAILURES says otherwise


def post_json(body: Any, ip: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event('POST', '/redeem', body=body, source_ip=ip, **kwargs))


def post_form(fields: dict[str, str], ip: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    event = http_event('POST', '/redeem', raw_body=urlencode(fields), content_type=FORM, source_ip=ip, **kwargs)
    return call(lambda_handler, event)


def get_page() -> tuple[int, dict[str, str], Any]:
    return call(lambda_handler, http_event('GET', '/redeem', content_type=None, source_ip=rs.unique_ip()))


class Page(HTMLParser):
    """The parts of a page the tests look at: elements with their attributes, inline scripts and styles, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.inline: dict[str, list[str]] = {'script': [], 'style': []}
        self.text: list[str] = []
        self._in: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in self.inline:
            self._in = tag
            self.inline[tag].append('')

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline[self._in][-1] += data
        else:
            self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def visible_text(self) -> str:
        return ' '.join(' '.join(self.text).split())


def assert_security_headers(headers: dict[str, str]) -> None:
    assert headers['cache-control'] == 'no-store'
    assert headers['x-content-type-options'] == 'nosniff'
    assert headers['referrer-policy'] == 'no-referrer'
    assert headers['x-frame-options'] == 'DENY'
    csp = headers['content-security-policy']
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert 'unsafe-inline' not in csp


def csp_allows(headers: dict[str, str], directive: str, inline: str) -> bool:
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    policy = dict(part.strip().split(' ', 1) for part in headers['content-security-policy'].split(';'))
    return f"'sha256-{digest}'" in policy[directive].split()


@pytest.fixture
def camp(owner):
    return rs.campaign(owner, cards_in_stock=5)


# --- the page ------------------------------------------------------------------------------------------


def test_the_page_is_a_form_with_a_labelled_code_input():
    status, headers, body = get_page()
    assert status == 200
    assert headers['content-type'] == 'text/html; charset=utf-8'
    page = Page(body)
    [form] = page.find('form')
    assert form['method'] == 'post' and form['action'] == 'redeem'
    [field] = page.find('input', name='code')
    assert page.find('label', **{'for': field['id'] or ''}), 'the input has a label'
    assert field['autocomplete'] == 'off' and field['inputmode'] == 'text' and field['spellcheck'] == 'false'
    assert 'required' in field
    assert field['aria-describedby'] == 'code-hint' and page.find('p', id='code-hint')
    assert page.find('button', type='submit')
    assert page.find('html', lang='en')
    assert_security_headers(headers)


def test_the_page_needs_no_script_and_loads_nothing_from_elsewhere():
    _, headers, body = get_page()
    page = Page(body)
    assert page.inline['script'] == []
    assert not [a for _, a in page.elements if a.get('src') or (a.get('href') or '').startswith(('http', '//'))]
    assert not re.search(r'\son[a-z]+=', body), 'no inline event handlers'
    [style] = page.inline['style']
    assert csp_allows(headers, 'style-src', style)


def test_the_page_is_public():
    event = http_event('GET', '/redeem', content_type=None, source_ip=rs.unique_ip())
    assert 'authorizer' not in event['requestContext']
    assert call(lambda_handler, event)[0] == 200


# --- JSON -----------------------------------------------------------------------------------------------


def test_json_post_answers_the_card(camp):
    code = camp.issue()[0]
    status, headers, body = post_json({'code': code.lower()}, rs.unique_ip())
    assert status == 200
    assert headers['content-type'] == 'application/json'
    assert_security_headers(headers)
    assert body['success'] is True and body['replayed'] is False
    card = body['card']
    assert (card['brand'], card['value'], card['brand_id']) == (camp.brand['name'], 25, camp.brand['id'])
    assert card['card_code'].startswith('CARD-') and re.fullmatch(r'\d{16}', card['card_number'])
    assert re.fullmatch(r'\d{4}', card['pin'])
    assert body['redemption']['code'] == f'****-****-****-{code[-4:]}'
    assert 'creditRemaining' not in json.dumps(body) and 'cost' not in json.dumps(body)


def test_json_replay_answers_the_same_card_and_records_a_reveal(camp):
    code = camp.issue()[0]
    first = post_json({'code': code}, rs.unique_ip())[2]
    status, _, again = post_json({'code': code.replace('-', '')}, rs.unique_ip())
    assert status == 200 and again['replayed'] is True
    assert again['card'] == first['card']
    assert len(rs.reveals(first['card']['card_code'])) == 2


@pytest.mark.parametrize('kind', ['unknown', 'voided', 'malformed', 'too-long', 'empty-string'])
def test_unknown_voided_and_malformed_codes_answer_the_same_404(camp, kind):
    voided = camp.issue()[0]
    rs_code = rs.code_row(voided)
    code_administration.void_code(camp.tree.client_admin, rs_code['id'])
    typed = {
        'unknown': codes.generate_code(),
        'voided': voided,
        'malformed': 'abc',
        'too-long': 'A' * 1000,
        'empty-string': '',
    }[kind]
    status, headers, body = post_json({'code': typed}, rs.unique_ip())
    assert status == 404
    assert body == {'success': False, 'error': {'code': 'invalid_code', 'message': codes.InvalidCode.default_message}}
    assert_security_headers(headers)


def test_paused_campaign_is_a_409(camp):
    code = camp.issue()[0]
    camp.pause()
    status, _, body = post_json({'code': code}, rs.unique_ip())
    assert status == 409 and body['error']['code'] == 'campaign_not_active'


# --- the form -------------------------------------------------------------------------------------------


def test_form_post_answers_the_card_page(camp):
    code = camp.issue()[0]
    status, headers, body = post_form({'code': code}, rs.unique_ip())
    assert status == 200
    assert headers['content-type'] == 'text/html; charset=utf-8'
    assert_security_headers(headers)
    card = post_json({'code': code}, rs.unique_ip())[2]['card']  # the same card, as JSON
    page = Page(body)
    text = page.visible_text()
    assert camp.brand['name'] in text and '$25.00' in text
    for field, ident in (('card_code', 'card-code'), ('card_number', 'card-number'), ('pin', 'card-pin')):
        assert card[field] in text
        [button] = page.find('button', **{'data-copy': ident})
        assert 'hidden' in button, 'copy buttons appear only when the script runs'
    [script] = page.inline['script']
    assert csp_allows(headers, 'script-src', script)
    assert page.find('a', href='redeem')


def test_form_post_of_a_redeemed_code_shows_the_same_card_again(camp):
    code = camp.issue()[0]
    first = Page(post_form({'code': code}, rs.unique_ip())[2]).visible_text()
    status, _, body = post_form({'code': code}, rs.unique_ip())
    assert status == 200
    again = Page(body).visible_text()
    assert 'this is the same card' in again
    card_code = re.search(r'CARD-[0-9A-F]{16}', first)
    assert card_code and card_code.group(0) in again


def test_form_post_of_an_unknown_code_shows_the_form_again_with_the_message(camp):
    typed = codes.generate_code()
    status, headers, body = post_form({'code': typed}, rs.unique_ip())
    assert status == 404
    assert headers['content-type'] == 'text/html; charset=utf-8'
    page = Page(body)
    [alert] = page.find('div', role='alert')
    assert alert['id'] == 'code-error'
    assert redeem_page.MESSAGES['invalid_code'] in page.visible_text()
    [field] = page.find('input', name='code')
    assert field['value'] == typed and field['aria-invalid'] == 'true'
    assert field['aria-describedby'] == 'code-hint code-error'


def test_form_post_of_a_paused_campaign_code_is_a_friendly_409(camp):
    code = camp.issue()[0]
    camp.pause()
    status, _, body = post_form({'code': code}, rs.unique_ip())
    assert status == 409
    assert "This promotion isn't available right now" in Page(body).visible_text()


def test_form_post_when_no_card_is_available_asks_to_retry(owner):
    camp = rs.campaign(owner, cards_in_stock=0)
    code = camp.issue()[0]
    status, headers, body = post_form({'code': code}, rs.unique_ip())
    assert status == 503
    text = Page(body).visible_text()
    assert 'temporarily unavailable' in text and 'try again' in text
    assert Page(body).find('input', name='code')[0]['value'] == code
    assert_security_headers(headers)


def test_form_post_without_a_code_asks_for_it():
    status, _, body = post_form({'code': '   '}, rs.unique_ip())
    assert status == 422
    assert redeem_page.MESSAGES['missing_code'] in Page(body).visible_text()


def test_what_a_caller_typed_is_escaped(camp):
    typed = '"><script>alert(1)</script>'
    status, _, body = post_form({'code': typed}, rs.unique_ip())
    assert status == 404
    assert '<script>alert(1)' not in body
    assert Page(body).find('input', name='code')[0]['value'] == typed
    assert Page(body).inline['script'] == []


def test_a_brand_name_is_escaped_on_the_card_page(owner):
    camp = rs.campaign(owner, cards_in_stock=1)
    hostile = f'<img src=x onerror=alert(1)> & "Co" {rs.unique_ip()}'
    owner.run('UPDATE brands SET name = :n WHERE id = CAST(:id AS uuid)', n=hostile, id=camp.brand['id'])
    status, _, body = post_form({'code': camp.issue()[0]}, rs.unique_ip())
    assert status == 200
    assert '<img' not in body
    assert hostile in Page(body).visible_text()


# --- the failure limit ---------------------------------------------------------------------------------


def test_too_many_failures_from_one_ip_is_a_429_with_retry_after(camp):
    ip = rs.unique_ip()
    for _ in range(LIMIT):
        assert post_json({'code': codes.generate_code()}, ip)[0] == 404
    status, headers, body = post_json({'code': camp.issue()[0]}, ip)
    assert status == 429
    assert body['error']['code'] == 'rate_limited'
    assert 0 < int(headers['retry-after']) <= ratelimit.Limits.configured().window.total_seconds()
    status, headers, page = post_form({'code': codes.generate_code()}, ip)
    assert status == 429 and headers['retry-after']
    assert 'Too many attempts' in Page(page).visible_text()
    assert post_json({'code': codes.generate_code()}, rs.unique_ip())[0] == 404  # another address is unaffected


def test_x_forwarded_for_does_not_change_the_counted_ip(camp):
    ip = rs.unique_ip()
    for n in range(LIMIT):
        spoofed = {'x-forwarded-for': f'198.51.100.{n}, {rs.unique_ip()}', 'x-real-ip': f'198.51.100.{n}'}
        assert post_json({'code': codes.generate_code()}, ip, headers=spoofed)[0] == 404
    assert post_json({'code': codes.generate_code()}, ip, headers={'x-forwarded-for': rs.unique_ip()})[0] == 429
    recorded = rs.attempts(ip)
    assert len(recorded) == LIMIT + 1
    assert {(a['ip'], a['network']) for a in recorded} == {(ip, f'{ip}/32')}


def test_user_agent_is_recorded(camp):
    ip = rs.unique_ip()
    post_json({'code': 'nope'}, ip, user_agent='Mozilla/5.0 (X11; Linux x86_64)')
    assert [a['user_agent'] for a in rs.attempts(ip)] == ['Mozilla/5.0 (X11; Linux x86_64)']


# --- hostile input --------------------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, str | bytes, str | None, int]] = [
    ('invalid-json', '{"code": ', 'application/json', 400),
    ('deeply-nested', '[' * 100_000, 'application/json', 400),
    ('huge-integer', '{"code": ' + '9' * 5_000 + '}', 'application/json', 400),
    ('empty', '', 'application/json', 422),
    ('no-content-type', '{"code": 5}', None, 422),
    ('array', '["ABCD-EFGH-JKMN-PQRS"]', 'application/json', 422),
    ('null', 'null', 'application/json', 422),
    ('code-number', '{"code": 12345678}', 'application/json', 422),
    ('code-null', '{"code": null}', 'application/json', 422),
    ('code-object', '{"code": {"$ne": ""}}', 'application/json', 422),
    ('code-missing', '{}', 'application/json', 422),
    ('unknown-field', '{"code": "ABCD", "campaign_id": "x"}', 'application/json', 422),
    # Text no layer can store is refused before routing (giftcards.api.edge), as on every route.
    ('nul-bytes', '{"code": "\\u0000\\u0000"}', 'application/json', 422),
    ('lone-surrogate', '{"code": "\\ud800"}', 'application/json', 422),
    ('sql', '{"code": "\' OR 1=1 --"}', 'application/json', 404),
    ('huge-code', json.dumps({'code': 'A' * 2_000_000}), 'application/json', 404),
    ('binary', b'\xff\xfe\x00\x01garbage', 'application/json', 400),
    ('form-binary', b'code=\xff\xfe', FORM, 400),
    ('form-no-code', 'other=1', FORM, 422),
    ('form-many-fields', '&'.join(f'f{i}=1' for i in range(100)), FORM, 400),
    ('form-percent-garbage', 'code=%ZZ%', FORM, 404),
    ('text-plain', 'ABCD-EFGH-JKMN-PQRS', 'text/plain', 415),
    ('multipart', '--x\r\nContent-Disposition: form-data; name="code"\r\n\r\nA\r\n--x--', 'multipart/form-data', 415),
]


@pytest.mark.parametrize(
    ('raw', 'content_type', 'expected'), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_hostile_bodies_are_refused_without_a_5xx(database_url, raw, content_type, expected):
    event = http_event('POST', '/redeem', raw_body=raw, content_type=content_type, source_ip=rs.unique_ip())
    status, headers, body = call(lambda_handler, event)
    assert status == expected
    assert headers['cache-control'] == 'no-store'
    if content_type != FORM:
        assert body['success'] is False and body['error']['code']


def test_a_post_with_no_body_is_refused_without_a_5xx(database_url):
    event = http_event('POST', '/redeem', source_ip=rs.unique_ip())
    status, _, body = call(lambda_handler, event)
    assert status == 422 and body['error']['code'] == 'missing_code'


def test_the_code_never_reaches_the_logs(camp, capsys):
    code = camp.issue()[0]
    post_json({'code': code}, rs.unique_ip())
    post_form({'code': code.lower()}, rs.unique_ip())
    post_json({'code': codes.generate_code()}, rs.unique_ip())
    logged = capsys.readouterr()
    for text in (logged.out, logged.err):
        assert code not in text.upper() and code.replace('-', '') not in text.upper()
