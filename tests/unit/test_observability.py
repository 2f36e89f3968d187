"""Tracing of the handlers: traced as before when it is on (Lambda, `Tracing: Active`); when it is off
(POWERTOOLS_TRACE_DISABLED, as locally) a cold start never loads the X-Ray SDK.

Each case runs in a fresh interpreter, since what a module imports can only be seen before anything imported it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.events import http_event

ROOT = Path(__file__).resolve().parents[2]
HTTP_FUNCTIONS = ['provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards']
TRACE_HEADER = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1'


def run_python(function: str, code: str, **env: str) -> str:
    """`code` in a fresh interpreter that imports from this checkout, as the function's Lambda would."""
    path = os.pathsep.join(str(p) for p in (ROOT / 'layers' / 'shared', ROOT / 'functions' / function, ROOT))
    result = subprocess.run(
        [sys.executable, '-c', code],
        env={**os.environ, 'PYTHONPATH': path, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize('function', HTTP_FUNCTIONS)
def test_importing_a_handler_with_tracing_disabled_does_not_load_the_xray_sdk(function: str):
    loaded = run_python(
        function,
        f'import sys, {function}_app; print(sorted(m for m in sys.modules if m.startswith("aws_xray_sdk")))',
        POWERTOOLS_TRACE_DISABLED='true',
    )
    assert loaded.strip() == '[]'


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    """A UDP socket standing in for the X-Ray daemon, where the SDK sends the segments it records."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(('127.0.0.1', 0))
        daemon.settimeout(0.5)
        yield daemon


def traced_in_lambda(daemon: socket.socket, function: str, event: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Invoke the function's handler as Lambda does with active tracing; the subsegments the daemon received."""
    code = (
        f'import json, {function}_app\n'
        'from tests.events import LambdaContext\n'
        'try:\n'
        f'    {function}_app.lambda_handler(json.loads({json.dumps(event)!r}), LambdaContext())\n'
        'except Exception:\n'
        '    pass  # recorded on the subsegment like any failure\n'
    )
    run_python(
        function,
        code,
        POWERTOOLS_TRACE_DISABLED='false',
        LAMBDA_TASK_ROOT=str(tmp_path),  # Lambda's variables: outside Lambda, Powertools turns tracing off itself
        _X_AMZN_TRACE_ID=TRACE_HEADER,
        AWS_XRAY_DAEMON_ADDRESS='{}:{}'.format(*daemon.getsockname()),
        DATABASE_URL='postgresql://nobody:nothing@127.0.0.1:1/nothing',  # never the test session's database
        DB_CONNECT_TIMEOUT_S='1',
    )
    received = {}
    try:
        while True:
            _header, document = daemon.recv(65536).decode().split('\n', 1)
            subsegment = json.loads(document)
            received[subsegment['name']] = subsegment
    except TimeoutError:
        return received


@pytest.mark.parametrize('function', HTTP_FUNCTIONS)
def test_with_tracing_enabled_an_http_handler_is_traced_as_a_subsegment(
    function: str, xray_daemon: socket.socket, tmp_path: Path
):
    received = traced_in_lambda(xray_daemon, function, http_event('GET', '/no-such-route'), tmp_path)

    subsegment = received['## lambda_handler']
    assert subsegment['trace_id'] == '1-5759e988-bd862e3fe1be46a994272793'
    assert subsegment['annotations'] == {'ColdStart': True, 'Service': 'giftcards'}


def test_with_tracing_enabled_the_scheduled_monitor_run_is_traced_as_a_subsegment(
    xray_daemon: socket.socket, tmp_path: Path
):
    event = {'source': 'aws.events', 'id': 'schedule-1', 'detail-type': 'Scheduled Event', 'detail': {}}

    received = traced_in_lambda(xray_daemon, 'monitor', event, tmp_path)

    subsegment = received['## _scheduled']
    assert subsegment['trace_id'] == '1-5759e988-bd862e3fe1be46a994272793'
    assert subsegment['annotations'] == {'ColdStart': True, 'Service': 'giftcards'}
