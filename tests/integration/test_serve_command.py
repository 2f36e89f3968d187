"""`giftcard serve` as people run it: a process that migrates, serves, and stops cleanly with what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from giftcard_local import embedded
from giftcard_local.tokens import issue_token

from tests import factories
from tests.http_support import PROJECT, Live, server_env, serving

GIFTCARD = str(Path(sys.executable).parent / 'giftcard')


def refused(live: Live) -> bool:
    try:
        live.call('GET', '/agencies', timeout_s=5)
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return server_env(database_url)


def test_serve_migrates_serves_and_stops_cleanly_on_interrupt(env, tmp_path):
    with serving(env, tmp_path / 'serve.log') as live:
        assert live.printed[0].startswith('applied 0 migration(s)'), live.printed
        assert live.call('GET', '/agencies').status == 401
        out = live.stop(signal.SIGINT)

    assert live.process.returncode == 0
    assert out.strip().endswith('stopped')
    assert refused(live)  # no execution environment outlived the server


def test_serve_in_the_background_with_sigint_ignored_stops_on_sigterm(env, tmp_path):
    with serving(env, tmp_path / 'serve.log', ignore_sigint=True) as live:
        live.process.send_signal(signal.SIGINT)  # ignored, as the shell asked
        time.sleep(0.5)
        assert live.process.poll() is None
        assert live.call('GET', '/agencies').status == 401
        out = live.stop(signal.SIGTERM)

    assert live.process.returncode == 0
    assert out.strip().endswith('stopped')
    assert refused(live)


def test_serve_runs_the_number_of_execution_environments_asked_for(env, tmp_path):
    with serving(env, tmp_path / 'serve.log', '--workers', '3') as live:
        assert 'with 3 execution environment(s)' in live.printed[-1]


def test_serve_refuses_a_worker_count_below_one(env):
    result = subprocess.run(
        [GIFTCARD, 'serve', '--workers', '0'], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert '--workers: must be at least 1' in result.stderr


def test_each_log_line_is_written_once_and_no_empty_metrics_warning(env, tmp_path, owner):
    admin = factories.platform_admin(owner)
    with serving(env, tmp_path / 'serve.log') as live:
        assert live.call('GET', '/openapi.json').status == 200
        assert live.call('GET', '/redeem').status == 200
        # Refused at the edge, which records it through Powertools' Logger.
        refused = live.call('GET', '/agencies?limit=%00', token=issue_token(admin))
        assert refused.status == 422
        out = live.stop()

    lines = (live.log.read_text() + out).splitlines()
    assert not [line for line in lines if 'No application metrics to publish' in line]
    assert len([line for line in lines if 'GET /openapi.json 200' in line]) == 1
    records = [line for line in lines if 'request refused before routing' in line]
    assert len(records) == 1, records  # Powertools' JSON record, not repeated as plain text
    assert records[0].startswith('{"level":"INFO"')


def test_home_is_one_folder_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv('GIFTCARD_HOME')
    monkeypatch.chdir(tmp_path)
    from_elsewhere = embedded.home()
    monkeypatch.delenv('GIFTCARD_HOME')
    monkeypatch.chdir(PROJECT / 'layers')
    from_inside = embedded.home()

    assert from_elsewhere == from_inside == PROJECT / '.giftcard'
    assert os.environ['GIFTCARD_HOME'] == str(PROJECT / '.giftcard')  # children of this process agree


def test_a_relative_home_is_made_absolute_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('GIFTCARD_HOME', 'here')

    assert embedded.home() == tmp_path / 'here'
    assert os.environ['GIFTCARD_HOME'] == str(tmp_path / 'here')


@pytest.mark.slow
def test_embedded_database_stops_with_the_server_that_started_it_and_outlives_one_that_joined(tmp_path):
    home = tmp_path / 'home'
    env = {k: v for k, v in os.environ.items() if k != 'DATABASE_URL'}
    env.update({'GIFTCARD_HOME': str(home), 'PYTHONUNBUFFERED': '1'})
    data = home / 'pgdata'
    try:
        with serving(env, tmp_path / 'first.log', cwd=tmp_path) as live:
            assert embedded.is_running(data)
            live.stop()
        assert not embedded.is_running(data)

        url = subprocess.run(
            [GIFTCARD, 'db', 'url'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True
        )
        assert embedded.is_running(data)  # `db url` prints a server that stays up
        assert 'runs until `giftcard db stop`' in url.stderr
        with serving(env, tmp_path / 'second.log', cwd=tmp_path) as live:
            live.stop()
        assert embedded.is_running(data)  # it joined a server it did not start
    finally:
        subprocess.run([GIFTCARD, 'db', 'stop'], env=env, capture_output=True, timeout=120)
    assert not embedded.is_running(data)
