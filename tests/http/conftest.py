"""One `giftcard serve` for the whole session, on the session's database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http_support import Live, server_env, serving


@pytest.fixture(scope='session')
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    log = tmp_path_factory.mktemp('live-server') / 'serve.log'
    with serving(server_env(database_url), log, '--workers', '2') as running:
        yield running
