"""`giftcard serve` as people run it: a process that migrates, serves, and stops cleanly with what it started."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from giftcard_local import embedded
from giftcard_local.tokens import issue_token

from tests import factories

PROJECT = Path(__file__).resolve().parents[2]
GIFTCARD = str(Path(sys.executable).parent / 'giftcard')


@contextmanager
def serving(
    env: dict[str, str], log: Path, *args: str, ignore_sigint: bool = False, cwd: Path = PROJECT
) -> Iterator[tuple[subprocess.Popen[str], int, list[str]]]:
    """`giftcard serve --port 0 ARGS` started as a shell would (with SIGINT ignored, as a background job of a
    non-interactive shell has it); yields the process, its port and what it printed before serving."""
    command = [GIFTCARD, 'serve', '--port', '0', '--no-monitor', *args]
    if ignore_sigint:
        command = ['sh', '-c', 'trap "" INT; exec "$@"', 'sh', *command]
    with open(log, 'w') as err:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        printed = []
        while not (line := proc.stdout.readline()).startswith('serving') and line:
            printed.append(line)
        assert line.startswith('serving http://127.0.0.1:'), (line, printed, log.read_text())
        yield proc, int(line.split()[1].rsplit(':', 1)[1]), [*printed, line]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def status_of(port: int, path: str = '/agencies') -> int:
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        conn.request('GET', path)
        return conn.getresponse().status
    finally:
        conn.close()


def stopped(proc: subprocess.Popen[str], signum: int) -> str:
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=30)
    return out


def refused(port: int) -> bool:
    try:
        status_of(port)
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    """The test session's database and GIFTCARD_HOME (so the server accepts the tokens the tests sign)."""
    return {**os.environ, 'DATABASE_URL': database_url, 'PYTHONUNBUFFERED': '1'}


def test_serve_migrates_serves_and_stops_cleanly_on_interrupt(env, tmp_path):
    with serving(env, tmp_path / 'serve.log') as (proc, port, printed):
        assert printed[0].startswith('applied 0 migration(s)'), printed
        assert status_of(port) == 401
        out = stopped(proc, signal.SIGINT)

    assert proc.returncode == 0
    assert out.strip().endswith('stopped')
    assert refused(port)  # no execution environment outlived the server


def test_serve_in_the_background_with_sigint_ignored_stops_on_sigterm(env, tmp_path):
    with serving(env, tmp_path / 'serve.log', ignore_sigint=True) as (proc, port, _):
        proc.send_signal(signal.SIGINT)  # ignored, as the shell asked
        time.sleep(0.5)
        assert proc.poll() is None
        assert status_of(port) == 401
        out = stopped(proc, signal.SIGTERM)

    assert proc.returncode == 0
    assert out.strip().endswith('stopped')
    assert refused(port)


def test_serve_runs_the_number_of_execution_environments_asked_for(env, tmp_path):
    with serving(env, tmp_path / 'serve.log', '--workers', '3') as (proc, _, printed):
        assert 'with 3 execution environment(s)' in printed[-1]
        stopped(proc, signal.SIGTERM)


def test_serve_refuses_a_worker_count_below_one(env, tmp_path):
    result = subprocess.run(
        [GIFTCARD, 'serve', '--workers', '0'], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert '--workers: must be at least 1' in result.stderr


def test_each_log_line_is_written_once_and_no_empty_metrics_warning(env, tmp_path, owner):
    log = tmp_path / 'serve.log'
    admin = factories.platform_admin(owner)
    with serving(env, log) as (proc, port, _):
        assert status_of(port, '/openapi.json') == 200
        assert status_of(port, '/redeem') == 200
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        conn.request('POST', '/monitor-gift-card-system', headers={'Authorization': f'Bearer {issue_token(admin)}'})
        assert conn.getresponse().status == 200
        conn.close()
        out = stopped(proc, signal.SIGTERM)

    lines = (log.read_text() + out).splitlines()
    assert not [line for line in lines if 'No application metrics to publish' in line]
    assert len([line for line in lines if 'GET /openapi.json 200' in line]) == 1
    monitor_runs = [line for line in lines if 'monitor run' in line]
    assert len(monitor_runs) == 1, monitor_runs  # Powertools' JSON record, not repeated as plain text
    assert json.loads(monitor_runs[0])['message'] == 'monitor run'


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
        with serving(env, tmp_path / 'first.log', cwd=tmp_path) as (proc, _, _):
            assert embedded.is_running(data)
            stopped(proc, signal.SIGTERM)
        assert not embedded.is_running(data)

        url = subprocess.run(
            [GIFTCARD, 'db', 'url'], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True
        )
        assert embedded.is_running(data)  # `db url` prints a server that stays up
        assert 'runs until `giftcard db stop`' in url.stderr
        with serving(env, tmp_path / 'second.log', cwd=tmp_path) as (proc, _, _):
            stopped(proc, signal.SIGTERM)
        assert embedded.is_running(data)  # it joined a server it did not start
    finally:
        subprocess.run([GIFTCARD, 'db', 'stop'], env=env, capture_output=True, timeout=120)
    assert not embedded.is_running(data)
