"""The configured vendors, in waterfall order, from the `VENDORS` environment variable (a JSON list).

```json
[{"name": "tango", "kind": "tango", "base_url": "https://api.tangocard.com/raas/v2", "secret_arn": "arn:...",
  "customer_identifier": "...", "account_identifier": "...", "catalog": {"Amazon": {"2500": "U561593"}}},
 {"name": "tillo", "kind": "tillo", "base_url": "https://app.tillo.io/api/v2", "secret_arn": "arn:...",
  "brands": {"Amazon": "amazon"}, "sector": "gift-card-mall", "currency": "USD"}]
```

Credentials come from the Secrets Manager secret `secret_arn` (cached for SECRETS_MAX_AGE_S), or, only when
ENVIRONMENT is `local`, from an inline `"credentials": {...}`. Catalog and brand keys match our brand name (case
ignored); `"*"` matches any brand or denomination (catalog denominations are cents). `timeout_s` is the read
timeout of every call (default `DEFAULT_TIMEOUT_S`), `connect_timeout_s` the connect timeout (default: the same).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from giftcards.config import Settings, get_settings
from giftcards.vendors.base import DEFAULT_TIMEOUT_S, Vendor

if TYPE_CHECKING:
    from giftcards.vendors.support import Credentials
    from giftcards.vendors.transport import Transport

_LOOPBACK = {'127.0.0.1', 'localhost', '::1'}
LEASE_MARGIN_S = 5.0


class VendorConfigError(ValueError):
    """VENDORS is not a valid vendor list. The message never repeats configured values (they may be secrets)."""


class _VendorConfig(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)

    name: str = Field(min_length=1)
    base_url: str
    secret_arn: str | None = None
    credentials: dict[str, str] | None = Field(None, repr=False)
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=120)
    connect_timeout_s: float | None = Field(None, gt=0, le=120)

    @field_validator('base_url')
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == 'https' and parts.hostname:
            return value
        if parts.scheme == 'http' and parts.hostname in _LOOPBACK:
            return value
        raise ValueError('must be an https URL (plain http only to this machine)')

    @model_validator(mode='after')
    def _one_credential_source(self) -> _VendorConfig:
        if (self.secret_arn is None) == (self.credentials is None):
            raise ValueError('give exactly one of secret_arn and credentials')
        return self

    @property
    def call_timeout_s(self) -> float:
        """The longest one call waits without an answer: connecting, then reading."""
        return (self.connect_timeout_s or self.timeout_s) + self.timeout_s


class TangoConfig(_VendorConfig):
    kind: Literal['tango']
    customer_identifier: str = Field(min_length=1)
    account_identifier: str = Field(min_length=1)
    catalog: dict[str, dict[str, str]]
    delivery_method: str | None = None


class TilloConfig(_VendorConfig):
    kind: Literal['tillo']
    brands: dict[str, str]
    sector: str = Field(min_length=1)
    currency: str | None = Field(None, pattern=r'^[A-Z]{3}$')
    delivery_method: Literal['code', 'url'] = 'code'


VendorConfig = Annotated[TangoConfig | TilloConfig, Field(discriminator='kind')]
_CONFIGS: TypeAdapter[list[TangoConfig | TilloConfig]] = TypeAdapter(list[VendorConfig])


def vendor_configs(source: Settings | Mapping[str, str] | None = None) -> list[TangoConfig | TilloConfig]:
    """The parsed VENDORS list (locally, empty when unset). Raises VendorConfigError."""
    raw, local, _ = _read(source)
    if raw is None and not local:
        raise VendorConfigError("VENDORS is not set (it is '[]' when cards come from CSV pools only)")
    if not raw or not raw.strip():
        return []
    return list(_parsed(raw, local))


@functools.lru_cache(maxsize=8)
def _parsed(raw: str, local: bool) -> tuple[TangoConfig | TilloConfig, ...]:
    # Parsed once per text: every provision asks for the vendor timeout (its lease), and validating the list took
    # a tenth of a millisecond each time. The configurations are frozen; a failure is raised again, not kept.
    try:
        configs = _CONFIGS.validate_python(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise VendorConfigError(f'VENDORS is not JSON: {exc.msg} at character {exc.pos}') from None
    except ValidationError as exc:
        problems = '; '.join(
            f'{".".join(str(p) for p in e["loc"]) or "VENDORS"}: {e["msg"]}'
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise VendorConfigError(f'VENDORS is not a valid vendor list: {problems}') from None
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise VendorConfigError(f'VENDORS names {", ".join(duplicates)} more than once')
    if not local and any(c.credentials is not None for c in configs):
        raise VendorConfigError('VENDORS: inline credentials are for local use only; use secret_arn')
    return tuple(configs)


def load_vendors(
    source: Settings | Mapping[str, str] | None = None, *, transport: Transport | None = None
) -> list[Vendor]:
    """The vendor clients in priority order. `source`: the settings, an environment mapping, or the process's settings.
    `transport`: how the clients exchange HTTP (default: `transport.send`). Secrets are read on first use, not here."""
    # The clients, and http.client under them, are imported here, where they are built, not with the configuration:
    # every provision reads the configuration (its lease is the vendor timeout), but most take a CSV card and never
    # call a vendor, so a cold start does not load them for that.
    from giftcards.vendors.support import secret_credentials
    from giftcards.vendors.tango import TangoVendor
    from giftcards.vendors.tillo import TilloVendor
    from giftcards.vendors.transport import send

    _, _, max_age_s = _read(source)
    vendors: list[Vendor] = []
    for config in vendor_configs(source):
        if config.credentials is not None:
            credentials = _inline(config.credentials)
        else:
            assert config.secret_arn is not None  # the model requires one of the two
            credentials = secret_credentials(config.secret_arn, max_age_s)
        common: dict[str, Any] = {
            'base_url': config.base_url,
            'credentials': credentials,
            'timeout_s': config.timeout_s,
            'connect_timeout_s': config.connect_timeout_s,
            'transport': transport or send,
        }
        if isinstance(config, TangoConfig):
            vendors.append(
                TangoVendor(
                    config.name,
                    customer_identifier=config.customer_identifier,
                    account_identifier=config.account_identifier,
                    catalog=config.catalog,
                    delivery_method=config.delivery_method,
                    **common,
                )
            )
        else:
            vendors.append(
                TilloVendor(
                    config.name,
                    brands=config.brands,
                    sector=config.sector,
                    currency=config.currency,
                    delivery_method=config.delivery_method,
                    **common,
                )
            )
    return vendors


def vendor_timeout_s(source: Settings | Mapping[str, str] | None = None) -> float:
    """The product's vendor timeout: the longest a vendor call of any configured vendor waits for an answer.

    A redemption pending for longer than this is no longer waiting on its first call, so a retry with the same
    idempotency key may start (a retry while the first call is still open is harmless too: it replays or is in flight).
    """
    return max((c.call_timeout_s for c in vendor_configs(source)), default=2 * DEFAULT_TIMEOUT_S)


def redemption_lease_s(source: Settings | Mapping[str, str] | None = None) -> float:
    """How long one vendor call may hold a pending redemption (its lease, `giftcards.recovery`): the vendor timeout
    and a margin. Provisioning writes a pending redemption with it, in the statement that charges."""
    return vendor_timeout_s(source) + LEASE_MARGIN_S


def _read(source: Settings | Mapping[str, str] | None) -> tuple[str | None, bool, int]:
    """(VENDORS, is local, secrets max age) from the settings or an environment mapping."""
    if source is None:
        source = get_settings()
    if isinstance(source, Settings):
        return source.vendors, source.is_local, source.secrets_max_age_s
    settings = Settings.model_validate(
        {k: source[k] for k in ('VENDORS', 'ENVIRONMENT', 'SECRETS_MAX_AGE_S') if k in source}
    )
    return settings.vendors, settings.is_local, settings.secrets_max_age_s


def _inline(credentials: Mapping[str, str]) -> Credentials:
    inline = dict(credentials)
    return lambda: inline
