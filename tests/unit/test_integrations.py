"""`giftcard integration`: adding an integrating system is one command, locally and against a deployed stack.

Against AWS the command is held to the exact calls it makes (botocore's Stubber): a Cognito app client of its own
(client credentials, the provisioning scope, a secret), then the stack updated with its template and every other
parameter unchanged and the client's id added to `IntegrationClientIds`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from giftcard_local import app_clients, cli, integrations, tokens

STACK = 'giftcards-prod'
POOL = 'us-east-1_Pool12345'
# An integration's app client: client credentials only, the provisioning scope, a secret of its own.
CLIENT_SETTINGS = {
    'GenerateSecret': True,
    'AllowedOAuthFlowsUserPoolClient': True,
    'AllowedOAuthFlows': ['client_credentials'],
    'AllowedOAuthScopes': ['giftcards/provision'],
    'SupportedIdentityProviders': ['COGNITO'],
    'ExplicitAuthFlows': ['ALLOW_REFRESH_TOKEN_AUTH'],
    'AccessTokenValidity': 60,
    'TokenValidityUnits': {'AccessToken': 'minutes'},
    'EnableTokenRevocation': True,
    'PreventUserExistenceErrors': 'ENABLED',
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))
    return tmp_path


def test_locally_an_added_integration_gets_tokens_of_its_own_and_a_removed_one_none(home: Path, capsys: Any) -> None:
    assert cli.main(['integration', 'add', 'acme-crm']) == 0
    assert 'giftcard grant acme-crm client_integration --client' in capsys.readouterr().out
    claims = tokens.verify_token(tokens.issue_token('acme-crm', client=True))
    assert (claims['sub'], claims['scope']) == ('acme-crm', 'giftcards/provision')

    assert cli.main(['integration', 'list']) == 0
    assert capsys.readouterr().out == 'acme-crm giftcards/provision\n'

    assert cli.main(['integration', 'remove', 'acme-crm']) == 0
    assert app_clients.registered() == {}
    assert cli.main(['integration', 'remove', 'acme-crm']) == 1


@pytest.mark.parametrize('name', ['Acme', 'acme crm', '-acme', 'a' * 49, ''])
def test_an_integration_name_is_lower_case_letters_digits_and_dashes(home: Path, name: str) -> None:
    with pytest.raises(SystemExit):
        cli.main(['integration', 'add', name])


# --- against a stack --------------------------------------------------------------------------------------


def stack(client_ids: str) -> dict[str, Any]:
    return {
        'Stacks': [
            {
                'StackName': STACK,
                'CreationTime': '2026-01-01T00:00:00Z',
                'StackStatus': 'UPDATE_COMPLETE',
                'Capabilities': ['CAPABILITY_IAM', 'CAPABILITY_AUTO_EXPAND'],
                'Parameters': [
                    {'ParameterKey': 'EnvironmentName', 'ParameterValue': 'prod'},
                    {'ParameterKey': 'IntegrationClientIds', 'ParameterValue': client_ids},
                    {'ParameterKey': 'Vendors', 'ParameterValue': '[]'},
                ],
                'Outputs': [{'OutputKey': 'UserPoolId', 'OutputValue': POOL}],
            }
        ]
    }


def update(client_ids: str) -> dict[str, Any]:
    return {
        'StackName': STACK,
        'UsePreviousTemplate': True,
        'Parameters': [
            {'ParameterKey': 'EnvironmentName', 'UsePreviousValue': True},
            {'ParameterKey': 'Vendors', 'UsePreviousValue': True},
            {'ParameterKey': 'IntegrationClientIds', 'ParameterValue': client_ids},
        ],
        'Capabilities': ['CAPABILITY_IAM', 'CAPABILITY_AUTO_EXPAND'],
    }


@pytest.fixture
def aws() -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    session = boto3.Session(aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
    cloudformation, cognito = session.client('cloudformation'), session.client('cognito-idp')
    with Stubber(cloudformation) as cf_stub, Stubber(cognito) as cognito_stub:
        yield cloudformation, cf_stub, cognito, cognito_stub
        cf_stub.assert_no_pending_responses()
        cognito_stub.assert_no_pending_responses()


def test_adding_an_integration_to_a_stack_makes_its_own_client_and_adds_it_to_the_audience(aws: Any) -> None:
    cloudformation, cf_stub, cognito, cognito_stub = aws
    cf_stub.add_response('describe_stacks', stack('existing1'), {'StackName': STACK})
    cognito_stub.add_response(
        'list_user_pool_clients',
        {'UserPoolClients': [{'ClientId': 'existing1', 'ClientName': 'integration-globex', 'UserPoolId': POOL}]},
        {'UserPoolId': POOL, 'MaxResults': 60},
    )
    cognito_stub.add_response(
        'create_user_pool_client',
        {'UserPoolClient': {'ClientId': 'new2', 'ClientName': 'integration-acme', 'UserPoolId': POOL}},
        {'UserPoolId': POOL, 'ClientName': 'integration-acme', **CLIENT_SETTINGS},
    )
    cf_stub.add_response('update_stack', {'StackId': 'arn:stack'}, update('existing1,new2'))
    cf_stub.add_response('describe_stacks', stack('existing1,new2'), {'StackName': STACK})  # the waiter

    pool, client_id = integrations.add_to_stack('acme', STACK, cloudformation=cloudformation, cognito=cognito)

    assert (pool, client_id) == (POOL, 'new2')


def test_a_client_whose_stack_update_fails_is_deleted_again(aws: Any) -> None:
    cloudformation, cf_stub, cognito, cognito_stub = aws
    cf_stub.add_response('describe_stacks', stack(''), {'StackName': STACK})
    cognito_stub.add_response('list_user_pool_clients', {'UserPoolClients': []}, {'UserPoolId': POOL, 'MaxResults': 60})
    cognito_stub.add_response(
        'create_user_pool_client',
        {'UserPoolClient': {'ClientId': 'new2', 'UserPoolId': POOL}},
        {'UserPoolId': POOL, 'ClientName': 'integration-acme', **dict.fromkeys(CLIENT_SETTINGS, ANY)},
    )
    cf_stub.add_client_error('update_stack', 'ValidationError', 'the stack is being updated')
    cognito_stub.add_response('delete_user_pool_client', {}, {'UserPoolId': POOL, 'ClientId': 'new2'})

    with pytest.raises(Exception, match='being updated'):
        integrations.add_to_stack('acme', STACK, cloudformation=cloudformation, cognito=cognito)


def test_an_integration_name_already_in_the_pool_is_refused(aws: Any) -> None:
    cloudformation, cf_stub, cognito, cognito_stub = aws
    cf_stub.add_response('describe_stacks', stack('c1'), {'StackName': STACK})
    cognito_stub.add_response(
        'list_user_pool_clients',
        {'UserPoolClients': [{'ClientId': 'c1', 'ClientName': 'integration-acme', 'UserPoolId': POOL}]},
        {'UserPoolId': POOL, 'MaxResults': 60},
    )

    with pytest.raises(SystemExit, match='already'):
        integrations.add_to_stack('acme', STACK, cloudformation=cloudformation, cognito=cognito)


def test_removing_an_integration_takes_it_out_of_the_audience_before_deleting_its_client(aws: Any) -> None:
    cloudformation, cf_stub, cognito, cognito_stub = aws
    cf_stub.add_response('describe_stacks', stack('c1,c2'), {'StackName': STACK})
    cf_stub.add_response('update_stack', {'StackId': 'arn:stack'}, update('c2'))
    cf_stub.add_response('describe_stacks', stack('c2'), {'StackName': STACK})
    cognito_stub.add_response('delete_user_pool_client', {}, {'UserPoolId': POOL, 'ClientId': 'c1'})

    integrations.remove_from_stack('c1', STACK, cloudformation=cloudformation, cognito=cognito)
