"""Rotating the application role's password: Secrets Manager rotates the secret DB_SECRET_ARN names (every 30 days),
and the migrate function runs each step as the owner role.

Single user: giftcard_app keeps its name and gets a new password.
1. createSecret: a new version of the secret, staged AWSPENDING, with a random password.
2. setSecret: the role's password becomes it (a SCRAM verifier, as on every deploy: `deploy.set_role_password`).
3. testSecret: the role still exists and may log in (the new password is only usable through RDS Proxy once the
   proxy reads the new version, so it cannot be tried here).
4. finishSecret: the new version becomes AWSCURRENT.
A failed step is retried by Secrets Manager, and every step may run again: each finds its work done and stops.
Open connections keep working; new ones use the new password as soon as whoever opens them reads the secret again
(the functions do when a login is refused: `db.connect`). Nothing here logs a password.
"""

from __future__ import annotations

import json
from typing import Any

from giftcards import db
from giftcards.config import get_settings
from giftcards.deploy import set_role_password
from giftcards.observability import logger

STEPS = ('createSecret', 'setSecret', 'testSecret', 'finishSecret')
PASSWORD_LENGTH = 40  # as the template's GenerateSecretString


class RotationError(Exception):
    """A rotation step cannot run; the message says why and never contains a secret."""


def _client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        'secretsmanager', config=Config(connect_timeout=2, read_timeout=10, retries={'max_attempts': 3})
    )


def is_rotation(event: dict[str, Any]) -> bool:
    """Whether a Lambda event is Secrets Manager asking for a rotation step."""
    return {'Step', 'SecretId', 'ClientRequestToken'} <= event.keys()


def rotate(secret_id: str, token: str, step: str, *, secrets: Any | None = None) -> None:
    """Run one rotation step of version `token` of the application role's secret."""
    if step not in STEPS:
        raise RotationError(f'unknown rotation step {step!r}')
    if secret_id != get_settings().db_secret_arn:
        raise RotationError('this function rotates the application role secret (DB_SECRET_ARN) and no other')
    secrets = secrets or _client()
    described = secrets.describe_secret(SecretId=secret_id)
    if not described.get('RotationEnabled'):
        raise RotationError('rotation is not enabled on the secret')
    stages = described.get('VersionIdsToStages', {})
    if token not in stages:
        raise RotationError(f'version {token} of the secret is not being rotated')
    if 'AWSCURRENT' in stages[token]:
        logger.info('rotation step: the version is current already', extra={'step': step})
        return
    if 'AWSPENDING' not in stages[token]:
        raise RotationError(f'version {token} of the secret is not pending')
    if step == 'createSecret':
        _create(secrets, secret_id, token)
    elif step == 'setSecret':
        _set(secrets, secret_id, token)
    elif step == 'testSecret':
        _test(secrets, secret_id, token)
    else:
        current = next(version for version, names in stages.items() if 'AWSCURRENT' in names)
        secrets.update_secret_version_stage(
            SecretId=secret_id, VersionStage='AWSCURRENT', MoveToVersionId=token, RemoveFromVersionId=current
        )
    logger.info('rotation step done', extra={'step': step})


def _value(secrets: Any, secret_id: str, **version: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(secrets.get_secret_value(SecretId=secret_id, **version)['SecretString'])
    return value


def _create(secrets: Any, secret_id: str, token: str) -> None:
    try:
        _value(secrets, secret_id, VersionId=token, VersionStage='AWSPENDING')
    except secrets.exceptions.ResourceNotFoundException:
        pass
    else:
        return  # made by an earlier try of this step
    current = _value(secrets, secret_id, VersionStage='AWSCURRENT')
    password = secrets.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True)['RandomPassword']
    secrets.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps({**current, 'password': password}),
        VersionStages=['AWSPENDING'],
    )


def _set(secrets: Any, secret_id: str, token: str) -> None:
    pending = _value(secrets, secret_id, VersionId=token, VersionStage='AWSPENDING')
    with db.owner_connection() as conn:
        set_role_password(conn, str(pending['username']), str(pending['password']))


def _test(secrets: Any, secret_id: str, token: str) -> None:
    username = str(_value(secrets, secret_id, VersionId=token, VersionStage='AWSPENDING')['username'])
    with db.owner_connection() as conn:
        rows = conn.run('SELECT rolcanlogin FROM pg_roles WHERE rolname = :name', name=username)
    if rows != [[True]]:
        raise RotationError(f'role {username} does not exist or may not log in')
