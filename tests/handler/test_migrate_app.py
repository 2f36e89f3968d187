"""The migrate custom resource against the test database, answering a local stand-in for CloudFormation."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from scramp import ScramClient, ScramMechanism

from tests.events import LambdaContext

APP_PASSWORD = 'app-password-0123456789abcdefghijklmnopqrstuv'


@dataclass
class Answer:
    headers: dict[str, str]
    body: dict[str, Any]


class CloudFormation:
    """An HTTP server taking the PUTs a custom resource sends to its ResponseURL."""

    def __init__(self) -> None:
        self.answers: queue.Queue[Answer] = queue.Queue()
        self.fail_next = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers['Content-Length']))
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.send_response(503)
                else:
                    outer.answers.put(Answer(dict(self.headers), json.loads(body)))
                    self.send_response(200)
                self.send_header('Content-Length', '0')
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_port}/stack-response?X-Amz-Signature=abc'
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_answer(self) -> Answer:
        return self.answers.get(timeout=30)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ShortLivedContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        import migrate_app

        return migrate_app.SAFETY_MARGIN_MS + 200  # the deadline answer goes out after 0.2 s


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    cfn = CloudFormation()
    yield cfn
    cfn.close()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Environment changes for one test, with the settings and secret caches cleared before and after."""
    from aws_lambda_powertools.utilities import parameters
    from giftcards.config import get_settings

    get_settings.cache_clear()
    parameters.clear_caches()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
    parameters.clear_caches()


@pytest.fixture
def app_secret(database_url: str, settings_env: pytest.MonkeyPatch) -> Iterator[str]:
    """DB_SECRET_ARN names a (moto) secret with the application role's credentials."""
    import boto3
    from giftcards.config import get_settings
    from moto import mock_aws

    with mock_aws():
        client = boto3.client('secretsmanager', region_name='us-east-1')
        arn = client.create_secret(
            Name='giftcards/app-db', SecretString=json.dumps({'username': 'giftcard_app', 'password': APP_PASSWORD})
        )['ARN']
        settings_env.setenv('DB_SECRET_ARN', arn)
        settings_env.delenv('DB_OWNER_SECRET_ARN', raising=False)  # the owner role comes from DATABASE_URL
        get_settings.cache_clear()
        yield arn


@pytest.fixture
def app_role_password(owner: Any) -> Iterator[None]:
    """The giftcard_app role's stored password is put back afterwards (roles are shared by the whole server)."""
    import pg8000.native

    (before,) = owner.run("SELECT rolpassword FROM pg_authid WHERE rolname = 'giftcard_app'")[0]
    yield
    restored = 'NULL' if before is None else pg8000.native.literal(before)
    owner.run(f'ALTER ROLE giftcard_app PASSWORD {restored}')


def cfn_event(request_type: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        'RequestType': request_type,
        'ResponseURL': url,
        'StackId': 'arn:aws:cloudformation:us-east-1:123456789012:stack/giftcards-test/1',
        'RequestId': f'request-{request_type.lower()}',
        'ResourceType': 'Custom::Migrate',
        'LogicalResourceId': 'Migration',
        'ResourceProperties': {'ServiceToken': 'arn:aws:lambda:us-east-1:123456789012:function:migrate'},
        **extra,
    }


def database_state(owner: Any) -> tuple[Any, ...]:
    migrations = owner.run('SELECT version, name, checksum FROM schema_migrations ORDER BY version')
    password = owner.run("SELECT rolpassword FROM pg_authid WHERE rolname = 'giftcard_app'")
    return tuple(map(tuple, migrations)), password[0][0]


def accepts(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier lets `password` log in: a full SCRAM exchange against it."""
    import base64

    from scramp import ScramException

    method, rest = verifier.split('$', 1)
    iterations_salt, keys = rest.split('$')
    iterations, salt = iterations_salt.split(':')
    stored_key, server_key = keys.split(':')
    info = (base64.b64decode(salt), base64.b64decode(stored_key), base64.b64decode(server_key), int(iterations))
    server = ScramMechanism(method).make_server(lambda _username: info)
    client = ScramClient([method], 'giftcard_app', password)
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    try:
        server.set_client_final(client.get_client_final())
    except ScramException:
        return False
    client.set_server_final(server.get_server_final())
    return True


def test_create_applies_pending_migrations_and_sets_the_app_password_as_a_verifier(
    cloudformation: CloudFormation, app_secret: str, owner: Any, app_role_password: None
) -> None:
    import migrate_app

    migrate_app.lambda_handler(cfn_event('Create', cloudformation.url), LambdaContext())

    answer = cloudformation.next_answer()
    assert answer.body['Status'] == 'SUCCESS', answer.body['Reason']
    assert answer.body['Data'] == {'Applied': 0}  # the test database is already migrated
    assert answer.body['PhysicalResourceId'] == migrate_app.PHYSICAL_ID
    assert answer.body['RequestId'] == 'request-create'
    assert answer.body['LogicalResourceId'] == 'Migration'
    assert answer.headers.get('Content-Type') == ''  # what S3's presigned ResponseURL expects
    _, verifier = database_state(owner)
    assert verifier.startswith('SCRAM-SHA-256$4096:')
    assert accepts(verifier, APP_PASSWORD)
    assert not accepts(verifier, APP_PASSWORD + 'x')


def test_update_keeps_the_physical_id_so_cloudformation_deletes_nothing(
    cloudformation: CloudFormation, app_secret: str, app_role_password: None
) -> None:
    import migrate_app

    event = cfn_event('Update', cloudformation.url, PhysicalResourceId=migrate_app.PHYSICAL_ID)
    migrate_app.lambda_handler(event, LambdaContext())

    answer = cloudformation.next_answer()
    assert (answer.body['Status'], answer.body['PhysicalResourceId']) == ('SUCCESS', migrate_app.PHYSICAL_ID)


def test_an_unreadable_app_secret_answers_failed_with_the_reason_and_changes_nothing(
    cloudformation: CloudFormation, app_secret: str, owner: Any, settings_env: pytest.MonkeyPatch
) -> None:
    import migrate_app
    from giftcards.config import get_settings

    settings_env.setenv('DB_SECRET_ARN', app_secret + '-missing')
    get_settings.cache_clear()
    before = database_state(owner)

    migrate_app.lambda_handler(cfn_event('Create', cloudformation.url), LambdaContext())

    answer = cloudformation.next_answer()
    assert answer.body['Status'] == 'FAILED'
    assert 'cannot read the application role secret' in answer.body['Reason']
    assert 'ResourceNotFoundException' in answer.body['Reason']
    assert answer.body['PhysicalResourceId'] == migrate_app.PHYSICAL_ID
    assert database_state(owner) == before


def test_a_failing_migration_answers_failed_with_its_message(
    cloudformation: CloudFormation, app_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import migrate_app
    from giftcards import deploy
    from giftcards.migrations_runner import MigrationError

    def edited(_conn: Any) -> list[str]:
        raise MigrationError('0001_foundation.sql was edited after it was applied')

    monkeypatch.setattr(deploy, 'migrate', edited)

    migrate_app.lambda_handler(cfn_event('Update', cloudformation.url), LambdaContext())

    answer = cloudformation.next_answer()
    assert answer.body['Status'] == 'FAILED'
    assert answer.body['Reason'] == 'MigrationError: 0001_foundation.sql was edited after it was applied'


def test_an_unreachable_database_answers_failed(
    cloudformation: CloudFormation, app_secret: str, settings_env: pytest.MonkeyPatch
) -> None:
    import migrate_app
    from giftcards.config import get_settings

    settings_env.setenv('DATABASE_URL', 'postgresql://postgres@127.0.0.1:9/giftcards?sslmode=disable')
    get_settings.cache_clear()

    migrate_app.lambda_handler(cfn_event('Create', cloudformation.url), LambdaContext())

    answer = cloudformation.next_answer()
    assert answer.body['Status'] == 'FAILED'
    assert 'database is unavailable' in answer.body['Reason']


def test_delete_succeeds_without_touching_the_database(
    cloudformation: CloudFormation, owner: Any, settings_env: pytest.MonkeyPatch
) -> None:
    import migrate_app
    from giftcards.config import get_settings

    before = database_state(owner)
    # No secret and no reachable database: a Delete that tried to use either would fail.
    settings_env.setenv('DATABASE_URL', 'postgresql://postgres@127.0.0.1:9/giftcards?sslmode=disable')
    settings_env.delenv('DB_SECRET_ARN', raising=False)
    get_settings.cache_clear()

    event = cfn_event('Delete', cloudformation.url, PhysicalResourceId=migrate_app.PHYSICAL_ID)
    migrate_app.lambda_handler(event, LambdaContext())

    answer = cloudformation.next_answer()
    assert (answer.body['Status'], answer.body['PhysicalResourceId']) == ('SUCCESS', migrate_app.PHYSICAL_ID)
    assert database_state(owner) == before


def test_running_out_of_time_answers_failed_once_before_the_deadline(
    cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    import migrate_app

    def slow(_event: dict[str, Any]) -> dict[str, Any]:
        time.sleep(1.0)
        return {}

    monkeypatch.setattr(migrate_app, '_run', slow)

    started = time.monotonic()
    migrate_app.lambda_handler(cfn_event('Create', cloudformation.url), ShortLivedContext())

    answer = cloudformation.next_answer()
    assert answer.body['Status'] == 'FAILED'
    assert 'ran out of time' in answer.body['Reason']
    assert time.monotonic() - started < 5
    with pytest.raises(queue.Empty):
        cloudformation.answers.get(timeout=0.5)  # the late SUCCESS is not sent


def test_a_refused_answer_is_sent_again(cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch) -> None:
    import migrate_app

    monkeypatch.setattr(migrate_app, '_run', lambda _event: {})
    cloudformation.fail_next = 1

    migrate_app.lambda_handler(cfn_event('Delete', cloudformation.url), LambdaContext())

    assert cloudformation.next_answer().body['Status'] == 'SUCCESS'
