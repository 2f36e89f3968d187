"""Secrets at rest: envelope encryption for card data and keyed hashes for lookups without plaintext.

- Envelope encryption: a 256-bit data key from KMS (`GenerateDataKey`; locally, wrapped by a master key in
  $GIFTCARD_HOME) encrypts values with AES-GCM; the associated data binds each ciphertext to its row (the
  card id), so a ciphertext copied onto another row does not decrypt. Only the wrapped data key is stored.
- Keyed hashes: HMAC-SHA256 under a secret (Secrets Manager; locally a file in $GIFTCARD_HOME), so a
  redemption code or card code can be found or de-duplicated without storing it.

The key files are for ENVIRONMENT=local only: anywhere else a missing KMS_KEY_ID or CODE_HASH_SECRET_ARN is a
`ConfigurationError`, and no key file is read or created (a random key per container would seal cards nobody can
open later and break duplicate detection).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from giftcards.config import get_settings, refuse_outside_local

# cryptography is imported in the functions that use it: loading its bindings adds to every cold start, and most
# requests never seal or unseal card data.

_NONCE = 12
_NONCE_READ = _NONCE * 256


class KeyProvider(Protocol):
    def generate_data_key(self) -> tuple[bytes, bytes]:
        """A fresh data key: (plaintext key, wrapped key to store)."""

    def unwrap(self, wrapped: bytes) -> bytes:
        """The plaintext of a stored wrapped key."""


def _local_secret(name: str, setting: str, size: int = 32) -> bytes:
    """A random secret kept in $GIFTCARD_HOME (created once, readable only by its owner), standing in for what
    `setting` names in AWS; only when ENVIRONMENT is local."""
    refuse_outside_local(f'the key file {name}', setting)
    home = Path(get_settings().giftcard_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, 'wb') as fh:
                fh.write(os.urandom(size))
    secret = path.read_bytes()
    if len(secret) != size:
        raise RuntimeError(f'{path} is damaged: expected {size} bytes')
    return secret


class LocalKeys:
    """Development stand-in for KMS: data keys wrapped by a master key file."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._master = AESGCM(_local_secret('card-master.key', 'KMS_KEY_ID'))

    def generate_data_key(self) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        return key, nonce + self._master.encrypt(nonce, key, b'giftcards-data-key')

    def unwrap(self, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], b'giftcards-data-key')


class KmsKeys:
    """Data keys from AWS KMS under the stack's key."""

    def __init__(self, key_id: str) -> None:
        import boto3
        from botocore.config import Config

        self._key_id = key_id
        self._kms = boto3.client('kms', config=Config(connect_timeout=2, read_timeout=5, retries={'max_attempts': 3}))

    def generate_data_key(self) -> tuple[bytes, bytes]:
        out = self._kms.generate_data_key(
            KeyId=self._key_id, KeySpec='AES_256', EncryptionContext={'purpose': 'giftcards-card-data'}
        )
        return out['Plaintext'], out['CiphertextBlob']

    def unwrap(self, wrapped: bytes) -> bytes:
        out = self._kms.decrypt(
            CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext={'purpose': 'giftcards-card-data'}
        )
        return bytes(out['Plaintext'])


_provider_lock = threading.Lock()


@lru_cache(maxsize=1)
def key_provider() -> KeyProvider:
    settings = get_settings()
    with _provider_lock:
        return KmsKeys(settings.kms_key_id) if settings.kms_key_id else LocalKeys()


def seal(key: bytes, plaintext: str, associated: bytes) -> bytes:
    """AES-GCM encrypt `plaintext` under a data key, bound to `associated` (for example the card id)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), associated)


def unseal(key: bytes, sealed: bytes, associated: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], associated).decode()


class Sealer:
    """`seal`/`unseal` under one data key with the cipher set up once (an import seals 100,000s of values).

    Nonces are cut from reads of `_NONCE_READ` random bytes: a system call per nonce cost as much as the encryption.
    Not thread-safe: one instance per thread.
    """

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._random = b''
        self._taken = 0

    def _nonce(self) -> bytes:
        if self._taken == len(self._random):
            self._random, self._taken = os.urandom(_NONCE_READ), 0
        self._taken += _NONCE
        return self._random[self._taken - _NONCE : self._taken]

    def seal(self, plaintext: str, associated: bytes) -> bytes:
        nonce = self._nonce()
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), associated)

    def unseal(self, sealed: bytes, associated: bytes) -> str:
        return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], associated).decode()


@lru_cache(maxsize=1)
def _hash_key() -> bytes:
    settings = get_settings()
    if settings.code_hash_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret = parameters.get_secret(settings.code_hash_secret_arn, max_age=settings.secrets_max_age_s)
        return secret.encode() if isinstance(secret, str) else bytes(secret)
    return _local_secret('hash.key', 'CODE_HASH_SECRET_ARN')


def keyed_hash(purpose: str, value: str) -> bytes:
    """HMAC-SHA256 of `value` for one purpose ('redemption_code', 'card_code', ...): equal inputs, equal hashes."""
    return hmac.new(_hash_key(), purpose.encode() + b'\x00' + value.encode(), hashlib.sha256).digest()


def keyed_hasher(purpose: str) -> Callable[[str], bytes]:
    """`keyed_hash` for one purpose with the HMAC key set up once, for bulk use; the same hashes."""
    prefixed = hmac.new(_hash_key(), purpose.encode() + b'\x00', hashlib.sha256)

    def digest(value: str) -> bytes:
        mac = prefixed.copy()
        mac.update(value.encode())
        return mac.digest()

    return digest


def last4(value: str | None) -> str | None:
    return value[-4:] if value else None
