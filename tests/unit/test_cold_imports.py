"""What a cold start imports: each function loads what its requests need, and not the code of another function or of
a path its requests rarely take, which is imported where that path starts (bench/README.md, `bench.imports`).

Each case imports a handler module in a fresh interpreter, as Lambda's init does, and reads `sys.modules`: what a
module imports can only be seen before anything imported it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTTP_FUNCTIONS = ['provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards']

# Sending a delivery: only the deliver function sends (and, locally without a queue, the committing process).
SENDING = {'giftcards.delivering', 'giftcards.messages', 'giftcards.senders'}
# The vendor clients and their HTTP: built by `vendors.load_vendors`, when a redemption takes the vendor path.
VENDOR_CLIENTS = {'giftcards.vendors.tango', 'giftcards.vendors.tillo', 'giftcards.vendors.transport', 'http.client'}
# The vendor path itself, and the alerts a provision raises only on it or for a card that failed its integrity check.
VENDOR_PATH = {'giftcards.recovery', 'giftcards.alerts', 'giftcards.notify'}

# What only the admin function (and the CLI) does: codes issued in batches, CSV imports, the ledger's full check.
ADMINISTRATION = {'giftcards.code_administration', 'giftcards.card_import', 'giftcards.ledger_checks'}

NOT_LOADED = {
    'provision': SENDING | VENDOR_CLIENTS | VENDOR_PATH | ADMINISTRATION,
    'redeem': SENDING | VENDOR_CLIENTS | VENDOR_PATH | ADMINISTRATION,
    'allocate': SENDING | VENDOR_CLIENTS | {'giftcards.ledger_checks', 'giftcards.alerts', 'giftcards.deliveries'},
    # The monitor prunes the redeem route's attempts itself, and reads pools without their CSV import.
    'monitor': SENDING | VENDOR_CLIENTS | {'giftcards.ratelimit', 'giftcards.card_import'},
    # Administration builds none of what administrators watch (the dashboards, the alerts), which is another
    # function's.
    'admin': SENDING
    | VENDOR_CLIENTS
    | {'giftcards.monitor', 'giftcards.recovery', 'giftcards.vendors', 'giftcards.dashboards', 'giftcards.api.alerts'},
    # The dashboards read the monitor's state and share two rules with it (ledger, pools), not the monitor's code;
    # nor do they import cards, issue codes, send deliveries or build the hierarchy's routes.
    'dashboards': SENDING
    | VENDOR_CLIENTS
    | ADMINISTRATION
    | {
        'giftcards.monitor',
        'giftcards.recovery',
        'giftcards.vendors',
        'giftcards.api.hierarchy',
    },
}


def loaded_modules(function: str) -> set[str]:
    """The modules in `sys.modules` once a fresh interpreter has imported the function's handler module, with the
    environment `giftcard serve` gives the functions."""
    path = os.pathsep.join(str(p) for p in (ROOT / 'layers' / 'shared', ROOT / 'functions' / function))
    result = subprocess.run(
        [sys.executable, '-c', f'import json, sys, {function}_app; print(json.dumps(sorted(sys.modules)))'],
        env={**os.environ, 'PYTHONPATH': path, 'ENVIRONMENT': 'local', 'POWERTOOLS_TRACE_DISABLED': 'true'},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.parametrize('function', HTTP_FUNCTIONS)
def test_a_cold_start_does_not_import_what_its_requests_do_not_need(function: str) -> None:
    loaded = loaded_modules(function)

    assert f'{function}_app' in loaded and 'giftcards.db' in loaded  # the import ran
    assert sorted(loaded & NOT_LOADED[function]) == []


@pytest.mark.parametrize('function', HTTP_FUNCTIONS)
def test_no_cold_start_imports_pydantics_serializer_helpers(function: str) -> None:
    """`api.models.IsoTimestamp` writes its times without `PlainSerializer`, whose module nothing else needs."""
    loaded = loaded_modules(function)

    assert 'pydantic' in loaded
    assert 'pydantic.functional_serializers' not in loaded


def test_the_deliver_function_imports_the_sending_it_does() -> None:
    assert sorted(SENDING - loaded_modules('deliver')) == []
