"""Identifiers for rows written on hot paths.

`time_ordered()` is a version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then random bits. Rows
written one after another get neighbouring keys, so each new key lands on the rightmost page of its B-tree
index, a page already in memory and already logged since the last checkpoint. A random (version 4) key lands
on any page of the index: one more page read, dirtied and written in full to the WAL after each checkpoint,
for every index the key is in (a transfer's id is in four: the transfers' primary key, the index on its
entries, and the redemption's references to its charge and refund).

The random part has 74 bits, so ids are as hard to guess as they need to be (they are not secrets: access to
any row is checked against the caller), but ids written in the same millisecond are not ordered among
themselves.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def time_ordered() -> str:
    """A new version 7 UUID as text."""
    random = int.from_bytes(os.urandom(10), 'big')
    value = (
        (time.time_ns() // 1_000_000) << 80
        | _VERSION_7
        | (random >> 62 & 0xFFF) << 64  # 12 random bits after the version
        | _VARIANT_RFC
        | random & ((1 << 62) - 1)  # 62 random bits after the variant
    )
    return str(uuid.UUID(int=value))
