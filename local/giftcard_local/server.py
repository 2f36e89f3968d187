"""The local API: template.yaml's routes and handlers, called as API Gateway calls Lambda, each request in an
execution environment that handles one event at a time.

- `LocalApi` matches a request against the template's HTTP API routes, checks the JWT authorizer (non-public
  routes), turns the request into an HTTP API payload 2.0 event and passes it to the function's
  `lambda_handler`; the answer becomes the HTTP response.
- Execution environments are worker processes (`giftcard_local.runtime`: gunicorn's sync workers). Each imports
  the handler modules once, then handles one request at a time, as a warm Lambda does: Powertools keeps a
  request's state (the resolver's current event, Logger keys, Metrics) in module globals, so two requests must
  never share a process at the same time. More workers use more cores.
- `LocalServer` supervises: it owns the listening socket, the fake vendors and the schedule (functions with a
  Schedule event run in this process on their rate, one run at a time, with an EventBridge "Scheduled Event").

Where API Gateway answers by itself (no route, no valid token, a token without the route's scope, payload too
large, a failing function) it sends `{"message": "..."}`; locally those answers use the contract's error shape
instead, so that clients and tests see one error shape.
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.util
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from giftcard_local import console, embedded, tokens
from giftcard_local.template import Route, http_routes, load_template

log = logging.getLogger('giftcard_local.server')

# Lambda's synchronous invocation payload limit (API Gateway's own is 10 MB): what passes here passes deployed.
MAX_BODY_BYTES = 6 * 1024 * 1024
# API Gateway's HTTP API quota on the request line and header values together.
MAX_REQUEST_HEAD_BYTES = 10_240
BACKLOG = 1024  # connections the kernel queues while every environment is busy
GRACEFUL_TIMEOUT_S = 10  # what a request in progress gets to finish when the server stops
ACCOUNT_ID = '123456789012'
REGION = 'us-east-1'
API_ID = 'local'
INTEGRATION_TIMEOUT_MS = 30_000  # HTTP API's maximum integration timeout
DEFAULT_SCHEDULE_S = 300.0
VENDORS_MODULE = 'giftcard_local.local_vendors'
DEFAULT_ROUTE = '$default'
DEFAULT_TIMEOUT_S = 3.0  # Lambda's default when neither the function nor Globals sets Timeout
AUTHORIZERS_KEPT = 4096  # tokens whose authorizer context an environment keeps; forgotten wholesale when full

_MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')
_TEXT_TYPES = {
    'application/json',
    'application/xml',
    'application/javascript',
    'application/yaml',
    'application/graphql',
}
_HOP_BY_HOP = {'connection', 'content-length', 'transfer-encoding', 'keep-alive'}
_RATE = re.compile(r'^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$')
_UNIT_S = {'minute': 60, 'hour': 3600, 'day': 86400}


# --- configuration ---------------------------------------------------------------------------------------


def prepare_environment() -> None:
    """What the functions find in their environment locally; set before any handler module is imported."""
    from giftcards.config import get_settings

    home = embedded.home()
    os.environ['ENVIRONMENT'] = 'local'
    os.environ['POWERTOOLS_TRACE_DISABLED'] = 'true'  # there is no X-Ray daemon on a developer machine
    os.environ['PYDANTIC_DISABLE_PLUGINS'] = '__all__'  # as template.yaml sets it: no pydantic plugin is installed
    os.environ.setdefault('POWERTOOLS_METRICS_NAMESPACE', 'GiftCards')
    os.environ.setdefault('POWERTOOLS_SERVICE_NAME', 'giftcards')
    os.environ.setdefault('AWS_DEFAULT_REGION', REGION)
    os.environ['GIFTCARD_HOME'] = str(home)
    os.environ['DATABASE_URL'] = embedded.database_url()
    get_settings.cache_clear()


@dataclass(frozen=True)
class Function:
    """A Lambda function of the template: where its code is and which callable handles events."""

    logical_id: str
    code_dir: Path
    handler: str  # 'admin_app.lambda_handler'
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def module_file(self) -> Path:
        module, _ = self.handler.rsplit('.', 1)
        return self.code_dir.joinpath(*module.split('.')).with_suffix('.py')


@dataclass(frozen=True)
class Endpoint:
    route: Route
    function: Function
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    # Literal segments beat parameters, parameters beat a greedy tail; an exact method beats ANY.
    rank: tuple[int, ...]

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.route.path == DEFAULT_ROUTE else f'{self.route.method} {self.route.path}'


@dataclass(frozen=True)
class Schedule:
    function: Function
    rule_name: str
    interval_s: float


def _timeout_s(template: dict[str, Any], logical_id: str) -> float:
    defaults = (template.get('Globals') or {}).get('Function') or {}
    props = ((template.get('Resources') or {}).get(logical_id) or {}).get('Properties') or {}
    timeout = props.get('Timeout', defaults.get('Timeout', DEFAULT_TIMEOUT_S))
    return float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT_S


def _endpoint(route: Route, template: dict[str, Any], root: Path) -> Endpoint:
    function = Function(
        route.function_logical_id,
        (root / route.code_uri).resolve(),
        route.handler,
        _timeout_s(template, route.function_logical_id),
    )
    if route.path == DEFAULT_ROUTE:
        # The catch-all route: any method, any path, and only when no other route matches.
        return Endpoint(route, function, re.compile('.*'), (), ())
    regex, params, rank = [], [], []
    for segment in route.path.strip('/').split('/'):
        match = re.fullmatch(r'\{([^}+]+)(\+?)\}', segment)
        if match and match.group(2):
            regex.append('(.+)')
            rank.append(0)
        elif match:
            regex.append('([^/]+)')
            rank.append(1)
        else:
            regex.append(re.escape(segment))
            rank.append(2)
        if match:
            params.append(match.group(1))
    rank.append(0 if route.method.upper() == 'ANY' else 1)
    return Endpoint(route, function, re.compile('/' + '/'.join(regex)), tuple(params), tuple(rank))


def _schedule_interval(expression: str) -> float:
    match = _RATE.match(expression.strip())
    if not match:
        log.warning('schedule %r is not a rate(); running it every %.0f s', expression, DEFAULT_SCHEDULE_S)
        return DEFAULT_SCHEDULE_S
    return float(int(match.group(1)) * _UNIT_S[match.group(2).rstrip('s')])


def scheduled_functions(template: dict[str, Any], root: Path) -> list[Schedule]:
    """The functions with an enabled Schedule (or ScheduleV2) event, and how often each runs."""
    defaults = (template.get('Globals') or {}).get('Function') or {}
    schedules = []
    for logical_id, resource in (template.get('Resources') or {}).items():
        if not isinstance(resource, dict) or resource.get('Type') != 'AWS::Serverless::Function':
            continue
        props = resource.get('Properties') or {}
        code_uri, handler = props.get('CodeUri', defaults.get('CodeUri')), props.get('Handler', defaults.get('Handler'))
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            continue
        for event_name, event in (props.get('Events') or {}).items():
            kind, event_props = event.get('Type'), event.get('Properties') or {}
            if kind not in ('Schedule', 'ScheduleV2'):
                continue
            if event_props.get('Enabled') is False or event_props.get('State') == 'DISABLED':
                continue
            expression = event_props.get('Schedule') or event_props.get('ScheduleExpression') or ''
            function = Function(logical_id, (root / code_uri).resolve(), handler, _timeout_s(template, logical_id))
            schedules.append(Schedule(function, f'{logical_id}-{event_name}', _schedule_interval(str(expression))))
    return schedules


# --- Lambda plumbing -------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = '$LATEST'
    memory_limit_in_mb: int = 512
    timeout_ms: int = INTEGRATION_TIMEOUT_MS
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f'arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}'

    @property
    def log_group_name(self) -> str:
        return f'/aws/lambda/{self.function_name}'

    @property
    def log_stream_name(self) -> str:
        return 'local'

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


class HandlerLoader:
    """Imports each handler module once, by file path, the first time one of its functions is needed. One
    thread of a process invokes handlers (an execution environment, or the supervisor's schedule)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[Path, str], Callable[..., Any]] = {}
        self._by_function: dict[Function, Callable[..., Any]] = {}  # the same, without a path computed per call

    def handler(self, function: Function) -> Callable[..., Any]:
        found = self._by_function.get(function)
        if found is None:
            found = self._by_function[function] = self._handler(function)
        return found

    def _handler(self, function: Function) -> Callable[..., Any]:
        key = (function.module_file, function.handler.rsplit('.', 1)[1])
        found = self._handlers.get(key)
        if found is None:
            module = self._import(function)
            found = getattr(module, key[1], None)
            if not callable(found):
                raise RuntimeError(f'{function.handler} is not a function in {function.module_file}')
            self._handlers[key] = found
        return found

    @staticmethod
    def _import(function: Function) -> ModuleType:
        path = function.module_file
        name = function.handler.rsplit('.', 1)[0]
        existing = sys.modules.get(name)
        if existing is not None and Path(getattr(existing, '__file__', '') or '').resolve() == path:
            return existing
        if existing is not None:
            name = f'_giftcard_local_{function.logical_id}_{name.replace(".", "_")}'
        # Lambda runs a function with its code directory on sys.path, so a handler may import its neighbours.
        if str(function.code_dir) not in sys.path:
            sys.path.append(str(function.code_dir))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f'cannot load {path}')
        module = importlib.util.module_from_spec(spec)
        started = time.perf_counter()
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        log.info(
            'imported %s for %s in %.0f ms', path.name, function.logical_id, (time.perf_counter() - started) * 1000
        )
        return module


# --- requests and responses ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request line's path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes
    peer: str


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    function: str | None = None  # the function that answered; None when the server answered itself


def error_response(status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps({'success': False, 'error': {'code': code, 'message': message}}).encode()
    return Response(status, [('Content-Type', 'application/json'), *headers], body)


def split_target(target: str) -> tuple[str, str]:
    """The raw path and raw query string of a request target (origin form, or absolute form from a proxy)."""
    if not target.startswith('/'):
        parts = urlsplit(target)
        target = parts.path + ('?' + parts.query if parts.query else '')
    path, _, query = target.partition('?')
    return path or '/', query


def _is_text(content_type: str | None) -> bool:
    mime = (content_type or '').split(';', 1)[0].strip().lower()
    return mime.startswith('text/') or mime in _TEXT_TYPES or mime.endswith('+json') or mime.endswith('+xml')


def _comma_joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    # Payload 2.0 has no multi-value maps: API Gateway joins a repeated header or query parameter with commas.
    combined: dict[str, str] = {}
    for name, value in pairs:
        combined[name] = f'{combined[name]},{value}' if name in combined else value
    return combined


def _header(headers: Iterable[tuple[str, str]], wanted: str) -> str | None:
    """One header's value (`wanted` in lower case), repeats joined with commas as in the event."""
    values = [value for name, value in headers if name.lower() == wanted]
    return ','.join(values) if values else None


def _claim_string(value: Any) -> str:
    # API Gateway hands every claim to the function as a string; arrays become "[a b]".
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return '[' + ' '.join(_claim_string(v) for v in value) + ']'
    if isinstance(value, dict):
        return json.dumps(value, separators=(',', ':'))
    return str(value)


@dataclass(frozen=True)
class JwtAuthorizer:
    """What the JWT authorizer puts in the event for a verified token: every claim as a string, and the scopes."""

    claims: dict[str, str]
    scopes: tuple[str, ...] | None

    @classmethod
    def of(cls, claims: dict[str, Any]) -> JwtAuthorizer:
        scope = claims.get('scope')
        scopes = tuple(scope.split()) if isinstance(scope, str) and scope else None
        return cls({k: _claim_string(v) for k, v in claims.items()}, scopes)

    def context(self) -> dict[str, Any]:
        """A fresh copy for one event: a function that changes its event changes nothing another request sees."""
        return {'jwt': {'claims': dict(self.claims), 'scopes': list(self.scopes) if self.scopes is not None else None}}


def _request_time(epoch_s: float) -> str:
    now = time.gmtime(epoch_s)
    return (
        f'{now.tm_mday:02d}/{_MONTHS[now.tm_mon - 1]}/{now.tm_year}:'
        f'{now.tm_hour:02d}:{now.tm_min:02d}:{now.tm_sec:02d} +0000'
    )


@functools.lru_cache(maxsize=256)
def _domain_name(host: str) -> str:
    """The host name of a Host header (`name`, `name:port`, `[v6]:port`); the loopback address for none or one
    that does not parse."""
    try:
        return urlsplit('//' + host).hostname or '127.0.0.1'
    except ValueError:
        return '127.0.0.1'


def build_event(
    request: Request,
    endpoint: Endpoint,
    path_params: dict[str, str],
    authorizer: JwtAuthorizer | None,
    request_id: str,
) -> dict[str, Any]:
    """The HTTP API payload 2.0 event API Gateway sends for this request."""
    raw_path, raw_query = split_target(request.target)
    cookies: list[str] = []
    event_headers: dict[str, str] = {}
    for name, value in request.headers:
        name = name.lower()
        if name == 'cookie':
            # Repeated Cookie headers arrive joined with commas, which no cookie value may hold (RFC 6265).
            cookies.extend(c.strip() for c in re.split('[;,]', value) if c.strip())
        elif name in event_headers:
            event_headers[name] = f'{event_headers[name]},{value}'
        else:
            event_headers[name] = value
    # API Gateway appends the caller's address to X-Forwarded-For; the source IP itself is never taken from it.
    forwarded = event_headers.get('x-forwarded-for')
    event_headers['x-forwarded-for'] = f'{forwarded}, {request.peer}' if forwarded else request.peer
    event_headers['x-forwarded-proto'] = 'http'
    now = time.time()
    event_headers['x-amzn-trace-id'] = f'Root=1-{int(now):08x}-{os.urandom(12).hex()}'
    host = _domain_name(event_headers.get('host', ''))
    request_context: dict[str, Any] = {
        'accountId': ACCOUNT_ID,
        'apiId': API_ID,
        'domainName': host,
        'domainPrefix': host.split('.', 1)[0],
        'http': {
            'method': request.method,
            'path': raw_path,
            'protocol': 'HTTP/1.1',
            'sourceIp': request.peer,
            'userAgent': event_headers.get('user-agent', ''),
        },
        'requestId': request_id,
        'routeKey': endpoint.route_key,
        'stage': '$default',
        'time': _request_time(now),
        'timeEpoch': int(now * 1000),
    }
    if authorizer is not None:
        request_context['authorizer'] = authorizer.context()
    event: dict[str, Any] = {
        'version': '2.0',
        'routeKey': endpoint.route_key,
        'rawPath': raw_path,
        'rawQueryString': raw_query,
    }
    if cookies:
        event['cookies'] = cookies
    event['headers'] = event_headers
    if raw_query:
        event['queryStringParameters'] = _comma_joined(parse_qsl(raw_query, keep_blank_values=True))
    event['requestContext'] = request_context
    if path_params:
        event['pathParameters'] = path_params
    event['isBase64Encoded'] = False
    if request.body:
        text = None
        if _is_text(event_headers.get('content-type')):
            try:
                text = request.body.decode('utf-8')
            except UnicodeDecodeError:
                text = None
        if text is None:
            event['body'] = base64.b64encode(request.body).decode('ascii')
            event['isBase64Encoded'] = True
        else:
            event['body'] = text
    return event


def lambda_response(result: Any) -> Response:
    """The HTTP response API Gateway makes of a function's payload 2.0 answer."""
    if not (isinstance(result, dict) and 'statusCode' in result):
        # Without a statusCode, API Gateway treats the answer as a JSON body of a 200.
        return Response(200, [('Content-Type', 'application/json')], json.dumps(result).encode())
    status = int(result['statusCode'])
    if not 100 <= status <= 599:
        raise ValueError(f'statusCode {status} is not an HTTP status')
    headers = [(str(k), str(v)) for k, v in (result.get('headers') or {}).items()]
    for name, values in (result.get('multiValueHeaders') or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(('Set-Cookie', str(cookie)) for cookie in result.get('cookies') or [])
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    body = result.get('body')
    if body is None:
        payload = b''
    elif result.get('isBase64Encoded'):
        payload = base64.b64decode(body)
    else:
        payload = str(body).encode('utf-8')
    return Response(status, headers, payload)


def _bearer(authorization: str | None) -> str | None:
    # API Gateway accepts the token with or without the "Bearer " prefix.
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(' ')
    return rest.strip() if scheme.lower() == 'bearer' else authorization.strip()


# --- the API ---------------------------------------------------------------------------------------------


class LocalApi:
    """Routing, authorization and invoking functions; knows nothing about sockets."""

    def __init__(self, template_path: Path) -> None:
        self.template_path = template_path.resolve()
        template = load_template(self.template_path)
        root = self.template_path.parent
        self.endpoints = [_endpoint(route, template, root) for route in http_routes(template)]
        self.schedules = scheduled_functions(template, root)
        self.console_dir = root / 'web' / 'console'  # the web console's static files, at /console
        self.loader = HandlerLoader()
        # Routes without parameters by method and path: such a route, when it matches, is the best match there is.
        self._literal: dict[tuple[str, str], Endpoint] = {}
        for endpoint in self.endpoints:
            method = endpoint.route.method.upper()
            if not endpoint.params and method != 'ANY' and endpoint.route.path != DEFAULT_ROUTE:
                self._literal.setdefault((method, '/' + endpoint.route.path.strip('/')), endpoint)
        # The authorizer context of each token seen, built once: a token's claims never change.
        self._authorizers: dict[str, JwtAuthorizer] = {}

    def functions(self) -> list[Function]:
        seen: dict[Path, Function] = {}
        for fn in [e.function for e in self.endpoints] + [s.function for s in self.schedules]:
            seen.setdefault(fn.module_file, fn)
        return list(seen.values())

    def routed_functions(self) -> list[Function]:
        seen: dict[Path, Function] = {}
        for endpoint in self.endpoints:
            seen.setdefault(endpoint.function.module_file, endpoint.function)
        return list(seen.values())

    def warm(self) -> None:
        """Import every routed function's handler now, so that no request pays for it; a module that fails to
        import is logged, and its routes answer 500 until it imports."""
        for function in self.routed_functions():
            try:
                self.loader.handler(function)
            except Exception:
                log.exception('cannot load %s for %s', function.handler, function.logical_id)

    def longest_timeout_s(self) -> float:
        return max((e.function.timeout_s for e in self.endpoints), default=DEFAULT_TIMEOUT_S)

    def match(self, method: str, raw_path: str) -> tuple[Endpoint, dict[str, str]] | None:
        literal = self._literal.get((method, raw_path))
        if literal is not None:
            return literal, {}
        best: tuple[Endpoint, dict[str, str]] | None = None
        for endpoint in self.endpoints:
            if endpoint.route.method.upper() not in (method, 'ANY') and endpoint.route.path != DEFAULT_ROUTE:
                continue
            found = endpoint.pattern.fullmatch(raw_path)
            if found and (best is None or endpoint.rank > best[0].rank):
                best = (
                    endpoint,
                    {name: unquote(value) for name, value in zip(endpoint.params, found.groups(), strict=True)},
                )
        return best

    def handle(self, request: Request) -> Response:
        raw_path, _ = split_target(request.target)
        if console.is_console_path(raw_path):
            static = console.answer(self.console_dir, request.method, raw_path)
            return Response(static.status, static.headers, static.body)
        matched = self.match(request.method, raw_path)
        if matched is None:
            return error_response(404, 'route_not_found', f'No route in the template for {request.method} {raw_path}.')
        endpoint, path_params = matched
        authorizer = None
        if not endpoint.route.public:
            token = _bearer(_header(request.headers, 'authorization'))
            if token is None:
                return error_response(
                    401, 'unauthorized', 'A bearer token is required.', [('WWW-Authenticate', 'Bearer')]
                )
            try:
                authorizer = self._authorizer(token)
            except tokens.InvalidToken as exc:
                log.info('token refused for %s: %s', endpoint.route_key, exc)
                return error_response(
                    401,
                    'unauthorized',
                    'The bearer token is not valid.',
                    [('WWW-Authenticate', 'Bearer error="invalid_token"')],
                )
            if not tokens.has_scope(authorizer.claims, endpoint.route.scopes):
                log.info('token without a scope of %s refused', endpoint.route_key)
                return error_response(
                    403,
                    'insufficient_scope',
                    'The bearer token does not carry a scope this route requires.',
                    [('WWW-Authenticate', 'Bearer error="insufficient_scope"')],
                )
        request_id = str(uuid.uuid4())
        event = build_event(request, endpoint, path_params, authorizer, request_id)
        response = self.invoke(endpoint.function, event, request_id)
        response.headers.append(('apigw-requestid', request_id))
        return response

    def _authorizer(self, token: str) -> JwtAuthorizer:
        """The authorizer context of a token the JWT authorizer accepts now (`InvalidToken` otherwise)."""
        claims = tokens.verify_token(token)  # every time: a token that was good may have expired since
        found = self._authorizers.get(token)
        if found is None:
            if len(self._authorizers) >= AUTHORIZERS_KEPT:
                self._authorizers.clear()
            found = self._authorizers[token] = JwtAuthorizer.of(claims)
        return found

    def invoke(self, function: Function, event: dict[str, Any], request_id: str) -> Response:
        try:
            handler = self.loader.handler(function)
            # The function's own timeout, capped by the HTTP API's integration timeout.
            timeout_ms = min(int(function.timeout_s * 1000), INTEGRATION_TIMEOUT_MS)
            context = LambdaContext(function.logical_id, aws_request_id=request_id, timeout_ms=timeout_ms)
            result = handler(event, context)
            response = lambda_response(result)
        except Exception:
            log.exception('%s failed', function.logical_id)
            response = error_response(500, 'internal_error', 'An internal error occurred.')
        response.function = function.logical_id
        return response

    def run_schedule(self, schedule: Schedule) -> None:
        """One EventBridge invocation of a scheduled function; a failure is logged, never raised."""
        event = {
            'version': '0',
            'id': str(uuid.uuid4()),
            'detail-type': 'Scheduled Event',
            'source': 'aws.events',
            'account': ACCOUNT_ID,
            'time': datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ'),
            'region': REGION,
            'resources': [f'arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{schedule.rule_name}'],
            'detail': {},
        }
        started = time.perf_counter()
        try:
            handler = self.loader.handler(schedule.function)
            timeout_ms = int(schedule.function.timeout_s * 1000)
            handler(event, LambdaContext(schedule.function.logical_id, timeout_ms=timeout_ms))
        except Exception:
            log.exception('scheduled run of %s failed', schedule.function.logical_id)
            return
        log.info(
            'scheduled run of %s took %.0f ms', schedule.function.logical_id, (time.perf_counter() - started) * 1000
        )


# --- the WSGI adapter: what each execution environment runs -----------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _HeadTooLarge(Exception):
    pass


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, refused unread when its declared length is over the limit. A chunked body (no
    Content-Length) is read up to one byte past the limit."""
    stream = environ['wsgi.input']
    declared = environ.get('CONTENT_LENGTH')
    if declared:
        length = int(declared)
        if length < 0:
            raise ValueError('negative Content-Length')
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge
        return bytes(stream.read(length)) if length else b''
    body = bytes(stream.read(MAX_BODY_BYTES + 1))
    if len(body) > MAX_BODY_BYTES:
        raise _BodyTooLarge
    return body


def _wsgi_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    # The server has already joined a repeated header's values with commas, as API Gateway does.
    headers = []
    for key, value in environ.items():
        if key.startswith('HTTP_'):
            headers.append((key[5:].replace('_', '-').lower(), value))
        elif key in ('CONTENT_TYPE', 'CONTENT_LENGTH') and value:
            headers.append((key.replace('_', '-').lower(), value))
    return headers


def _target(environ: dict[str, Any]) -> str:
    """The request line's target as sent (gunicorn keeps it in RAW_URI), else rebuilt from the decoded path."""
    raw = environ.get('RAW_URI')
    if raw:
        return str(raw)
    query = environ.get('QUERY_STRING')
    return quote(environ.get('PATH_INFO') or '/') + (f'?{query}' if query else '')


@functools.lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    try:
        return f'{status} {HTTPStatus(status).phrase}'
    except ValueError:
        return f'{status} Status {status}'


def wsgi_app(api: LocalApi) -> Callable[[dict[str, Any], Callable[..., Any]], list[bytes]]:
    """The WSGI application of one execution environment: each request read whole, then handled by `api`."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        method = environ['REQUEST_METHOD']
        target = _target(environ)
        headers = _wsgi_headers(environ)
        try:
            if len(method) + len(target) + sum(len(n) + len(v) for n, v in headers) > MAX_REQUEST_HEAD_BYTES:
                raise _HeadTooLarge
            body = _read_body(environ)
        except _HeadTooLarge:
            response = error_response(
                431,
                'request_too_large',
                f'The request line and headers together are larger than {MAX_REQUEST_HEAD_BYTES} bytes.',
            )
        except _BodyTooLarge:
            response = error_response(
                413, 'payload_too_large', f'The request body is larger than {MAX_BODY_BYTES} bytes.'
            )
        except Exception:  # a broken chunked encoding, a client that went away mid-body
            response = error_response(400, 'bad_request', 'The request body could not be read.')
        else:
            request = Request(method, target, headers, body, environ.get('REMOTE_ADDR') or '')
            response = api.handle(request)
        start_response(_status_line(response.status), [*response.headers, ('Content-Length', str(len(response.body)))])
        log.info(
            '%s %s %d %.1fms %s',
            method,
            split_target(target)[0],
            response.status,
            (time.perf_counter() - started) * 1000,
            response.function or '-',
        )
        return [] if method == 'HEAD' else [response.body]

    return application


# --- the supervisor --------------------------------------------------------------------------------------


def default_workers() -> int:
    return os.cpu_count() or 1


class ServerFailed(RuntimeError):
    """The execution environments could not be started."""


class LocalServer:
    """The local API server; `start()` returns once every execution environment is warm and the listening socket
    accepts connections, `stop()` shuts everything down.

    This process owns the listening socket (so the port is known before any worker runs, and connections queue
    in its backlog while workers start), the fake vendors and the schedule; the execution environments are
    gunicorn's sync workers under an arbiter started as a child process (`giftcard_local.runtime`).
    """

    def __init__(
        self,
        template_path: Path,
        *,
        host: str = '127.0.0.1',
        port: int = 3000,
        workers: int | None = None,
        monitor: bool = True,
        monitor_interval_s: float | None = None,
        vendors: bool = True,
        capture_log: bool = False,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.host, self.port = host, port
        self.workers = workers or default_workers()
        self.monitor = monitor
        self.monitor_interval_s = monitor_interval_s
        self.vendors = vendors
        self.capture_log = capture_log
        self.start_timeout_s = start_timeout_s
        self.api: LocalApi | None = None
        self.log_lines: list[str] = []  # the environments' log, when `capture_log`
        self.ready_pids: list[int] = []  # each environment that finished warming, in order (restarts included)
        self._socket: socket.socket | None = None
        self._runtime: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._vendors_module: ModuleType | None = None

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    @property
    def runtime_pid(self) -> int | None:
        return self._runtime.pid if self._runtime is not None else None

    def start(self) -> LocalServer:
        prepare_environment()
        try:
            if self.vendors:
                self._start_vendors()
            self.api = LocalApi(self.template_path)
            self._socket = _listen(self.host, self.port)
            self.port = self._socket.getsockname()[1]
            os.environ.setdefault('REDEEM_URL', f'{self.url}/redeem')  # where delivered messages' links lead
            self._start_runtime()
            if self.monitor:
                for schedule in self.api.schedules:
                    self._spawn(f'giftcard-schedule-{schedule.function.logical_id}', self._run_schedule, schedule)
        except BaseException:
            self.stop()
            raise
        log.info(
            'serving %d routes of %s on %s with %d execution environments',
            len(self.api.endpoints),
            self.template_path,
            self.url,
            self.workers,
        )
        return self

    def stop(self) -> None:
        self._stopping.set()
        runtime, self._runtime = self._runtime, None
        if runtime is not None and runtime.poll() is None:
            runtime.send_signal(signal.SIGTERM)  # graceful: requests in progress finish first
            try:
                runtime.wait(timeout=GRACEFUL_TIMEOUT_S + 5)
            except subprocess.TimeoutExpired:
                runtime.kill()
                runtime.wait()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._vendors_module is not None and hasattr(self._vendors_module, 'stop'):
            self._vendors_module.stop()
            self._vendors_module = None

    def running(self) -> bool:
        """Whether the execution environments' arbiter is running."""
        return self._runtime is not None and self._runtime.poll() is None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_runtime(self) -> None:
        assert self._socket is not None and self.api is not None
        ready_read, ready_write = os.pipe()
        listen_fd = self._socket.fileno()
        command = [
            sys.executable,
            '-m',
            'giftcard_local.runtime',
            '--template',
            str(self.template_path),
            '--listen-fd',
            str(listen_fd),
            '--ready-fd',
            str(ready_write),
            '--workers',
            str(self.workers),
            '--timeout',
            str(int(self.api.longest_timeout_s()) + 10),
            '--graceful-timeout',
            str(GRACEFUL_TIMEOUT_S),
            '--parent-pid',
            str(os.getpid()),
        ]
        try:
            self._runtime = subprocess.Popen(
                command,
                pass_fds=(listen_fd, ready_write),
                start_new_session=True,  # Ctrl-C reaches this process, which then stops the environments in order
                stderr=subprocess.PIPE if self.capture_log else None,
            )
        finally:
            os.close(ready_write)
        self._spawn('giftcard-ready', self._read_ready, os.fdopen(ready_read, 'rb'))
        if self.capture_log:
            assert self._runtime.stderr is not None
            self._spawn('giftcard-log', self._read_log, self._runtime.stderr)
        deadline = time.monotonic() + self.start_timeout_s
        with self._ready:
            while len(self.ready_pids) < self.workers:
                if self._runtime.poll() is not None:
                    raise ServerFailed(f'the execution environments exited with status {self._runtime.returncode}')
                if time.monotonic() > deadline:
                    raise ServerFailed(f'the execution environments were not warm within {self.start_timeout_s} s')
                self._ready.wait(0.1)

    def _read_ready(self, pipe: Any) -> None:
        with pipe:
            for line in pipe:
                with self._ready:
                    self.ready_pids.append(int(line))
                    self._ready.notify_all()

    def _read_log(self, stream: Any) -> None:
        with stream:
            for line in stream:
                self.log_lines.append(line.decode('utf-8', 'replace').rstrip('\n'))

    def _start_vendors(self) -> None:
        try:
            module = importlib.import_module(VENDORS_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != VENDORS_MODULE:
                raise
            return
        env = module.start(embedded.home())
        os.environ.update(env or {})
        self._vendors_module = module
        from giftcards.config import get_settings

        get_settings.cache_clear()

    def _run_schedule(self, schedule: Schedule) -> None:
        assert self.api is not None
        interval = self.monitor_interval_s if self.monitor_interval_s is not None else schedule.interval_s
        while not self._stopping.wait(interval):
            self.api.run_schedule(schedule)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
    # Headers and body may leave in two writes; without this the second waits for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.set_inheritable(True)
    return sock
