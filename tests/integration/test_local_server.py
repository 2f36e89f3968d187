"""The local API server: routing from the template, the JWT authorizer, the v2 event, concurrency, the monitor.

Most tests run against a small template written here, whose functions echo the event they receive, so the
assertions see exactly what API Gateway would hand a function. The project's template.yaml is served too.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sys
import textwrap
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from giftcard_local import app_clients, tokens
from giftcard_local.server import MAX_BODY_BYTES, LocalApi, LocalServer

PROJECT = Path(__file__).resolve().parents[2]
T = TypeVar('T')
SERVER_NOT_FOUND = 'No route in the template'

ECHO_HANDLER = """
import base64
import json
import os
import time

# One line per call, appended by whichever execution environment makes it: "enter|leave PID MONOTONIC".
CALLS = os.path.join(os.path.dirname(__file__), 'calls.log')


def record(what):
    with open(CALLS, 'a') as fh:
        fh.write(f'{what} {os.getpid()} {time.monotonic()}\\n')


def lambda_handler(event, context):
    record('enter')
    with open(CALLS) as fh:
        calls = sum(1 for line in fh if line.startswith('enter'))
    if event['rawPath'] == '/crash':
        os._exit(1)
    if event['rawPath'] == '/wait':
        time.sleep(0.2)
        record('leave')
        return {'statusCode': 200, 'body': json.dumps({'pid': os.getpid()})}
    if event['rawPath'] == '/binary':
        return {'statusCode': 200, 'isBase64Encoded': True, 'headers': {'Content-Type': 'application/octet-stream'},
                'body': base64.b64encode(bytes(range(256))).decode()}
    return {
        'statusCode': 200,
        'headers': {'Content-Type': 'application/json'},
        'multiValueHeaders': {'X-Multi': ['one', 'two']},
        'cookies': ['session=abc; HttpOnly', 'theme=dark'],
        'body': json.dumps({'function': context.function_name, 'calls': calls, 'event': event,
                            'remaining_ms': context.get_remaining_time_in_millis()}),
    }
"""

OTHER_HANDLER = """
def lambda_handler(event, context):
    # No statusCode: API Gateway answers 200 with this as the JSON body.
    return {'function': context.function_name, 'routeKey': event['routeKey']}
"""

BOOM_HANDLER = """
def lambda_handler(event, context):
    raise RuntimeError('secret detail: the database password is hunter2')
"""

TICK_HANDLER = """
import json
from pathlib import Path

RUNS = [0]


def lambda_handler(event, context):
    RUNS[0] += 1
    if RUNS[0] == 1:
        raise RuntimeError('the first run fails; the schedule must keep going')
    Path({out!r}).write_text(json.dumps({{'event': event, 'function': context.function_name, 'runs': RUNS[0]}}))
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration: {{issuer: !Sub 'https://example.com/${{AWS::Region}}', audience: [giftcard-api]}}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: {echo}.lambda_handler
      Timeout: 10
      Events:
        Item: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: '/items/{{item_id}}'}}}}
        Upload: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: POST, Path: /upload}}}}
        Wait: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: /wait}}}}
        Binary: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: /binary}}}}
        Crash: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: /crash}}}}
        Scoped:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: POST
            Path: /scoped
            Auth: {{Authorizer: Jwt, AuthorizationScopes: [giftcards/provision, aws.cognito.signin.user.admin]}}
        Public:
          Type: HttpApi
          Properties: {{ApiId: !Ref Api, Method: POST, Path: /public, Auth: {{Authorizer: NONE}}}}
  OtherFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: other/
      Handler: {other}.lambda_handler
      Events:
        Special: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: /items/special}}}}
  BoomFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: boom/
      Handler: {boom}.lambda_handler
      Events:
        Boom: {{Type: HttpApi, Properties: {{ApiId: !Ref Api, Method: GET, Path: /boom}}}}
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tick/
      Handler: {tick}.lambda_handler
      Events:
        EveryFiveMinutes:
          Type: Schedule
          Properties: {{Schedule: rate(5 minutes)}}
"""


def write_test_template(root: Path) -> Path:
    """The template and its four functions; module names are unique so that tests never share a module."""
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f'{kind}_{suffix}_app' for kind in ('echo', 'other', 'boom', 'tick')}
    sources = {
        'echo': ECHO_HANDLER,
        'other': OTHER_HANDLER,
        'boom': BOOM_HANDLER,
        'tick': TICK_HANDLER.format(out=str(root / 'tick.json')),
    }
    for kind, name in names.items():
        (root / kind).mkdir(parents=True, exist_ok=True)
        (root / kind / f'{name}.py').write_text(textwrap.dedent(sources[kind]))
    path = root / 'template.yaml'
    path.write_text(TEMPLATE.format(**names))
    return path


@pytest.fixture(scope='module')
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    template = write_test_template(tmp_path_factory.mktemp('local-api'))
    with LocalServer(template, port=0, workers=2, monitor=False, vendors=False, capture_log=True) as running:
        yield running


def calls_log(server: LocalServer) -> list[tuple[str, int, float]]:
    """The echo function's calls so far: (enter|leave, pid, monotonic time)."""
    path = server.template_path.parent / 'echo' / 'calls.log'
    if not path.exists():
        return []
    return [(w, int(pid), float(t)) for w, pid, t in (line.split() for line in path.read_text().splitlines())]


def call(
    server: LocalServer,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    token: str | None = None,
) -> tuple[int, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        conn.putrequest(method, target, skip_host=any(name.lower() == 'host' for name, _ in pairs))
        if token is not None:
            pairs.append(('Authorization', f'Bearer {token}'))
        for name, value in pairs:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader('Content-Length', str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response, response.read()
    finally:
        conn.close()


def call_json(server: LocalServer, method: str, target: str, **kwargs: Any) -> tuple[int, Any]:
    status, _, body = call(server, method, target, **kwargs)
    return status, json.loads(body)


def server_messages(server: LocalServer, since: int = 0) -> list[str]:
    """What the execution environments logged as giftcard_local.server (without time and level), from line
    `since` of their log on."""
    marker = ' giftcard_local.server '
    return [line.split(marker, 1)[1] for line in list(server.log_lines)[since:] if marker in line]


def logged(server: LocalServer, *prefixes: str, since: int = 0) -> list[str]:
    """The request log lines starting with each prefix; an environment writes one just after its answer."""
    deadline = time.monotonic() + 5
    while True:
        messages = server_messages(server, since)
        found = {p: [m for m in messages if m.startswith(p)] for p in prefixes}
        if all(found.values()) or time.monotonic() > deadline:
            return [line for p in prefixes for line in found[p]]
        time.sleep(0.01)


def user_token() -> str:
    return tokens.issue_token('user-1')


def echo(server: LocalServer, method: str, target: str, **kwargs: Any) -> dict[str, Any]:
    """The event the echo function received (the request must have reached it)."""
    status, body = call_json(server, method, target, **kwargs)
    assert status == 200, body
    return body['event']


# --- routing -------------------------------------------------------------------------------------------


def test_request_reaches_the_function_of_the_matching_route(server):
    status, body = call_json(server, 'GET', '/items/42', token=user_token())

    assert status == 200
    assert body['function'] == 'EchoFunction'
    assert body['event']['routeKey'] == 'GET /items/{item_id}'
    assert body['event']['requestContext']['routeKey'] == 'GET /items/{item_id}'
    assert body['event']['pathParameters'] == {'item_id': '42'}


def test_function_gets_its_template_timeout(server):
    status, body = call_json(server, 'GET', '/items/42', token=user_token())

    assert status == 200
    assert 9_000 < body['remaining_ms'] <= 10_000


def test_literal_route_beats_a_path_parameter(server):
    status, body = call_json(server, 'GET', '/items/special', token=user_token())

    assert status == 200
    assert body == {'function': 'OtherFunction', 'routeKey': 'GET /items/special'}


@pytest.mark.parametrize(('method', 'target'), [('GET', '/nowhere'), ('DELETE', '/items/42'), ('GET', '/items/4/2')])
def test_path_or_method_missing_from_the_template_is_answered_by_the_server(server, method, target):
    status, body = call_json(server, method, target, token=user_token())

    assert status == 404
    assert body['success'] is False
    assert body['error']['code'] == 'route_not_found'
    assert body['error']['message'].startswith(SERVER_NOT_FOUND)


# --- the JWT authorizer --------------------------------------------------------------------------------


def calls_so_far(server: LocalServer) -> int:
    return sum(1 for what, _, _ in calls_log(server) if what == 'enter')


def expired() -> str:
    return tokens.issue_token('user-1', ttl_s=-5)


def signed_by_another_key() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {'sub': 'user-1', 'iss': tokens.LOCAL_ISSUER, 'aud': tokens.AUDIENCE, 'iat': now, 'exp': now + 600}
    return jwt.encode(claims, other, algorithm='RS256', headers={'kid': tokens.signing_key().kid})


def local_key_with(**changes: Any) -> str:
    now = int(time.time())
    claims = {'sub': 'user-1', 'iss': tokens.LOCAL_ISSUER, 'aud': tokens.AUDIENCE, 'iat': now, 'exp': now + 600}
    claims.update(changes)
    key = tokens.signing_key()
    return jwt.encode(claims, key.private_key, algorithm='RS256', headers={'kid': key.kid})


@pytest.mark.parametrize(
    'authorization',
    [
        None,
        lambda: f'Bearer {expired()}',
        lambda: f'Bearer {signed_by_another_key()}',
        lambda: f'Bearer {local_key_with(aud="another-api")}',
        lambda: f'Bearer {local_key_with(iss="https://cognito-idp.us-east-1.amazonaws.com/pool")}',
        lambda: 'Bearer not-a-token',
        lambda: 'Basic dXNlcjpwYXNz',
    ],
    ids=['no-token', 'expired', 'other-key', 'wrong-audience', 'wrong-issuer', 'garbage', 'basic-auth'],
)
def test_protected_route_refuses_without_a_valid_token_before_the_function_runs(server, authorization):
    before = calls_so_far(server)
    headers = {'Authorization': authorization()} if authorization else {}

    status, response, raw = call(server, 'GET', '/items/42', headers=headers)

    body = json.loads(raw)
    assert status == 401
    assert body == {'success': False, 'error': {'code': 'unauthorized', 'message': body['error']['message']}}
    assert response.getheader('WWW-Authenticate', '').startswith('Bearer')
    assert calls_so_far(server) == before  # the function never ran


def test_token_is_accepted_without_the_bearer_prefix_as_api_gateway_does(server):
    status, _, _ = call(server, 'GET', '/items/42', headers={'Authorization': user_token()})

    assert status == 200


def test_public_route_needs_no_token_and_passes_no_claims(server):
    event = echo(server, 'POST', '/public', headers={'Content-Type': 'application/json'}, body=b'{}')

    assert 'authorizer' not in event['requestContext']


def test_public_route_ignores_an_invalid_token(server):
    status, _, _ = call(server, 'POST', '/public', headers={'Authorization': 'Bearer junk'}, body=b'{}')

    assert status == 200


def test_user_claims_reach_the_function_as_strings(server):
    token = user_token()

    jwt_context = echo(server, 'GET', '/items/1', token=token)['requestContext']['authorizer']['jwt']

    decoded = jwt.decode(token, options={'verify_signature': False})
    claims = jwt_context['claims']
    assert claims['sub'] == claims['username'] == 'user-1'
    assert claims['client_id'] == tokens.AUDIENCE
    assert claims['iss'] == tokens.LOCAL_ISSUER
    assert claims['exp'] == str(decoded['exp'])
    assert jwt_context['scopes'] == [tokens.PEOPLE_SCOPE]


def test_client_token_passes_client_id_and_scopes(server):
    app_clients.add('integration-7')
    token = tokens.issue_token('integration-7', client=True)

    jwt_context = echo(server, 'GET', '/items/1', token=token)['requestContext']['authorizer']['jwt']

    assert jwt_context['claims']['client_id'] == 'integration-7'
    assert jwt_context['claims']['token_use'] == 'access'
    assert jwt_context['scopes'] == ['giftcards/provision']


def test_a_route_with_scopes_takes_a_token_carrying_one_of_them(server):
    app_clients.add('integration-8')
    app_clients.add('reporting-1', scopes=('giftcards/reports',))
    integration = tokens.issue_token('integration-8', client=True)
    reporting = tokens.issue_token('reporting-1', client=True)
    id_token = local_key_with()  # a person's ID token: an audience, no scope
    before = calls_so_far(server)

    answers = {
        name: call(server, 'POST', '/scoped', token=token, body=b'{}')
        for name, token in (('reporting', reporting), ('id-token', id_token))
    }

    assert {name: answer[0] for name, answer in answers.items()} == {'reporting': 403, 'id-token': 403}
    assert json.loads(answers['reporting'][2])['error']['code'] == 'insufficient_scope'
    assert 'insufficient_scope' in answers['reporting'][1].getheader('WWW-Authenticate')
    assert calls_so_far(server) == before  # the function never ran
    assert call(server, 'POST', '/scoped', token=integration, body=b'{}')[0] == 200
    assert call(server, 'POST', '/scoped', token=user_token(), body=b'{}')[0] == 200


def test_a_removed_integration_is_refused_though_its_token_has_not_expired(server):
    app_clients.add('integration-9')
    token = tokens.issue_token('integration-9', client=True)
    assert call(server, 'GET', '/items/1', token=token)[0] == 200

    app_clients.remove('integration-9')

    assert call(server, 'GET', '/items/1', token=token)[0] == 401


def test_list_claims_are_flattened_like_api_gateway(server):
    token = local_key_with(aud=['other-api', tokens.AUDIENCE], groups=['a', 'b'])

    claims = echo(server, 'GET', '/items/1', token=token)['requestContext']['authorizer']['jwt']['claims']

    assert claims['aud'] == f'[other-api {tokens.AUDIENCE}]'
    assert claims['groups'] == '[a b]'


# --- the v2 event --------------------------------------------------------------------------------------


def test_source_ip_is_the_peer_address_even_with_a_forged_forwarded_header(server):
    event = echo(
        server, 'GET', '/items/1', token=user_token(), headers={'X-Forwarded-For': '6.6.6.6', 'User-Agent': 'tests/1'}
    )

    http = event['requestContext']['http']
    assert http['sourceIp'] == '127.0.0.1'
    assert http['userAgent'] == 'tests/1'
    assert event['headers']['x-forwarded-for'] == '6.6.6.6, 127.0.0.1'


def test_event_has_the_payload_2_0_shape(server):
    event = echo(server, 'GET', '/items/a%20b%2Fc', token=user_token())

    assert event['version'] == '2.0'
    assert event['rawPath'] == '/items/a%20b%2Fc'
    assert event['pathParameters'] == {'item_id': 'a b/c'}
    assert event['isBase64Encoded'] is False
    assert 'body' not in event
    assert 'queryStringParameters' not in event
    context = event['requestContext']
    assert context['stage'] == '$default'
    assert context['http']['method'] == 'GET'
    assert context['http']['path'] == '/items/a%20b%2Fc'
    assert context['http']['protocol'] == 'HTTP/1.1'
    assert context['accountId'] and context['apiId'] and context['requestId'] and context['domainName']
    assert time.strptime(context['time'], '%d/%b/%Y:%H:%M:%S +0000')
    assert abs(context['timeEpoch'] / 1000 - time.time()) < 60


@pytest.mark.parametrize(
    ('host', 'domain'),
    [('api.example.com:3000', 'api.example.com'), ('[::1]:3000', '::1'), ('[::1', '127.0.0.1'), ('', '127.0.0.1')],
)
def test_domain_name_is_the_host_header_name_and_a_host_that_does_not_parse_is_the_loopback(server, host, domain):
    event = echo(server, 'GET', '/items/1', token=user_token(), headers={'Host': host})

    assert event['requestContext']['domainName'] == domain
    assert event['requestContext']['domainPrefix'] == domain.split('.', 1)[0]


def test_query_string_repeats_are_comma_joined(server):
    event = echo(server, 'GET', '/items/1?x=1&x=2&Name=a+b%26c&empty=', token=user_token())

    assert event['rawQueryString'] == 'x=1&x=2&Name=a+b%26c&empty='
    assert event['queryStringParameters'] == {'x': '1,2', 'Name': 'a b&c', 'empty': ''}


def test_headers_are_lower_cased_repeats_joined_and_cookies_separated(server):
    headers = [('X-Thing', 'one'), ('x-thing', 'two'), ('Cookie', 'a=1; b=2'), ('Cookie', 'c=3')]

    event = echo(server, 'GET', '/items/1', token=user_token(), headers=headers)

    assert event['headers']['x-thing'] == 'one,two'
    assert event['cookies'] == ['a=1', 'b=2', 'c=3']
    assert 'cookie' not in event['headers']
    assert all(name == name.lower() for name in event['headers'])


def test_text_body_is_passed_as_text(server):
    body = json.dumps({'amount': 27.5, 'note': 'café'}).encode()

    event = echo(server, 'POST', '/upload', token=user_token(), headers={'Content-Type': 'application/json'}, body=body)

    assert event['isBase64Encoded'] is False
    assert event['body'] == body.decode()


@pytest.mark.parametrize('content_type', ['application/octet-stream', 'application/x-www-form-urlencoded', None])
def test_other_bodies_are_base64_encoded(server, content_type):
    body = bytes(range(256)) if content_type != 'application/x-www-form-urlencoded' else b'code=ABCD-1234'
    headers = {'Content-Type': content_type} if content_type else {}

    event = echo(server, 'POST', '/upload', token=user_token(), headers=headers, body=body)

    assert event['isBase64Encoded'] is True
    assert base64.b64decode(event['body']) == body


def test_chunked_body_is_read_whole(server):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        conn.request(
            'POST',
            '/upload',
            body=iter([b'{"a":', b'1}']),
            headers={'Content-Type': 'application/json', 'Authorization': f'Bearer {user_token()}'},
            encode_chunked=True,
        )
        event = json.loads(conn.getresponse().read())['event']
    finally:
        conn.close()

    assert event['body'] == '{"a":1}'


# --- responses -----------------------------------------------------------------------------------------


def test_function_headers_multi_value_headers_and_cookies_are_returned(server):
    status, response, _ = call(server, 'GET', '/items/1', token=user_token())

    assert status == 200
    assert response.getheader('Content-Type') == 'application/json'
    assert response.headers.get_all('X-Multi') == ['one', 'two']
    assert response.headers.get_all('Set-Cookie') == ['session=abc; HttpOnly', 'theme=dark']
    assert response.getheader('apigw-requestid')


def test_base64_response_body_is_decoded(server):
    status, response, body = call(server, 'GET', '/binary', token=user_token())

    assert status == 200
    assert response.getheader('Content-Type') == 'application/octet-stream'
    assert body == bytes(range(256))


def test_failing_function_gives_a_500_in_the_contract_shape_without_details(server):
    status, _, raw = call(server, 'GET', '/boom', token=user_token())

    body = json.loads(raw)
    assert status == 500
    assert body['success'] is False
    assert body['error']['code'] == 'internal_error'
    assert set(body['error']) == {'code', 'message'}
    assert b'Traceback' not in raw
    assert b'hunter2' not in raw
    assert logged(server, 'GET /boom 500')
    assert any('hunter2' in line for line in server.log_lines)  # the developer sees it in the server log


def test_body_over_the_limit_is_refused_unread(server):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        conn.putrequest('POST', '/upload')
        conn.putheader('Authorization', f'Bearer {user_token()}')
        conn.putheader('Content-Length', str(MAX_BODY_BYTES + 1))
        conn.endheaders()
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()

    assert response.status == 413
    assert body['success'] is False
    assert body['error']['code'] == 'payload_too_large'
    assert logged(server, 'POST /upload 413')


def test_body_of_lambdas_payload_limit_reaches_the_function(server):
    body = b'x' * MAX_BODY_BYTES

    event = echo(server, 'POST', '/upload', token=user_token(), headers={'Content-Type': 'text/plain'}, body=body)

    assert MAX_BODY_BYTES == 6 * 1024 * 1024  # Lambda's synchronous payload, not API Gateway's 10 MB
    assert len(event['body']) == MAX_BODY_BYTES


def test_a_request_line_and_headers_within_api_gateways_quota_reach_the_function(server):
    event = echo(server, 'GET', '/items/1?q=' + 'x' * 6_000, token=user_token(), headers={'X-Long': 'y' * 1_500})

    assert len(event['rawQueryString']) == 6_002


@pytest.mark.parametrize(
    ('target', 'headers'),
    [('/items/1?q=' + 'x' * 10_300, {}), ('/items/1', {'X-Long': 'y' * 9_000, 'X-Longer': 'z' * 2_000})],
    ids=['long-query', 'long-headers'],
)
def test_a_request_line_and_headers_over_api_gateways_quota_are_refused_in_the_error_shape(server, target, headers):
    before = calls_so_far(server)

    status, body = call_json(server, 'GET', target, token=user_token(), headers=headers)

    assert status == 431
    assert body['error']['code'] == 'request_too_large'
    assert calls_so_far(server) == before


def test_chunked_body_over_the_limit_is_refused(server):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        chunks = iter([b'x' * (1024 * 1024)] * 7)
        conn.request(
            'POST', '/upload', body=chunks, headers={'Authorization': f'Bearer {user_token()}'}, encode_chunked=True
        )
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()

    assert response.status == 413
    assert body['error']['code'] == 'payload_too_large'


def test_request_log_has_method_path_status_and_no_secrets(server):
    token = user_token()
    since = len(server.log_lines)
    call(server, 'POST', '/upload?code=SECRET-CODE', token=token, body=b'card-secret-body')
    lines = logged(server, 'POST /upload 200', since=since)

    assert len(lines) == 1
    assert lines[0].endswith('EchoFunction')
    everything = '\n'.join(server.log_lines)
    assert token not in everything
    assert 'card-secret-body' not in everything
    assert 'SECRET-CODE' not in everything


# --- concurrency ---------------------------------------------------------------------------------------


def in_parallel(count: int, work: Callable[[int], T]) -> list[T]:
    """`work(i)` for each i on its own thread, started together; the results in order of i."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_an_execution_environment_handles_one_request_at_a_time_and_environments_run_side_by_side(server):
    token = user_token()
    first = len(calls_log(server))

    statuses = in_parallel(8, lambda _: call(server, 'GET', '/wait', token=token)[0])

    assert statuses == [200] * 8
    calls = calls_log(server)[first:]
    spans: dict[int, list[tuple[float, float]]] = {}
    entered: dict[int, float] = {}
    for what, pid, at in calls:
        if what == 'enter':
            assert pid not in entered, f'environment {pid} entered the handler twice at once'
            entered[pid] = at
        else:
            spans.setdefault(pid, []).append((entered.pop(pid), at))
    assert sum(len(s) for s in spans.values()) == 8
    assert len(spans) == server.workers == 2
    (a, b) = spans.values()
    assert any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b), 'the two environments never ran together'


def test_two_hundred_clients_connecting_at_once_are_all_answered(server):
    token = user_token()

    statuses = in_parallel(200, lambda _: call(server, 'GET', '/items/1', token=token)[0])

    assert statuses == [200] * 200


def test_a_keep_alive_client_is_told_to_reconnect_and_every_answer_is_its_own(server):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=30)
    try:
        answers = []
        for item in ('a', 'b', 'c'):
            conn.request('GET', f'/items/{item}', headers={'Authorization': f'Bearer {user_token()}'})
            response = conn.getresponse()
            answers.append((response.getheader('Connection'), json.loads(response.read())['event']['pathParameters']))
    finally:
        conn.close()

    assert answers == [('close', {'item_id': 'a'}), ('close', {'item_id': 'b'}), ('close', {'item_id': 'c'})]


def test_an_environment_that_dies_is_replaced_and_the_server_goes_on(server):
    token = user_token()
    ready = len(server.ready_pids)

    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        call(server, 'GET', '/crash', token=token)

    deadline = time.monotonic() + 30
    while len(server.ready_pids) == ready and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.ready_pids) == ready + 1  # a new environment, warmed
    assert in_parallel(4, lambda _: call(server, 'GET', '/items/1', token=token)[0]) == [200] * 4


# --- the schedule and the fake vendors hook ------------------------------------------------------------


def test_scheduled_function_runs_with_an_eventbridge_event_and_survives_a_failure(database_url, tmp_path):
    template = write_test_template(tmp_path)
    out = tmp_path / 'tick.json'

    with LocalServer(template, port=0, monitor_interval_s=0.05, vendors=False, workers=1):
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    record = json.loads(out.read_text())
    assert record['function'] == 'TickFunction'
    assert record['runs'] >= 2  # the first run raised; the schedule went on
    event = record['event']
    assert event['source'] == 'aws.events'
    assert event['detail-type'] == 'Scheduled Event'
    assert event['detail'] == {}
    assert event['resources'][0].startswith('arn:aws:events:')


def test_no_monitor_means_no_scheduled_runs(database_url, tmp_path):
    template = write_test_template(tmp_path)

    with LocalServer(template, port=0, monitor=False, monitor_interval_s=0.01, vendors=False, workers=1):
        time.sleep(0.3)

    assert not (tmp_path / 'tick.json').exists()


def test_fake_vendors_are_started_before_functions_and_stopped_after(database_url, tmp_path, monkeypatch):
    seen: dict[str, Any] = {}

    def start(home: Path) -> dict[str, str]:
        seen['home'] = home
        return {'GIFTCARD_TEST_VENDOR_URL': 'http://127.0.0.1:9/tango'}

    def stop() -> None:
        seen['stopped'] = True

    fake = types.ModuleType('giftcard_local.local_vendors')
    fake.start = start  # type: ignore[attr-defined]
    fake.stop = stop  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, 'giftcard_local.local_vendors', fake)
    monkeypatch.delenv('GIFTCARD_TEST_VENDOR_URL', raising=False)

    with LocalServer(write_test_template(tmp_path), port=0, monitor=False, workers=1):
        assert os.environ['GIFTCARD_TEST_VENDOR_URL'] == 'http://127.0.0.1:9/tango'
        assert 'stopped' not in seen

    assert seen == {'home': Path(os.environ['GIFTCARD_HOME']).resolve(), 'stopped': True}


def test_server_sets_the_local_environment_for_functions(server):
    assert os.environ['ENVIRONMENT'] == 'local'
    assert os.environ['POWERTOOLS_TRACE_DISABLED'] == 'true'
    assert os.environ['PYDANTIC_DISABLE_PLUGINS'] == '__all__'
    assert os.environ['POWERTOOLS_METRICS_NAMESPACE']
    assert os.environ['DATABASE_URL']
    assert os.environ['GIFTCARD_HOME']


# --- the project's template ----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def project_server(database_url: str) -> Iterator[LocalServer]:
    with LocalServer(
        PROJECT / 'template.yaml', port=0, workers=1, monitor=False, vendors=False, capture_log=True
    ) as running:
        yield running


def test_project_template_schedules_the_monitor_every_five_minutes():
    api = LocalApi(PROJECT / 'template.yaml')

    assert [(s.function.logical_id, s.interval_s) for s in api.schedules] == [('MonitorFunction', 300.0)]


def test_project_routes_reach_their_functions(project_server):
    routes = {e.route_key: e.function.logical_id for e in project_server.api.endpoints}  # type: ignore[union-attr]
    status, body = call_json(project_server, 'GET', '/agencies', token=user_token())
    call(project_server, 'POST', '/allocate-credit', token=user_token(), body=b'{}')
    lines = logged(project_server, 'GET /agencies ', 'POST /allocate-credit ')

    assert status != 401
    assert not body.get('error', {}).get('message', '').startswith(SERVER_NOT_FOUND)
    assert len(lines) == 2
    assert lines[0].endswith(routes['GET /agencies'])
    assert lines[1].endswith(routes['POST /allocate-credit'])


def test_project_public_route_needs_no_token(project_server):
    status, _, _ = call(project_server, 'GET', '/redeem')

    assert status != 401


def test_project_protected_route_needs_a_token(project_server):
    status, _, _ = call(project_server, 'GET', '/agencies')

    assert status == 401


def test_project_unknown_route_is_answered_by_the_server(project_server):
    status, body = call_json(project_server, 'GET', '/no-such-thing', token=user_token())

    assert status == 404
    assert body['error']['message'].startswith(SERVER_NOT_FOUND)
