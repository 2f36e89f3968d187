"""Configuration: one pydantic model read from the environment once per process."""

from __future__ import annotations

import os
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
    secrets_max_age_s: int = Field(300, alias='SECRETS_MAX_AGE_S', ge=0)
    # Public /redeem: failed attempts a source network may make within the window before it gets 429.
    redeem_max_failures: int = Field(10, alias='REDEEM_MAX_FAILURES', ge=1)
    redeem_failure_window_s: int = Field(900, alias='REDEEM_FAILURE_WINDOW_S', ge=1)
    # The vendor waterfall as a JSON list; parsed by giftcards.vendors.registry.
    vendors: str | None = Field(None, alias='VENDORS')
    # Delivering cards to recipients (giftcards.deliveries). `aws`: e-mail through SES, SMS through SNS; `local`: the
    # messages are written to the outbox in GIFTCARD_HOME. Without a queue, a delivery is sent right after the
    # commit that wrote it, by the process that committed it.
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
