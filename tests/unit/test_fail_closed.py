"""Outside ENVIRONMENT=local nothing falls back to a local stand-in: a function missing a setting its code needs does
not start, and the stand-ins themselves (key files, alerts to the log, no vendors, the local outbox, deliveries sent
without a queue) refuse to serve."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from giftcards import notify
from giftcards.config import NEEDED_SETTINGS, Need, get_settings, missing_settings
from giftcards.vendors import VendorConfigError, vendor_configs

from tests.function_needs import function_needs

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ('provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards', 'migrate', 'deliver')
AWS_VALUES = {
    'DB_SECRET_ARN': 'arn:aws:secretsmanager:us-east-1:123456789012:secret:app',
    'DB_OWNER_SECRET_ARN': 'arn:aws:secretsmanager:us-east-1:123456789012:secret:owner',
    'DB_HOST': 'proxy.example.internal',
    'KMS_KEY_ID': 'arn:aws:kms:us-east-1:123456789012:key/cards',
    'CODE_HASH_SECRET_ARN': 'arn:aws:secretsmanager:us-east-1:123456789012:secret:hash',
    'ALERTS_TOPIC_ARN': 'arn:aws:sns:us-east-1:123456789012:alerts',
    'VENDORS': '[]',
    'DELIVERY_QUEUE_URL': 'https://sqs.us-east-1.amazonaws.com/123456789012/deliveries',
    'DELIVERY_TRANSPORT': 'aws',
    'EMAIL_FROM': 'cards@example.com',
    'SES_CONFIGURATION_SET': 'stack-deliveries',
    'REDEEM_URL': 'https://api.example.com/redeem',
}


def python(code: str, env: dict[str, str], function: str | None = None) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter, with nothing of the test session's environment that names a setting."""
    path = [ROOT / 'layers' / 'shared', *([ROOT / 'functions' / function] if function else []), ROOT]
    base = {k: v for k, v in os.environ.items() if k not in AWS_VALUES and k not in ('DATABASE_URL', 'ENVIRONMENT')}
    return subprocess.run(
        [sys.executable, '-c', code],
        env={**base, 'PYTHONPATH': os.pathsep.join(map(str, path)), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize('function', FUNCTIONS)
def test_outside_local_a_function_without_a_setting_its_code_needs_does_not_start(function: str) -> None:
    needed = [name for need in sorted(function_needs(function)) for name in NEEDED_SETTINGS[need]]
    settings = {'ENVIRONMENT': 'staging', 'AWS_LAMBDA_FUNCTION_NAME': f'stack-{function}'}
    settings |= {name: AWS_VALUES[name] for name in needed}
    missing = needed[-1]

    refused = python(f'import {function}_app', {k: v for k, v in settings.items() if k != missing}, function)
    started = python(f'import {function}_app', settings, function)

    assert refused.returncode != 0
    assert 'ConfigurationError' in refused.stderr and f'not set: {missing}.' in refused.stderr
    assert started.returncode == 0, started.stderr


def test_in_lambda_a_missing_or_local_environment_is_refused() -> None:
    lambda_env = {'AWS_LAMBDA_FUNCTION_NAME': 'stack-provision', **AWS_VALUES}

    assert missing_settings((Need.DATABASE,), lambda_env) == ['ENVIRONMENT']
    assert missing_settings((Need.DATABASE,), {**lambda_env, 'ENVIRONMENT': 'local'}) == ['ENVIRONMENT']
    assert missing_settings((Need.DATABASE,), {**lambda_env, 'ENVIRONMENT': 'prod'}) == []


def test_locally_nothing_is_required_and_a_database_url_stands_for_the_database_secrets() -> None:
    every_need = tuple(Need)

    assert missing_settings(every_need, {}) == []
    assert missing_settings(every_need, {'ENVIRONMENT': 'ci', 'DATABASE_URL': 'postgresql://db/x'}) == [
        'KMS_KEY_ID',
        'CODE_HASH_SECRET_ARN',
        'ALERTS_TOPIC_ARN',
        'VENDORS',
        'DELIVERY_QUEUE_URL',
        'DELIVERY_TRANSPORT',
        'EMAIL_FROM',
        'SES_CONFIGURATION_SET',
        'REDEEM_URL',
    ]


def test_outside_local_no_key_file_is_read_or_created(tmp_path: Path) -> None:
    home = tmp_path / 'home'
    code = (
        'from giftcards import card_secrets, crypto\n'
        'from giftcards.config import ConfigurationError\n'
        'for attempt in (crypto.key_provider, card_secrets.new_data_key, crypto.LocalKeys,\n'
        '                lambda: crypto.keyed_hash("redemption_code", "ABCD"), lambda: card_secrets.code_hash("C")):\n'
        '    try:\n'
        '        attempt()\n'
        '    except ConfigurationError as exc:\n'
        '        print(exc)\n'
        '    else:\n'
        '        raise SystemExit(f"{attempt} did not refuse")\n'
    )

    result = python(code, {'ENVIRONMENT': 'staging', 'GIFTCARD_HOME': str(home)})

    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.count('KMS_KEY_ID is not set') == 3
    assert result.stdout.count('CODE_HASH_SECRET_ARN is not set') == 2
    assert not home.exists()


def test_outside_local_deliveries_are_neither_sent_without_a_queue_nor_written_to_the_local_outbox(
    tmp_path: Path,
) -> None:
    home = tmp_path / 'home'
    code = (
        'from giftcards import deliveries, senders\n'
        'from giftcards.config import ConfigurationError\n'
        'from giftcards.messages import Message\n'
        'deliveries.dispatch(["00000000-0000-4000-8000-000000000000"])\n'
        'outgoing = senders.Outgoing("00000000-0000-4000-8000-000000000000", 1, "email", "a@example.com",\n'
        '                            Message("s", "t", "h", "m"))\n'
        'try:\n'
        '    senders.send(outgoing)\n'
        'except ConfigurationError as exc:\n'
        '    print(exc)\n'
        'else:\n'
        '    raise SystemExit("the local outbox took a message")\n'
    )

    result = python(code, {'ENVIRONMENT': 'staging', 'GIFTCARD_HOME': str(home)})

    assert result.returncode == 0, result.stderr + result.stdout
    assert 'deliveries were not dispatched' in result.stdout and 'ConfigurationError' in result.stdout
    assert 'DELIVERY_TRANSPORT is not set' in result.stdout
    assert not home.exists()


@pytest.fixture
def staging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv('ENVIRONMENT', 'staging')
    monkeypatch.delenv('ALERTS_TOPIC_ARN', raising=False)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_outside_local_alerts_without_a_topic_stay_undelivered(staging: None) -> None:
    alert = {'id': 'a-1', 'severity': 'critical', 'type': 'pool_empty', 'message': 'Pool is empty'}

    assert notify.publish([notify.Notification('new', alert)]) == []


def test_outside_local_an_unset_vendor_list_is_a_configuration_error() -> None:
    with pytest.raises(VendorConfigError, match='VENDORS is not set'):
        vendor_configs({'ENVIRONMENT': 'staging'})
    assert vendor_configs({'ENVIRONMENT': 'staging', 'VENDORS': '[]'}) == []
    assert vendor_configs({'ENVIRONMENT': 'local'}) == []
