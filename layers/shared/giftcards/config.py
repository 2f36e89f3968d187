"""Configuration: one pydantic model read from the environment once per process, and what each function needs of it.

Outside `ENVIRONMENT=local` nothing falls back to a local stand-in: a function whose code needs a key, a secret or a
topic names that need (`require`), and starts only when every setting the need names is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Settings(BaseModel):
    """Everything the functions read from their environment. Field aliases are the variable names."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    environment: str = Field('local', alias='ENVIRONMENT')
    # Local / self-managed PostgreSQL: an owner URL. The application connects to the same server and
    # database as `db_app_user`, so functions never run with the owner's rights.
    database_url: str | None = Field(None, alias='DATABASE_URL')
    db_app_user: str = Field('giftcard_app', alias='DB_APP_USER')
    db_app_password: SecretStr | None = Field(None, alias='DB_APP_PASSWORD')
    # AWS: Secrets Manager secrets ({username, password, host, port, dbname}) for the app and owner roles.
    db_secret_arn: str | None = Field(None, alias='DB_SECRET_ARN')
    db_owner_secret_arn: str | None = Field(None, alias='DB_OWNER_SECRET_ARN')
    db_host: str | None = Field(None, alias='DB_HOST')
    db_name: str = Field('giftcards', alias='DB_NAME')
    db_connect_timeout_s: float = Field(5.0, alias='DB_CONNECT_TIMEOUT_S', gt=0)
    db_statement_timeout_ms: int = Field(10_000, alias='DB_STATEMENT_TIMEOUT_MS', gt=0)
    db_tls: bool | None = Field(None, alias='DB_TLS')

    giftcard_home: str = Field('.giftcard', alias='GIFTCARD_HOME')
    alerts_topic_arn: str | None = Field(None, alias='ALERTS_TOPIC_ARN')
    kms_key_id: str | None = Field(None, alias='KMS_KEY_ID')
    code_hash_secret_arn: str | None = Field(None, alias='CODE_HASH_SECRET_ARN')
    secrets_max_age_s: int = Field(300, alias='SECRETS_MAX_AGE_S', ge=0)
    # Public /redeem: failed attempts a source network may make within the window before it gets 429.
    redeem_max_failures: int = Field(10, alias='REDEEM_MAX_FAILURES', ge=1)
    redeem_failure_window_s: int = Field(900, alias='REDEEM_FAILURE_WINDOW_S', ge=1)
    # How long redemption attempts are kept for review; the monitor deletes older ones (never younger than 7 days).
    redeem_attempts_retention_days: int = Field(90, alias='REDEEM_ATTEMPTS_RETENTION_DAYS', ge=7)
    # The vendor waterfall as a JSON list; parsed by giftcards.vendors.registry.
    vendors: str | None = Field(None, alias='VENDORS')
    # Delivering cards to recipients (giftcards.deliveries). `aws`: e-mail through SES, SMS through SNS; `local` (only
    # when ENVIRONMENT is local): the messages are written to the outbox in GIFTCARD_HOME. Without a queue (again only
    # locally), a delivery is sent right after the commit that wrote it, by the process that committed it.
    delivery_transport: Literal['aws', 'local'] = Field('local', alias='DELIVERY_TRANSPORT')
    delivery_queue_url: str | None = Field(None, alias='DELIVERY_QUEUE_URL')
    email_from: str | None = Field(None, alias='EMAIL_FROM')
    ses_configuration_set: str | None = Field(None, alias='SES_CONFIGURATION_SET')
    sms_sender_id: str | None = Field(None, alias='SMS_SENDER_ID')
    redeem_url: str = Field('http://127.0.0.1:3000/redeem', alias='REDEEM_URL')  # where a message's link leads
    delivery_link_ttl_s: int = Field(30 * 86400, alias='DELIVERY_LINK_TTL_S', ge=60)

    @property
    def is_local(self) -> bool:
        return self.environment == 'local'


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; tests that change the environment call `get_settings.cache_clear()`."""
    fields = {f.alias for f in Settings.model_fields.values() if f.alias}
    return Settings.model_validate({k: v for k, v in os.environ.items() if k in fields})


class ConfigurationError(RuntimeError):
    """A setting the code needs is missing where no local stand-in may take its place; the message names it."""


class Need(StrEnum):
    """What a function's code uses outside itself. In AWS each is named by settings (`NEEDED_SETTINGS`) and granted
    by the function's policy; tests/unit/test_function_needs.py derives each function's needs from its code."""

    DATABASE = 'database'  # connections as the application role
    DATABASE_OWNER = 'database_owner'  # connections as the owner role (migrations)
    DATABASE_ROTATION = 'database_rotation'  # new versions of the application role's secret (its rotation)
    CARD_KEYS = 'card_keys'  # new data keys for sealing card data (KMS GenerateDataKey)
    CARD_REVEAL = 'card_reveal'  # unwrapping data keys to show a card (KMS Decrypt)
    CODE_HASH = 'code_hash'  # the HMAC key of redemption and card code hashes
    ALERTS = 'alerts'  # the alerts topic
    VENDORS = 'vendors'  # the vendor waterfall ('[]': CSV pools only)
    DELIVERY_QUEUE = 'delivery_queue'  # handing committed deliveries to the delivery queue (SQS)
    MESSAGING = 'messaging'  # messages to recipients (SES e-mail, SNS SMS) and the redeem page's links they carry


NEEDED_SETTINGS: Mapping[Need, tuple[str, ...]] = {
    Need.DATABASE: ('DB_SECRET_ARN', 'DB_HOST'),
    Need.DATABASE_OWNER: ('DB_OWNER_SECRET_ARN', 'DB_HOST'),
    Need.DATABASE_ROTATION: ('DB_SECRET_ARN',),
    Need.CARD_KEYS: ('KMS_KEY_ID',),
    Need.CARD_REVEAL: ('KMS_KEY_ID',),
    Need.CODE_HASH: ('CODE_HASH_SECRET_ARN',),
    Need.ALERTS: ('ALERTS_TOPIC_ARN',),
    Need.VENDORS: ('VENDORS',),
    Need.DELIVERY_QUEUE: ('DELIVERY_QUEUE_URL',),
    Need.MESSAGING: ('DELIVERY_TRANSPORT', 'EMAIL_FROM', 'SES_CONFIGURATION_SET', 'REDEEM_URL'),
}


# A self-managed database (DATABASE_URL) names the server and both roles without them.
_DATABASE_SECRETS = ('DB_SECRET_ARN', 'DB_OWNER_SECRET_ARN', 'DB_HOST')


def missing_settings(needs: tuple[Need, ...], environ: Mapping[str, str]) -> list[str]:
    """The settings `needs` name that `environ` lacks; none when ENVIRONMENT is local, except in Lambda, where
    ENVIRONMENT must name the stack's environment: without it the code would take itself for a developer's machine."""
    if 'AWS_LAMBDA_FUNCTION_NAME' in environ and environ.get('ENVIRONMENT', 'local') == 'local':
        return ['ENVIRONMENT']
    if environ.get('ENVIRONMENT', 'local') == 'local':
        return []
    names = [name for need in needs for name in NEEDED_SETTINGS[need]]
    if environ.get('DATABASE_URL'):
        names = [name for name in names if name not in _DATABASE_SECRETS]
    return list(dict.fromkeys(name for name in names if not environ.get(name)))


def require(*needs: Need) -> tuple[Need, ...]:
    """Stop a function at start, naming what is missing, when a setting its needs name is unset outside
    ENVIRONMENT=local. Each handler module calls it as it is imported; answers `needs`."""
    missing = missing_settings(needs, os.environ)
    if missing:
        raise ConfigurationError(
            f'not set: {", ".join(missing)}. This function needs {", ".join(needs)}, and outside ENVIRONMENT=local '
            'nothing takes the place of a missing key, secret or topic (in Lambda, ENVIRONMENT is never local).'
        )
    return needs


def refuse_outside_local(what: str, setting: str) -> None:
    """The one guard of every local stand-in: raise unless ENVIRONMENT is local."""
    if not get_settings().is_local:
        raise ConfigurationError(f'{setting} is not set, and {what} is used only when ENVIRONMENT is local')
