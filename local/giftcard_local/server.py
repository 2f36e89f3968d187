"""The local API: template.yaml's routes and handlers behind a threaded HTTP server, called as API Gateway does.

Each request is matched against the template's HTTP API routes, checked by the JWT authorizer (non-public
routes), turned into an HTTP API payload 2.0 event and passed to the function's `lambda_handler`; its answer
becomes the HTTP response. Functions with a Schedule event (the monitor) run on their rate in a background
thread with an EventBridge "Scheduled Event". Requests run concurrently, one thread each.

Where API Gateway answers by itself (no route, no valid token, payload too large, a failing function) it sends
`{"message": "..."}`; locally those answers use the contract's error shape instead, so that clients and tests
see one error shape.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from giftcard_local import embedded, tokens
from giftcard_local.template import Route, http_routes, load_template

log = logging.getLogger('giftcard_local.server')

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
ACCOUNT_ID = '123456789012'
REGION = 'us-east-1'
API_ID = 'local'
INTEGRATION_TIMEOUT_MS = 30_000  # HTTP API's maximum integration timeout
DEFAULT_SCHEDULE_S = 300.0
VENDORS_MODULE = 'giftcard_local.local_vendors'
DEFAULT_ROUTE = '$default'
DEFAULT_TIMEOUT_S = 3.0  # Lambda's default when neither the function nor Globals sets Timeout

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
    """Imports each handler module once, by file path, the first time one of its functions is needed."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[Path, str], Callable[..., Any]] = {}
        self._lock = threading.Lock()  # one import at a time: handler modules share the giftcards package

    def handler(self, function: Function) -> Callable[..., Any]:
        key = (function.module_file, function.handler.rsplit('.', 1)[1])
        found = self._handlers.get(key)
        if found is not None:
            return found
        with self._lock:
            if key not in self._handlers:
                module = self._import(function)
                handler = getattr(module, key[1], None)
                if not callable(handler):
                    raise RuntimeError(f'{function.handler} is not a function in {function.module_file}')
                self._handlers[key] = handler
            return self._handlers[key]

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


def _combine_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return _comma_joined((name.lower(), value) for name, value in headers)


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


def _request_time(now: datetime) -> str:
    return f'{now.day:02d}/{_MONTHS[now.month - 1]}/{now.year}:{now:%H:%M:%S} +0000'


def build_event(
    request: Request, endpoint: Endpoint, path_params: dict[str, str], claims: dict[str, Any] | None, request_id: str
) -> dict[str, Any]:
    """The HTTP API payload 2.0 event API Gateway sends for this request."""
    raw_path, raw_query = split_target(request.target)
    cookies: list[str] = []
    headers: list[tuple[str, str]] = []
    for name, value in request.headers:
        if name.lower() == 'cookie':
            cookies.extend(c.strip() for c in value.split(';') if c.strip())
        else:
            headers.append((name, value))
    event_headers = _combine_headers(headers)
    # API Gateway appends the caller's address to X-Forwarded-For; the source IP itself is never taken from it.
    forwarded = event_headers.get('x-forwarded-for')
    event_headers['x-forwarded-for'] = f'{forwarded}, {request.peer}' if forwarded else request.peer
    event_headers['x-forwarded-proto'] = 'http'
    now = datetime.now(UTC)
    event_headers['x-amzn-trace-id'] = f'Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}'
    host = urlsplit('//' + event_headers.get('host', '')).hostname or '127.0.0.1'
    user_agent = event_headers.get('user-agent', '')
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
            'userAgent': user_agent,
        },
        'requestId': request_id,
        'routeKey': endpoint.route_key,
        'stage': '$default',
        'time': _request_time(now),
        'timeEpoch': int(now.timestamp() * 1000),
    }
    if claims is not None:
        scope = claims.get('scope')
        request_context['authorizer'] = {
            'jwt': {
                'claims': {k: _claim_string(v) for k, v in claims.items()},
                'scopes': scope.split() if isinstance(scope, str) and scope else None,
            }
        }
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
        self.loader = HandlerLoader()

    def functions(self) -> list[Function]:
        seen: dict[Path, Function] = {}
        for fn in [e.function for e in self.endpoints] + [s.function for s in self.schedules]:
            seen.setdefault(fn.module_file, fn)
        return list(seen.values())

    def match(self, method: str, raw_path: str) -> tuple[Endpoint, dict[str, str]] | None:
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
        matched = self.match(request.method, raw_path)
        if matched is None:
            return error_response(404, 'route_not_found', f'No route in the template for {request.method} {raw_path}.')
        endpoint, path_params = matched
        claims = None
        if not endpoint.route.public:
            token = _bearer(_combine_headers(request.headers).get('authorization'))
            if token is None:
                return error_response(
                    401, 'unauthorized', 'A bearer token is required.', [('WWW-Authenticate', 'Bearer')]
                )
            try:
                claims = tokens.verify_token(token)
            except tokens.InvalidToken as exc:
                log.info('token refused for %s: %s', endpoint.route_key, exc)
                return error_response(
                    401,
                    'unauthorized',
                    'The bearer token is not valid.',
                    [('WWW-Authenticate', 'Bearer error="invalid_token"')],
                )
        request_id = str(uuid.uuid4())
        event = build_event(request, endpoint, path_params, claims, request_id)
        response = self.invoke(endpoint.function, event, request_id)
        response.headers.append(('apigw-requestid', request_id))
        return response

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


# --- the HTTP server -------------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = 'HTTP/1.1'
    server_version = 'giftcard-local'
    timeout = 120  # an idle keep-alive connection gives its thread back after this long
    sys_version = ''

    def _serve(self) -> None:
        started = time.perf_counter()
        path, _ = split_target(self.path)
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            response = error_response(
                413, 'payload_too_large', f'The request body is larger than {MAX_BODY_BYTES} bytes.'
            )
        except (ValueError, OSError):
            self.close_connection = True
            response = error_response(400, 'bad_request', 'The request body could not be read.')
        else:
            peer = self.client_address[0]
            response = self.server.api.handle(Request(self.command, self.path, list(self.headers.items()), body, peer))
        self._write(response)
        log.info(
            '%s %s %d %.1fms %s',
            self.command,
            path,
            response.status,
            (time.perf_counter() - started) * 1000,
            response.function or '-',
        )

    def _read_body(self) -> bytes:
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            return self._read_chunked()
        length = int(self.headers.get('Content-Length') or 0)
        if length < 0:
            raise ValueError('negative Content-Length')
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b''

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline(1024).split(b';', 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b''.join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(response.body)))
        if self.close_connection:
            self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed request lines and headers: the contract's shape rather than http.server's HTML page.
        self.close_connection = True
        response = error_response(
            code, 'bad_request' if code < 500 else 'http_error', message or self.responses.get(code, ('Error',))[0]
        )
        self._write(response)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request is written by _serve; http.server's own lines would repeat it.
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: LocalApi) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)


class LocalServer:
    """The local API server; `start()` returns once it accepts connections, `stop()` shuts everything down."""

    def __init__(
        self,
        template_path: Path,
        *,
        host: str = '127.0.0.1',
        port: int = 3000,
        monitor: bool = True,
        monitor_interval_s: float | None = None,
        vendors: bool = True,
        warm: bool = True,
    ) -> None:
        self.template_path = Path(template_path)
        self.host, self.port = host, port
        self.monitor = monitor
        self.monitor_interval_s = monitor_interval_s
        self.vendors = vendors
        self.warm = warm
        self.api: LocalApi | None = None
        self._http: _HttpServer | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._vendors_module: ModuleType | None = None

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    def start(self) -> LocalServer:
        prepare_environment()
        if self.vendors:
            self._start_vendors()
        self.api = LocalApi(self.template_path)
        self._http = _HttpServer((self.host, self.port), self.api)
        self.port = self._http.server_address[1]
        self._spawn('giftcard-http', self._http.serve_forever)
        if self.warm:
            self._spawn('giftcard-warm', self._warm)
        if self.monitor:
            for schedule in self.api.schedules:
                self._spawn(f'giftcard-schedule-{schedule.function.logical_id}', self._run_schedule, schedule)
        log.info('serving %d routes of %s on %s', len(self.api.endpoints), self.template_path, self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._vendors_module is not None and hasattr(self._vendors_module, 'stop'):
            self._vendors_module.stop()
            self._vendors_module = None

    def wait(self) -> None:
        """Block until `stop()` (or Ctrl-C in the calling thread)."""
        while not self._stopping.wait(0.5):
            pass

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

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

    def _warm(self) -> None:
        # Import every handler in the background so that the first request to each does not pay for it.
        assert self.api is not None
        for function in self.api.functions():
            if self._stopping.is_set():
                return
            try:
                self.api.loader.handler(function)
            except Exception:
                log.exception('cannot load %s for %s', function.handler, function.logical_id)

    def _run_schedule(self, schedule: Schedule) -> None:
        assert self.api is not None
        interval = self.monitor_interval_s if self.monitor_interval_s is not None else schedule.interval_s
        while not self._stopping.wait(interval):
            self.api.run_schedule(schedule)
