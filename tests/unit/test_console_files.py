"""The console's static files as `giftcard serve` answers them at /console: files of web/console only, for GET and
HEAD, with the security headers the deployed distribution sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from giftcard_local import console

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / 'web' / 'console'


def headers(answer: console.StaticAnswer) -> dict[str, str]:
    return {name.lower(): value for name, value in answer.headers}


def test_the_console_root_answers_its_page_with_a_policy_that_allows_only_its_own_origin() -> None:
    answer = console.answer(SITE, 'GET', '/console/')

    assert answer.status == 200 and answer.body == (SITE / 'index.html').read_bytes()
    sent = headers(answer)
    assert sent['content-type'] == 'text/html; charset=utf-8'
    assert "script-src 'self'" in sent['content-security-policy']
    assert "connect-src 'self'" in sent['content-security-policy']
    assert sent['x-frame-options'] == 'DENY' and sent['x-content-type-options'] == 'nosniff'


def test_scripts_and_styles_have_their_types() -> None:
    assert headers(console.answer(SITE, 'GET', '/console/js/main.js'))['content-type'].startswith('text/javascript')
    assert headers(console.answer(SITE, 'GET', '/console/console.css'))['content-type'].startswith('text/css')


def test_the_bare_prefix_redirects_to_the_folder_so_relative_links_resolve() -> None:
    answer = console.answer(SITE, 'GET', '/console')

    assert (answer.status, headers(answer)['location']) == (308, '/console/')


@pytest.mark.parametrize(
    'path',
    [
        '/console/../template.yaml',
        '/console/js/../../../template.yaml',
        '/console/%2e%2e/template.yaml',
        '/console//etc/passwd',
        '/console/.hidden',
        '/console/js',
        '/console/missing.html',
        '/console/js\\..\\..\\template.yaml',
    ],
)
def test_nothing_outside_the_consoles_files_is_served(path: str) -> None:
    answer = console.answer(SITE, 'GET', path)

    assert answer.status == 404 and b'template' not in answer.body


def test_a_link_out_of_the_folder_is_not_followed(tmp_path: Path) -> None:
    site = tmp_path / 'console'
    site.mkdir()
    (tmp_path / 'secret.txt').write_text('secret')
    (site / 'leak.txt').symlink_to(tmp_path / 'secret.txt')

    assert console.answer(site, 'GET', '/console/leak.txt').status == 404


@pytest.mark.parametrize('method', ['POST', 'PUT', 'DELETE', 'PATCH'])
def test_the_console_is_read_only(method: str) -> None:
    answer = console.answer(SITE, method, '/console/index.html')

    assert answer.status == 405 and headers(answer)['allow'] == 'GET, HEAD'


def test_only_the_console_prefix_is_the_consoles() -> None:
    assert console.is_console_path('/console') and console.is_console_path('/console/js/main.js')
    assert not console.is_console_path('/consoles') and not console.is_console_path('/redeem')


def test_make_dev_prints_the_console_and_a_sign_in_link_for_each_person(capsys: pytest.CaptureFixture[str]) -> None:
    from giftcard_local import serve_cli

    demo = {
        'agency_id': 'a1',
        'tokens': {'platform_admin': 'tok-p', 'agency_admin': 'tok-a', 'client_integration': 'tok-i'},
    }

    serve_cli._print_dev_banner('http://127.0.0.1:3000', demo)

    printed = capsys.readouterr().out
    assert 'Console: http://127.0.0.1:3000/console/' in printed
    assert 'platform admin: http://127.0.0.1:3000/console/#token=tok-p' in printed
    assert 'agency admin: http://127.0.0.1:3000/console/#token=tok-a' in printed
    assert '/console/#token=tok-i' not in printed  # an integration has no console
