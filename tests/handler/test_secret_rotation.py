"""Rotating the application role's password: each step Secrets Manager asks the migrate function for, held to the
calls it makes (botocore's Stubber) and, for the password itself, to what the test database then stores; and a
function whose cached secret went stale logs in with the new one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from giftcards import db, rotation
from giftcards.config import get_settings

from tests.events import LambdaContext
from tests.handler.test_migrate_app import accepts, app_role_password  # noqa: F401 - a fixture

SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:giftcards-app-db-AbCdEf'
TOKEN = 'c8d7e6f5-0000-4000-8000-000000000001'
CURRENT = 'a1b2c3d4-0000-4000-8000-000000000000'
OLD_PASSWORD = 'old-password-0123456789abcdefghijklmnopqr'
NEW_PASSWORD = 'NewPassword0123456789abcdefghijklmnopqrs'


@pytest.fixture
def app_secret_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv('DB_SECRET_ARN', SECRET)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def secrets(app_secret_setting: None) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client('secretsmanager', region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='x')
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def described(**stages: list[str]) -> dict[str, Any]:
    return {'ARN': SECRET, 'RotationEnabled': True, 'VersionIdsToStages': stages or {CURRENT: ['AWSCURRENT']}}


def value(password: str, username: str = 'giftcard_app') -> dict[str, Any]:
    return {'ARN': SECRET, 'SecretString': json.dumps({'username': username, 'password': password})}


def rotating(stub: Stubber) -> None:
    stub.add_response(
        'describe_secret', described(**{CURRENT: ['AWSCURRENT'], TOKEN: ['AWSPENDING']}), {'SecretId': SECRET}
    )


def test_create_secret_stages_a_new_random_password_for_the_same_role(secrets: tuple[Any, Stubber]) -> None:
    client, stub = secrets
    rotating(stub)
    pending = {'SecretId': SECRET, 'VersionId': TOKEN, 'VersionStage': 'AWSPENDING'}
    stub.add_client_error('get_secret_value', 'ResourceNotFoundException', expected_params=pending)
    stub.add_response('get_secret_value', value(OLD_PASSWORD), {'SecretId': SECRET, 'VersionStage': 'AWSCURRENT'})
    stub.add_response(
        'get_random_password', {'RandomPassword': NEW_PASSWORD}, {'PasswordLength': 40, 'ExcludePunctuation': True}
    )
    stub.add_response(
        'put_secret_value',
        {'ARN': SECRET, 'VersionId': TOKEN},
        {
            'SecretId': SECRET,
            'ClientRequestToken': TOKEN,
            'SecretString': json.dumps({'username': 'giftcard_app', 'password': NEW_PASSWORD}),
            'VersionStages': ['AWSPENDING'],
        },
    )

    rotation.rotate(SECRET, TOKEN, 'createSecret', secrets=client)


def test_create_secret_tried_again_keeps_the_version_it_made(secrets: tuple[Any, Stubber]) -> None:
    client, stub = secrets
    rotating(stub)
    pending = {'SecretId': SECRET, 'VersionId': TOKEN, 'VersionStage': 'AWSPENDING'}
    stub.add_response('get_secret_value', value(NEW_PASSWORD), pending)

    rotation.rotate(SECRET, TOKEN, 'createSecret', secrets=client)


@pytest.mark.usefixtures('app_role_password')  # the role's password is put back afterwards
def test_set_secret_gives_the_role_the_pending_password(secrets: tuple[Any, Stubber], owner: Any) -> None:
    client, stub = secrets
    rotating(stub)
    pending = {'SecretId': SECRET, 'VersionId': TOKEN, 'VersionStage': 'AWSPENDING'}
    stub.add_response('get_secret_value', value(NEW_PASSWORD), pending)

    rotation.rotate(SECRET, TOKEN, 'setSecret', secrets=client)

    [[verifier]] = owner.run("SELECT rolpassword FROM pg_authid WHERE rolname = 'giftcard_app'")
    assert accepts(verifier, NEW_PASSWORD) and not accepts(verifier, OLD_PASSWORD)


def test_test_secret_refuses_a_role_that_cannot_log_in(secrets: tuple[Any, Stubber]) -> None:
    client, stub = secrets
    rotating(stub)
    pending = {'SecretId': SECRET, 'VersionId': TOKEN, 'VersionStage': 'AWSPENDING'}
    stub.add_response('get_secret_value', value(NEW_PASSWORD, username='giftcard_ledger'), pending)

    with pytest.raises(rotation.RotationError, match='may not log in'):
        rotation.rotate(SECRET, TOKEN, 'testSecret', secrets=client)


def test_finish_secret_makes_the_new_version_current(secrets: tuple[Any, Stubber]) -> None:
    client, stub = secrets
    rotating(stub)
    stub.add_response(
        'update_secret_version_stage',
        {'ARN': SECRET},
        {'SecretId': SECRET, 'VersionStage': 'AWSCURRENT', 'MoveToVersionId': TOKEN, 'RemoveFromVersionId': CURRENT},
    )

    rotation.rotate(SECRET, TOKEN, 'finishSecret', secrets=client)


@pytest.mark.parametrize('step', rotation.STEPS)
def test_a_version_already_current_is_left_alone(secrets: tuple[Any, Stubber], step: str) -> None:
    client, stub = secrets
    stub.add_response('describe_secret', described(**{TOKEN: ['AWSCURRENT']}), {'SecretId': SECRET})

    rotation.rotate(SECRET, TOKEN, step, secrets=client)


def test_only_the_application_role_secret_is_rotated(secrets: tuple[Any, Stubber]) -> None:
    client, _ = secrets

    with pytest.raises(rotation.RotationError, match='no other'):
        rotation.rotate(SECRET.replace('app-db', 'other'), TOKEN, 'createSecret', secrets=client)
    with pytest.raises(rotation.RotationError, match='unknown rotation step'):
        rotation.rotate(SECRET, TOKEN, 'dropSecret', secrets=client)


def test_the_migrate_function_takes_rotation_steps_apart_from_deploys(app_secret_setting: None) -> None:
    import migrate_app

    event = {'Step': 'createSecret', 'SecretId': SECRET.replace('app-db', 'other'), 'ClientRequestToken': TOKEN}

    with pytest.raises(rotation.RotationError, match='no other'):  # raised: Secrets Manager retries the step
        migrate_app.lambda_handler(event, LambdaContext())


# --- after a rotation -----------------------------------------------------------------------------------------


class Server:
    """Stands in for PostgreSQL behind the proxy: a login succeeds with the current password only."""

    password = NEW_PASSWORD
    logins: list[str] = []

    def __init__(self, **params: Any) -> None:
        from pg8000.native import DatabaseError

        Server.logins.append(params['password'])
        if params['password'] != Server.password:
            raise DatabaseError({'S': 'FATAL', 'C': '28P01', 'M': 'password authentication failed'})

    def register_in_adapter(self, *args: Any) -> None:
        pass


def test_a_function_whose_cached_secret_is_stale_reads_it_again_and_logs_in(
    monkeypatch: pytest.MonkeyPatch, app_secret_setting: None
) -> None:
    import pg8000.native
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    monkeypatch.delenv('DATABASE_URL')
    monkeypatch.setenv('DB_HOST', 'proxy.example.internal')
    get_settings.cache_clear()
    parameters.clear_caches()
    monkeypatch.setattr(pg8000.native, 'Connection', Server)
    Server.logins = []
    try:
        with mock_aws():
            client = boto3.client('secretsmanager', region_name='us-east-1')
            arn = client.create_secret(Name='giftcards-app-db', SecretString=value(OLD_PASSWORD)['SecretString'])['ARN']
            monkeypatch.setenv('DB_SECRET_ARN', arn)
            get_settings.cache_clear()
            parameters.get_secret(arn, transform='json')  # what this process read before the rotation
            client.put_secret_value(SecretId=arn, SecretString=value(NEW_PASSWORD)['SecretString'])

            conn = db.connect('app')
    finally:
        parameters.clear_caches()

    assert isinstance(conn, Server)
    assert Server.logins == [OLD_PASSWORD, NEW_PASSWORD]
