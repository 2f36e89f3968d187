"""Each function gets exactly the settings and permissions its code uses.

`tests.function_needs` derives each function's needs (`config.Need`) from its code; the handler module names the
same needs (it does not start without their settings), and template.yaml gives the function the settings those
needs name and the permissions they use, and no other.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from giftcard_local.template import load_template
from giftcards.config import NEEDED_SETTINGS, Need

from tests.function_needs import (
    KMS_CLIENT,
    LAYER,
    NEEDS_BY_KMS_CALL,
    NEEDS_BY_SECRETS_CALL,
    NEEDS_BY_SETTING,
    SHARED_SETTINGS,
    called,
    field_aliases,
    function_needs,
    kms_operation,
    local_only,
    program,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    name: f'{name.title()}Function'
    for name in ('provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards', 'migrate', 'deliver')
}
NEEDED = {name for names in NEEDED_SETTINGS.values() for name in names}


def ref(name: str) -> dict[str, str]:
    return {'Ref': name}


def arn(resource: str, attribute: str = 'Arn') -> dict[str, list[str]]:
    return {'Fn::GetAtt': [resource, attribute]}


def through(service: str) -> dict[str, Any]:
    return {'StringEquals': {'kms:ViaService': {'Fn::Sub': f'{service}.${{AWS::Region}}.amazonaws.com'}}}


CARD_CONTEXT = {'StringEquals': {'kms:EncryptionContext:purpose': 'giftcards-card-data'}}
READ_SECRET = ('kms:Decrypt', arn('DataKey'), through('secretsmanager'))


def secret(resource: Any) -> list[tuple[str, Any, Any]]:
    return [('secretsmanager:GetSecretValue', resource, None), READ_SECRET]


# What each need is allowed to do: (action, resource, condition).
PERMISSIONS: dict[Need, list[tuple[str, Any, Any]]] = {
    Need.DATABASE: secret(ref('AppDbSecret')),
    Need.DATABASE_OWNER: secret(arn('Database', 'MasterUserSecret.SecretArn')),
    Need.DATABASE_ROTATION: [
        *secret(ref('AppDbSecret')),
        ('secretsmanager:DescribeSecret', ref('AppDbSecret'), None),
        ('secretsmanager:PutSecretValue', ref('AppDbSecret'), None),
        ('secretsmanager:UpdateSecretVersionStage', ref('AppDbSecret'), None),
        ('secretsmanager:GetRandomPassword', '*', None),
        ('kms:GenerateDataKey', arn('DataKey'), through('secretsmanager')),
    ],
    Need.CODE_HASH: secret(ref('CodeHashSecret')),
    Need.VENDORS: secret(ref('VendorSecret')),
    Need.ALERTS: [
        ('sns:Publish', ref('AlertsTopic'), None),
        ('kms:GenerateDataKey', arn('DataKey'), through('sns')),
        ('kms:Decrypt', arn('DataKey'), through('sns')),
    ],
    Need.CARD_KEYS: [('kms:GenerateDataKey', arn('CardKey'), CARD_CONTEXT)],
    Need.CARD_REVEAL: [('kms:Decrypt', arn('CardKey'), CARD_CONTEXT)],
    Need.DELIVERY_QUEUE: [
        ('sqs:SendMessage', arn('DeliveryQueue'), None),
        ('kms:GenerateDataKey', arn('DataKey'), through('sqs')),
        ('kms:Decrypt', arn('DataKey'), through('sqs')),
    ],
    Need.MESSAGING: [
        (
            'ses:SendEmail',
            [
                {'Fn::Sub': 'arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderAddress}'},
                {
                    'Fn::Sub': 'arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/'
                    '${DeliveryConfigurationSet}'
                },
            ],
            {'StringEquals': {'ses:FromAddress': ref('SenderAddress')}},
        ),
        # SMS: a publish to a phone number, never to a topic (each of which has an ARN).
        ('sns:Publish', {'NotResource': {'Fn::Sub': 'arn:${AWS::Partition}:sns:*:*:*'}}, None),
    ],
}
# What each setting is, in the template.
SETTING_VALUES = {
    'DB_SECRET_ARN': ref('AppDbSecret'),
    'DB_OWNER_SECRET_ARN': arn('Database', 'MasterUserSecret.SecretArn'),
    'DB_HOST': arn('DBProxy', 'Endpoint'),
    'KMS_KEY_ID': arn('CardKey'),
    'CODE_HASH_SECRET_ARN': ref('CodeHashSecret'),
    'ALERTS_TOPIC_ARN': ref('AlertsTopic'),
    'VENDORS': ref('Vendors'),
    'DELIVERY_QUEUE_URL': ref('DeliveryQueue'),
    'DELIVERY_TRANSPORT': 'aws',
    'EMAIL_FROM': ref('SenderAddress'),
    'SES_CONFIGURATION_SET': ref('DeliveryConfigurationSet'),
    'REDEEM_URL': {'Fn::Sub': 'https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/redeem'},
}


@pytest.fixture(scope='module')
def template() -> dict[str, Any]:
    return load_template(ROOT / 'template.yaml')


def environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    own = (template['Resources'][logical_id]['Properties'].get('Environment') or {}).get('Variables') or {}
    return {**template['Globals']['Function']['Environment']['Variables'], **own}


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def permissions(template: dict[str, Any], logical_id: str) -> set[tuple[str, str, str]]:
    """What a function's `Policies` allow, as (action, resource, condition) in canonical JSON."""
    found = set()
    for policy in template['Resources'][logical_id]['Properties'].get('Policies') or []:
        if 'AWSSecretsManagerGetSecretValuePolicy' in policy:
            found.add(
                (
                    'secretsmanager:GetSecretValue',
                    _key(policy['AWSSecretsManagerGetSecretValuePolicy']['SecretArn']),
                    _key(None),
                )
            )
            continue
        assert set(policy) == {'Statement'}, f'{logical_id}: a policy this test does not read: {policy}'
        for statement in policy['Statement']:
            assert statement['Effect'] == 'Allow'
            actions = statement['Action'] if isinstance(statement['Action'], list) else [statement['Action']]
            resource = statement['Resource'] if 'Resource' in statement else {'NotResource': statement['NotResource']}
            for action in actions:
                found.add((action, _key(resource), _key(statement.get('Condition'))))
    return found


def expected_permissions(needs: set[Need]) -> set[tuple[str, str, str]]:
    return {(a, _key(r), _key(c)) for need in needs for a, r, c in PERMISSIONS[need]}


@pytest.mark.parametrize('function', FUNCTIONS)
def test_the_handler_names_the_needs_its_code_has(function: str) -> None:
    module = importlib.import_module(f'{function}_app')

    assert set(module.NEEDS) == function_needs(function)


@pytest.mark.parametrize('function', FUNCTIONS)
def test_the_function_gets_the_settings_of_its_needs_and_no_other(function: str, template: dict[str, Any]) -> None:
    env = environment(template, FUNCTIONS[function])
    needed = {name for need in function_needs(function) for name in NEEDED_SETTINGS[need]}

    assert {name for name in env if name in NEEDED} == needed
    assert {name: env[name] for name in needed} == {name: SETTING_VALUES[name] for name in needed}
    assert env['ENVIRONMENT'] == ref('EnvironmentName')


@pytest.mark.parametrize('function', FUNCTIONS)
def test_the_function_may_do_what_its_needs_use_and_nothing_more(function: str, template: dict[str, Any]) -> None:
    assert permissions(template, FUNCTIONS[function]) == expected_permissions(function_needs(function))


def test_only_the_functions_that_show_cards_may_decrypt_card_data() -> None:
    # The deliver function writes the card itself into the message of a campaign set to send it.
    assert {f for f in FUNCTIONS if Need.CARD_REVEAL in function_needs(f)} == {'provision', 'redeem', 'deliver'}
    assert Need.CODE_HASH in function_needs('monitor'), 'recovering a vendor order stores, and hashes, a card'


def test_only_the_deliver_function_sends_messages_and_whatever_commits_a_delivery_may_queue_it() -> None:
    assert {f for f in FUNCTIONS if Need.MESSAGING in function_needs(f)} == {'deliver'}
    # Provisioning (the provision and redeem functions), the monitor's sweep, a resend and a retry.
    assert {f for f in FUNCTIONS if Need.DELIVERY_QUEUE in function_needs(f)} == {
        'provision',
        'redeem',
        'monitor',
        'admin',
        'deliver',
    }


def test_a_local_stand_in_is_reached_and_what_it_names_is_not_followed() -> None:
    """Without a queue the committing process sends its deliveries (deliveries._send_here), but only when
    ENVIRONMENT is local: the provision function reaches the stand-in and not the sender behind it."""
    _, reached = program().reach('provision_app')
    _, node = program().definitions['giftcards.deliveries._send_here']

    assert local_only(node)
    assert 'giftcards.deliveries._send_here' in reached
    assert 'giftcards.delivering.deliver' not in reached
    assert not local_only(program().definitions['giftcards.deliveries.dispatch'][1])


def layer_code() -> list[tuple[str, ast.AST]]:
    """Every node of the layer's modules but config.py (where the settings are declared, not used)."""
    return [
        (path.name, node)
        for path in sorted((LAYER / 'giftcards').rglob('*.py'))
        if path.name != 'config.py'
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8')))
    ]


def test_the_derivation_knows_every_setting_that_names_a_need_and_every_kms_operation() -> None:
    aliases = field_aliases()
    read = {aliases[n.attr] for _, n in layer_code() if isinstance(n, ast.Attribute) and n.attr in aliases}
    operations = {op for _, node in layer_code() if (op := kms_operation(node))}
    kms_client = [node for _, node in layer_code() if isinstance(node, ast.Attribute) and node.attr == KMS_CLIENT]

    assert set(NEEDS_BY_SETTING) | SHARED_SETTINGS == NEEDED
    assert read & NEEDED == NEEDED, 'every setting a need names is read through config.Settings somewhere'
    assert kms_client and operations == set(NEEDS_BY_KMS_CALL)
    secrets_operations = {op for _, node in layer_code() if (op := called(node)) in NEEDS_BY_SECRETS_CALL}
    assert secrets_operations == set(NEEDS_BY_SECRETS_CALL)


def test_no_module_reads_a_needed_setting_around_config_settings() -> None:
    environ_reads = [
        (name, node.args[0].value)
        for name, node in layer_code()
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in ('os.environ.get', 'os.getenv', 'environ.get')
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value in NEEDED
    ]
    assert environ_reads == []
