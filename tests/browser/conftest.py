"""The console in a real browser: Debian's Chromium, driven by Playwright, against one `giftcard serve` with the demo
data for the whole session.

No browser is downloaded: Playwright launches the system's `chromium` (or GIFTCARD_CHROMIUM). Without one the tests
are skipped with the reason, which `pytest -ra` prints; with GIFTCARD_BROWSER_REQUIRED set (CI) they fail instead.
Screenshots of every screen, at desktop and phone width, go to `screenshots/` under the session's base temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from giftcard_local import demo

from tests.http_support import Answer, Live, server_env, serving

DESKTOP = {'width': 1280, 'height': 900}
PHONE = {'width': 390, 'height': 844}
ROLES = ('platform_admin', 'agency_admin', 'client_admin')


def chromium_path() -> str | None:
    configured = os.environ.get('GIFTCARD_CHROMIUM')
    if configured:
        return configured if Path(configured).is_file() else None
    return next((found for name in ('chromium', 'chromium-browser') if (found := shutil.which(name))), None)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed (make install)"
    if chromium_path() is None:
        return 'no Chromium found: install it (apt-get install chromium) or set GIFTCARD_CHROMIUM'
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests run last: they move the demo data's credit, which tests of the demo itself load fresh and
    check. Without a browser, every test here is skipped for one reason, which `-ra` reports once a file (or, where
    the tests are required, they fail)."""
    here = Path(__file__).parent
    items.sort(key=lambda item: item.path.is_relative_to(here))  # stable: each group keeps its order
    reason = missing_browser()
    if reason is None:
        return
    for item in items:
        if item.path.is_relative_to(here):
            if os.environ.get('GIFTCARD_BROWSER_REQUIRED'):
                item.add_marker(pytest.mark.usefixtures('_browser_required'))
            else:
                item.add_marker(pytest.mark.skip(reason=f'browser tests skipped: {reason}'))


@pytest.fixture
def _browser_required() -> None:
    pytest.fail(f'browser tests are required here (GIFTCARD_BROWSER_REQUIRED) but {missing_browser()}', pytrace=False)


@pytest.fixture(scope='session')
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    assert executable is not None
    with sync_playwright() as playwright:
        # Chromium's sandbox needs user namespaces, which a container running as root often lacks.
        args = ['--no-sandbox'] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=executable, args=args)
        yield launched
        launched.close()


@dataclass
class Site:
    """The running server, the demo data and a token per role."""

    live: Live
    demo: dict[str, Any]
    screenshots: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.live.url

    def api(self, role: str, method: str, path: str, json_body: Any = None) -> Any:
        """What the API answers `role` (the numbers the screens must show)."""
        answer: Answer = self.live.call(method, path, token=self.tokens[role], json_body=json_body)
        assert answer.status < 300, (method, path, answer.status, answer.text)
        return answer.json()

    def sign_in_link(self, role: str) -> str:
        return f'{self.url}/console/#token={self.tokens[role]}'


@pytest.fixture(scope='session')
def site(browser: Any, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    loaded = demo.load()
    screenshots = tmp_path_factory.getbasetemp() / 'screenshots'
    screenshots.mkdir(exist_ok=True)
    log = tmp_path_factory.mktemp('console-server') / 'serve.log'
    with serving(server_env(database_url), log, '--workers', '2') as live:
        yield Site(live, loaded, screenshots, {role: loaded['tokens'][role] for role in ROLES})


@pytest.fixture
def signed_in(site: Site, browser: Any) -> Iterator[Any]:
    """`signed_in(role, viewport=DESKTOP)`: a page of a fresh browser context, signed in through the one-click link."""
    contexts = []

    def open_as(role: str, viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(site.sign_in_link(role))
        page.locator('#nav a').first.wait_for()
        return page

    yield open_as
    for context in contexts:
        context.close()


def dollars(value: Any) -> str:
    """How the console writes an amount the API answers in dollars: $1,234.50, -$3.00."""
    amount = Decimal(str(value)).quantize(Decimal('0.01'))
    return f'{"-" if amount < 0 else ""}${abs(amount):,.2f}'


def shown_amount(text: str) -> Decimal:
    """An amount as the console shows it, back to dollars."""
    match = re.search(r'(-?)\$([\d,]+\.\d{2})', text)
    assert match, f'no amount in {text!r}'
    return Decimal(match.group(1) + match.group(2).replace(',', ''))
