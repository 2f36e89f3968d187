"""Local bearer tokens: what Cognito issues in AWS, signed here with a key under GIFTCARD_HOME.

- A person's token is what Cognito gives a user who signs in to the people's app client (`giftcard-api` here): an
  access token with that `client_id`, the user's `sub` and the scope `aws.cognito.signin.user.admin`.
- An integration's token is a client-credentials access token of its own app client: `sub` and `client_id` are the
  client's id, `scope` the client's scopes (`giftcards/provision`). Only a registered client gets one
  (`giftcard_local.app_clients`, `giftcard integration add`).

`verify_token` checks a token the way API Gateway's HTTP API JWT authorizer does: RS256 with a key found by
`kid`, the issuer, `aud` (or `client_id` when there is no `aud`) against the audience list (the people's client and
every registered integration client), `exp`, and `nbf` / `iat` when present; `has_scope` is the route's scope check.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from giftcard_local import app_clients, embedded

LOCAL_ISSUER = 'http://127.0.0.1:3000/local-issuer'
AUDIENCE = 'giftcard-api'  # the people's app client
PEOPLE_SCOPE = 'aws.cognito.signin.user.admin'  # what Cognito puts in a signed-in user's access token
PROVISION_SCOPE = app_clients.PROVISION_SCOPE
KEY_FILE = 'jwt-signing-key.pem'
DEFAULT_TTL_S = 12 * 3600
ALGORITHM = 'RS256'

_keys: dict[Path, SigningKey] = {}
_keys_lock = threading.Lock()
# Tokens this process has verified, with their claims: a signature, once good, stays good for the token's life, so
# only the expiry is checked again. Verifying costs about 0.4 ms (PyJWT checks each base64 character in Python,
# then RSA), a good part of a local request; a client sends the same token with every request.
_verified: dict[tuple[Path, str], dict[str, Any]] = {}
_VERIFIED_LIMIT = 4096  # forgotten wholesale when full


class InvalidToken(Exception):
    """The token would not pass the authorizer; the message says why (for logs, not for callers)."""


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, 'big')
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a stable `kid` that changes whenever the key does."""
    numbers = public_key.public_numbers()
    jwk = json.dumps(
        {'e': _b64url_uint(numbers.e), 'kty': 'RSA', 'n': _b64url_uint(numbers.n)},
        separators=(',', ':'),
        sort_keys=True,
    )
    return base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest()).rstrip(b'=').decode()


def _create_key_file(path: Path) -> None:
    """Write a new key without ever exposing a partial file or replacing one another process wrote."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(f'.{path.name}.{uuid.uuid4().hex}')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(pem)
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink()


def signing_key(home: Path | None = None) -> SigningKey:
    """The local signing key in `home` (default GIFTCARD_HOME), created with 0600 permissions on first use."""
    path = (home or embedded.home()) / KEY_FILE
    with _keys_lock:
        if path not in _keys:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                _create_key_file(path)
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise InvalidToken(f'{path} does not hold an RSA key')
            _keys[path] = SigningKey(private_key, _thumbprint(private_key.public_key()))
        return _keys[path]


def issue_token(subject: str, *, client: bool = False, ttl_s: int = DEFAULT_TTL_S, home: Path | None = None) -> str:
    """A bearer token for `subject`: a signed-in user's access token, or with `client` the client-credentials access
    token of the registered app client `subject` (ValueError for a client that is not registered)."""
    scopes = app_clients.registered(home).get(subject) if client else (PEOPLE_SCOPE,)
    if scopes is None:
        raise ValueError(f'{subject} is not a registered app client: giftcard integration add {subject}')
    key = signing_key(home)
    now = int(time.time())
    claims: dict[str, Any] = {
        'sub': subject,
        'iss': LOCAL_ISSUER,
        'iat': now,
        'exp': now + ttl_s,
        'jti': str(uuid.uuid4()),
    }
    # Cognito's access tokens have no `aud`: the authorizer matches `client_id` instead.
    if client:
        claims |= {'client_id': subject, 'token_use': 'access', 'scope': ' '.join(scopes)}
    else:
        claims |= {'client_id': AUDIENCE, 'token_use': 'access', 'scope': PEOPLE_SCOPE, 'username': subject}
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={'kid': key.kid})


def verify_token(token: str, *, home: Path | None = None) -> dict[str, Any]:
    """The token's claims if API Gateway's JWT authorizer would accept it; `InvalidToken` otherwise."""
    cache_key = (home or embedded.home(), token)  # the home names the key: its KEY_FILE
    known = _verified.get(cache_key)
    if known is not None and known['exp'] > time.time():
        _check_audience(known, home)  # a removed client's tokens are refused from then on
        return dict(known)
    claims = _verify(token, home)
    _check_audience(claims, home)
    if len(_verified) >= _VERIFIED_LIMIT:
        _verified.clear()
    _verified[cache_key] = claims
    return dict(claims)


def _verify(token: str, home: Path | None) -> dict[str, Any]:
    key = signing_key(home)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f'malformed token: {exc}') from exc
    if header.get('alg') != ALGORITHM:
        raise InvalidToken(f'algorithm {header.get("alg")!r} is not {ALGORITHM}')
    if header.get('kid') != key.kid:
        raise InvalidToken('no signing key matches the token kid')
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[ALGORITHM],
            issuer=LOCAL_ISSUER,
            options={'require': ['exp', 'iss'], 'verify_aud': False, 'verify_sub': False, 'verify_jti': False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return claims


def _check_audience(claims: dict[str, Any], home: Path | None) -> None:
    # As the authorizer: `aud` when present (a string or a list), otherwise `client_id`, against the audience list.
    if 'aud' in claims:
        aud = claims['aud']
        audiences = aud if isinstance(aud, list) else [aud]
        if AUDIENCE not in audiences:
            raise InvalidToken('the token audience is not this API')
        return
    client_id = claims.get('client_id')
    if not isinstance(client_id, str) or not client_id:
        raise InvalidToken('the token has neither aud nor client_id')
    if client_id != AUDIENCE and client_id not in app_clients.registered(home):
        raise InvalidToken(f'app client {client_id!r} is not in the audience (giftcard integration add)')


def has_scope(claims: dict[str, Any], required: tuple[str, ...]) -> bool:
    """A route's scope check: with `AuthorizationScopes`, the token's `scope` must hold at least one of them."""
    if not required:
        return True
    scope = claims.get('scope')
    return isinstance(scope, str) and not set(scope.split()).isdisjoint(required)
