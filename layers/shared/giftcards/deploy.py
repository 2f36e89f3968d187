"""Deploy-time database work, done as the owner role by the migrate function: migrations, then the application
role's password from its Secrets Manager secret (the secret RDS Proxy uses to log in as giftcard_app).

The password is sent as a SCRAM-SHA-256 verifier, never in plain text, so a server that logs DDL statements
records only the verifier. Nothing here logs a secret.
"""

from __future__ import annotations

import base64
from typing import Any

import pg8000.native
from scramp import ScramMechanism  # pg8000's own SCRAM library: the verifier matches how clients authenticate

from giftcards.config import Settings, get_settings
from giftcards.migrations_runner import migrate
from giftcards.observability import logger

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


class DeployError(Exception):
    """The deploy cannot finish; the message says why and never contains a secret."""


def scram_sha256_verifier(password: str, *, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for `password` (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`)."""
    mechanism = ScramMechanism('SCRAM-SHA-256')
    salt, stored_key, server_key, iterations = mechanism.make_auth_info(
        password, iteration_count=SCRAM_ITERATIONS, salt=salt
    )

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode('ascii')

    return f'SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}'


def set_role_password(conn: pg8000.native.Connection, role: str, password: str) -> None:
    """Give an existing login role `password`. The role name and verifier are quoted by pg8000."""
    if not password:
        raise DeployError(f'refusing to give role {role} an empty password')
    verifier = scram_sha256_verifier(password)
    statement = f'ALTER ROLE {pg8000.native.identifier(role)} PASSWORD {pg8000.native.literal(verifier)}'
    conn.run(statement)


def app_role_credentials(settings: Settings) -> tuple[str, str]:
    """(username, password) of the application role, read fresh from DB_SECRET_ARN."""
    from aws_lambda_powertools.utilities import parameters

    if not settings.db_secret_arn:
        raise DeployError('DB_SECRET_ARN is not set: there is no password for the application role')
    try:
        secret: Any = parameters.get_secret(settings.db_secret_arn, transform='json', force_fetch=True)
    except Exception as exc:  # the SDK's and the transform's errors carry no secret value
        raise DeployError(f'cannot read the application role secret: {type(exc).__name__}: {exc}') from exc
    if not isinstance(secret, dict) or not secret.get('username') or not secret.get('password'):
        raise DeployError('the application role secret needs "username" and "password"')
    return str(secret['username']), str(secret['password'])


def prepare_database(conn: pg8000.native.Connection, settings: Settings | None = None) -> list[str]:
    """Apply pending migrations, then set the application role's password. Answers the migrations applied."""
    settings = settings or get_settings()
    username, password = app_role_credentials(settings)  # before migrating: a missing secret changes nothing
    applied = migrate(conn)
    logger.info('migrations applied', extra={'applied': applied})
    set_role_password(conn, username, password)
    logger.info('application role password set', extra={'role': username})
    return applied
