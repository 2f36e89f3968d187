"""Gift card vendors behind one interface: Tango Card RaaS v2 and Tillo v2 clients, configured from VENDORS.

Provisioning uses `load_vendors()` (priority order), `VendorOrder` / `IssuedCard`, the two failures
`VendorRefused` / `VendorOutcomeUnknown`, and `vendor_timeout_s()` to tell when a pending order may be retried.
"""

from giftcards.vendors.base import (
    DEFAULT_TIMEOUT_S,
    IssuedCard,
    Vendor,
    VendorError,
    VendorOrder,
    VendorOutcomeUnknown,
    VendorRefused,
    idempotency_key_for,
)
from giftcards.vendors.registry import (
    VendorConfigError,
    load_vendors,
    redemption_lease_s,
    vendor_configs,
    vendor_timeout_s,
)

__all__ = [
    'DEFAULT_TIMEOUT_S',
    'IssuedCard',
    'Vendor',
    'VendorConfigError',
    'VendorError',
    'VendorOrder',
    'VendorOutcomeUnknown',
    'VendorRefused',
    'idempotency_key_for',
    'load_vendors',
    'redemption_lease_s',
    'vendor_configs',
    'vendor_timeout_s',
]
