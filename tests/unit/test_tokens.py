"""Local bearer tokens: what `issue_token` signs, and everything `verify_token` refuses as the JWT authorizer does."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from giftcard_local import app_clients, tokens
from giftcard_local.tokens import (
    AUDIENCE,
    LOCAL_ISSUER,
    PEOPLE_SCOPE,
    InvalidToken,
    has_scope,
    issue_token,
    signing_key,
    verify_token,
)


def signed(
    home: Path,
    claims: dict[str, Any],
    *,
    key: Any = None,
    headers: dict[str, Any] | None = None,
    algorithm: str = 'RS256',
) -> str:
    """A token with exactly these claims, signed with the local key unless another is given."""
    local = signing_key(home)
    return jwt.encode(
        claims,
        key if key is not None else local.private_key,
        algorithm=algorithm,
        headers={'kid': local.kid, **(headers or {})},
    )


def valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {'sub': 'user-1', 'iss': LOCAL_ISSUER, 'aud': AUDIENCE, 'iat': now, 'exp': now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_user_token_looks_like_the_access_token_of_a_person_signed_in_to_the_people_client(tmp_path):
    token = issue_token('user-1', ttl_s=600, home=tmp_path)

    claims = verify_token(token, home=tmp_path)

    assert claims['sub'] == claims['username'] == 'user-1'
    assert claims['iss'] == LOCAL_ISSUER
    assert claims['client_id'] == AUDIENCE
    assert (claims['token_use'], claims['scope']) == ('access', PEOPLE_SCOPE)
    assert claims['exp'] - claims['iat'] == 600
    assert 'aud' not in claims


def test_client_token_looks_like_a_cognito_client_credentials_access_token(tmp_path):
    app_clients.add('integration-7', home=tmp_path)

    claims = verify_token(issue_token('integration-7', client=True, home=tmp_path), home=tmp_path)

    assert claims['sub'] == claims['client_id'] == 'integration-7'
    assert claims['token_use'] == 'access'
    assert claims['scope'] == 'giftcards/provision'
    assert 'aud' not in claims


def test_each_integration_is_its_own_client_and_subject(tmp_path):
    for client in ('acme', 'globex'):
        app_clients.add(client, home=tmp_path)

    subjects = {
        verify_token(issue_token(c, client=True, home=tmp_path), home=tmp_path)['sub'] for c in ('acme', 'globex')
    }

    assert subjects == {'acme', 'globex'}


def test_only_a_registered_app_client_gets_a_token(tmp_path):
    with pytest.raises(ValueError, match='giftcard integration add acme'):
        issue_token('acme', client=True, home=tmp_path)


def test_a_token_of_a_client_outside_the_audience_is_refused(tmp_path):
    token = signed(tmp_path, valid_claims(aud=None, client_id='acme', scope='giftcards/provision'))

    with pytest.raises(InvalidToken, match='audience'):
        verify_token(token, home=tmp_path)


def test_a_removed_client_is_refused_even_with_a_token_verified_before(tmp_path):
    app_clients.add('acme', home=tmp_path)
    token = issue_token('acme', client=True, home=tmp_path)
    assert verify_token(token, home=tmp_path)['sub'] == 'acme'  # verified, and remembered

    assert app_clients.remove('acme', home=tmp_path) is True

    with pytest.raises(InvalidToken, match='audience'):
        verify_token(token, home=tmp_path)


@pytest.mark.parametrize(
    ('scope', 'required', 'passes'),
    [
        ('giftcards/provision', (), True),
        (None, (), True),
        ('giftcards/provision', ('giftcards/provision', PEOPLE_SCOPE), True),
        (PEOPLE_SCOPE, ('giftcards/provision', PEOPLE_SCOPE), True),
        ('giftcards/reports other', ('giftcards/provision',), False),
        (None, ('giftcards/provision',), False),
        ('giftcards/provisioner', ('giftcards/provision',), False),
    ],
)
def test_a_route_with_scopes_needs_a_token_with_one_of_them(scope, required, passes):
    assert has_scope({'scope': scope} if scope else {}, required) is passes


def test_default_lifetime_is_twelve_hours(tmp_path):
    claims = verify_token(issue_token('user-1', home=tmp_path), home=tmp_path)

    assert claims['exp'] - claims['iat'] == 12 * 3600


def test_token_header_names_the_key(tmp_path):
    header = jwt.get_unverified_header(issue_token('user-1', home=tmp_path))

    assert header['alg'] == 'RS256'
    assert header['kid'] == signing_key(tmp_path).kid


def test_expired_token_is_refused(tmp_path):
    token = issue_token('user-1', ttl_s=-1, home=tmp_path)

    with pytest.raises(InvalidToken, match='expired'):
        verify_token(token, home=tmp_path)


def test_tampered_payload_is_refused(tmp_path):
    header, payload, signature = issue_token('user-1', home=tmp_path).split('.')
    claims = json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))
    claims['sub'] = 'platform-owner'
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()

    with pytest.raises(InvalidToken):
        verify_token(f'{header}.{forged}.{signature}', home=tmp_path)


def test_token_signed_by_another_key_with_the_same_kid_is_refused(tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(InvalidToken, match='Signature'):
        verify_token(signed(tmp_path, valid_claims(), key=other), home=tmp_path)


def test_token_with_an_unknown_kid_is_refused(tmp_path):
    with pytest.raises(InvalidToken, match='kid'):
        verify_token(signed(tmp_path, valid_claims(), headers={'kid': 'someone-else'}), home=tmp_path)


@pytest.mark.parametrize('algorithm', ['HS256', 'none'])
def test_only_rs256_is_accepted(tmp_path, algorithm):
    key = 'not-a-secret-but-long-enough-for-hs256!' if algorithm == 'HS256' else None
    token = jwt.encode(valid_claims(), key, algorithm=algorithm, headers={'kid': signing_key(tmp_path).kid})

    with pytest.raises(InvalidToken, match='algorithm'):
        verify_token(token, home=tmp_path)


@pytest.mark.parametrize(
    'claims',
    [
        valid_claims(iss='https://cognito-idp.us-east-1.amazonaws.com/elsewhere'),
        valid_claims(iss=None),
        valid_claims(aud='another-api'),
        valid_claims(aud=['another-api', 'third-api']),
        valid_claims(aud=None),
        valid_claims(exp=None),
        valid_claims(nbf=int(time.time()) + 600),
        valid_claims(iat=int(time.time()) + 600),
    ],
    ids=[
        'foreign-issuer',
        'no-issuer',
        'other-audience',
        'other-audiences',
        'no-aud-no-client-id',
        'no-exp',
        'not-yet-valid',
        'issued-in-the-future',
    ],
)
def test_authorizer_checks_refuse(tmp_path, claims):
    with pytest.raises(InvalidToken):
        verify_token(signed(tmp_path, claims), home=tmp_path)


def test_audience_list_containing_the_api_is_accepted(tmp_path):
    claims = verify_token(signed(tmp_path, valid_claims(aud=['other', AUDIENCE])), home=tmp_path)

    assert claims['sub'] == 'user-1'


def test_client_id_counts_only_without_aud(tmp_path):
    token = signed(tmp_path, valid_claims(aud='another-api', client_id='integration-7'))

    with pytest.raises(InvalidToken, match='audience'):
        verify_token(token, home=tmp_path)


def test_malformed_token_is_refused(tmp_path):
    with pytest.raises(InvalidToken):
        verify_token('not.a.jwt', home=tmp_path)


def test_signing_key_is_created_once_owner_only(tmp_path):
    home = tmp_path / 'home'
    first = issue_token('user-1', home=home)
    key_file = home / tokens.KEY_FILE

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b'-----BEGIN PRIVATE KEY-----')
    tokens._keys.clear()  # a new process reads the same file
    assert verify_token(first, home=home)['sub'] == 'user-1'


def test_each_home_has_its_own_key(tmp_path):
    token = issue_token('user-1', home=tmp_path / 'a')

    with pytest.raises(InvalidToken):
        verify_token(token, home=tmp_path / 'b')


def test_token_command_prints_a_token_the_local_api_accepts(tmp_path, monkeypatch, capsys):
    from giftcard_local import cli

    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))
    assert cli.main(['integration', 'add', 'integration-7']) == 0
    capsys.readouterr()

    assert cli.main(['token', 'integration-7', '--client', '--ttl', '120']) == 0

    claims = verify_token(capsys.readouterr().out.strip(), home=tmp_path)
    assert claims['client_id'] == 'integration-7'
    assert claims['exp'] - claims['iat'] == 120


def test_a_verified_token_is_refused_once_it_expires(tmp_path):
    token = signed(tmp_path, valid_claims(exp=int(time.time()) + 3))
    assert verify_token(token, home=tmp_path)['sub'] == 'user-1'  # verified, and remembered

    time.sleep(3.1)

    with pytest.raises(InvalidToken):
        verify_token(token, home=tmp_path)


def test_a_remembered_token_is_good_only_for_the_key_that_verified_it(tmp_path):
    token = issue_token('user-1', home=tmp_path / 'a')
    assert verify_token(token, home=tmp_path / 'a')['sub'] == 'user-1'

    with pytest.raises(InvalidToken):
        verify_token(token, home=tmp_path / 'b')


def test_claims_handed_out_cannot_change_what_is_remembered(tmp_path):
    token = issue_token('user-1', home=tmp_path)
    verify_token(token, home=tmp_path)['sub'] = 'someone-else'

    assert verify_token(token, home=tmp_path)['sub'] == 'user-1'


def test_token_command_refuses_a_client_that_is_not_registered(tmp_path, monkeypatch, capsys):
    from giftcard_local import cli

    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))

    assert cli.main(['token', 'stranger', '--client']) == 2
    assert 'giftcard integration add stranger' in capsys.readouterr().err
