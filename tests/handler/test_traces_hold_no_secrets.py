"""Traces and logs never hold a card's code, number or PIN, nor a redemption code.

The handlers run as Lambda runs them with active tracing (`Tracing: Active`), in a fresh interpreter whose tracer
provider records everything the Tracer hands it (`tests.trace_recorder`): codes issued by the admin function, a
provision from stock and one bought from a vendor, and a redemption on the public page. Every secret those answers
carried is then looked for in everything recorded and in every log line.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from giftcards import card_import

from tests import provisioning_support as ps
from tests import redeem_support as rs
from tests.events import http_event

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ('provision', 'redeem', 'admin')


def run_traced(calls: list[tuple[str, dict[str, Any]]], tmp_path: Path, **env: str) -> tuple[dict[str, Any], str]:
    """The answers and the recording of `tests.trace_recorder`, and the handlers' log output."""
    tmp_path.mkdir()
    calls_path, result_path = tmp_path / 'calls.json', tmp_path / 'result.json'
    calls_path.write_text(json.dumps(calls))
    path = [ROOT / 'layers' / 'shared', *(ROOT / 'functions' / name for name in FUNCTIONS), ROOT]
    result = subprocess.run(
        [sys.executable, '-m', 'tests.trace_recorder', str(calls_path), str(result_path)],
        env={
            **os.environ,
            'PYTHONPATH': os.pathsep.join(map(str, path)),
            'POWERTOOLS_TRACE_DISABLED': 'false',
            'LAMBDA_TASK_ROOT': str(tmp_path),  # in Lambda: outside it, Powertools turns tracing off by itself
            'POWERTOOLS_LOG_LEVEL': 'DEBUG',  # the most a deployment logs (every environment but prod)
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result_path.read_text()), result.stdout + result.stderr


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert 200 <= answer['statusCode'] < 300, answer
    body: dict[str, Any] = json.loads(answer['body'])
    return body


def card_secrets(body: dict[str, Any]) -> list[str]:
    """Code, number and PIN of the card in an answer (the provision route's camelCase or the redeem route's)."""
    card = body['card']
    fields = ('cardCode', 'cardNumber', 'card_code', 'card_number', 'pin')
    return [card[name] for name in fields if card.get(name)]


def found_in(text: str, secret: str) -> bool:
    """Whether `secret` is in `text`; a short one (a 4-digit PIN) only as a quoted value, since its digits alone
    turn up in any timestamp."""
    if len(secret) >= 8:
        return secret in text
    return f'"{secret}"' in text or f"'{secret}'" in text


@pytest.fixture
def world(owner: Any) -> rs.Campaign:
    """A campaign with cards in stock whose PINs are long enough to be told apart from anything else in a log."""
    campaign = rs.campaign(owner, cards_in_stock=0)
    rows = ''.join(
        f'CARD-{uuid.uuid4().hex},{uuid.uuid4().int % 10**16:016d},PIN{uuid.uuid4().hex[:10]}\n' for _ in range(3)
    )
    card_import.import_cards(
        campaign.tree.platform_admin, campaign.pool_id, io.BytesIO(f'card_code,card_number,pin\n{rows}'.encode())
    )
    return campaign


def test_no_card_or_code_data_reaches_a_trace_or_a_log(
    world: rs.Campaign, owner: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    supplied_code = ps.new_code()
    vendor_setup = ps.setup(owner)  # no stock: its card is bought from the vendor
    vendor_code = ps.new_code()
    with ps.fake_vendors(monkeypatch, 'tango-traced') as (vendor,):
        calls = [
            (
                'admin',
                http_event(
                    'POST',
                    f'/campaigns/{world.id}/codes',
                    subject=world.tree.client_admin,
                    body={'brand_id': world.brand['id'], 'denomination': 25, 'count': 2},
                ),
            ),
            (
                'provision',
                http_event(
                    'POST',
                    '/provision-gift-card',
                    subject=world.tree.integration,
                    body={
                        'campaignId': world.id,
                        'brandId': world.brand['id'],
                        'denomination': 25,
                        'redemptionCode': supplied_code,
                    },
                ),
            ),
            (
                'provision',
                http_event(
                    'POST',
                    '/provision-gift-card',
                    subject=vendor_setup.tree.integration,
                    body={
                        'campaignId': vendor_setup.campaign_id,
                        'brandId': vendor_setup.brand['id'],
                        'denomination': 25,
                        'redemptionCode': vendor_code,
                    },
                ),
            ),
        ]
        first, first_logs = run_traced(calls, tmp_path / 'first', VENDORS=json.dumps([vendor.tango_config()]))
    issued = body_of(first['answers'][0])['codes']
    redeem = http_event('POST', '/redeem', body={'code': issued[0]}, source_ip=rs.unique_ip())
    second, second_logs = run_traced([('redeem', redeem)], tmp_path / 'second')

    provisioned, bought = body_of(first['answers'][1]), body_of(first['answers'][2])
    redeemed = body_of(second['answers'][0])
    assert bought['source'] == 'api' and provisioned['source'] == 'csv'
    secrets = [
        *issued,
        supplied_code,
        vendor_code,
        *card_secrets(provisioned),
        *card_secrets(bought),
        *card_secrets(redeemed),
    ]
    assert provisioned['card'].get('pin') and redeemed['card'].get('pin'), 'cards with PINs'
    secrets += [s.replace('-', '') for s in secrets]  # a code is also known without its dashes
    recorded = json.dumps([first['recorded'], second['recorded']], default=repr)
    logs = first_logs + second_logs
    # What was recorded is what the handlers were traced with: one subsegment per invocation.
    handlers = [r for r in first['recorded'] + second['recorded'] if r['kind'] == 'open']
    assert [r['segment'] for r in handlers] == ['## lambda_handler'] * 4
    assert [s for s in secrets if found_in(recorded, s)] == []
    assert [s for s in secrets if found_in(logs, s)] == []
