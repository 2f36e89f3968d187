"""`giftcard serve`, `giftcard token` and `giftcard dev`: the local API, bearer tokens, and both at once."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from giftcard_local import cli, embedded, tokens

DEMO_MODULE = 'giftcard_local.demo'


def _add_commands(sub: cli.Commands) -> None:
    serve = sub.add_parser('serve', help='run the local API (template.yaml routes, JWT check, monitor)')
    _server_options(serve)
    serve.add_argument('--no-monitor', action='store_true', help='do not run the scheduled monitor')
    token = sub.add_parser('token', help='print a bearer token the local API accepts')
    token.add_argument('subject')
    token.add_argument(
        '--client', action='store_true', help="a registered integration's token (giftcard integration add SUBJECT)"
    )
    token.add_argument('--ttl', type=int, default=tokens.DEFAULT_TTL_S, metavar='SECONDS')
    dev = sub.add_parser('dev', help='migrate, load demo data, print tokens, and serve with the monitor')
    _server_options(dev)


def _server_options(p: argparse.ArgumentParser) -> None:
    root = embedded.project_root()
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=3000, help='0 picks a free port')
    p.add_argument(
        '--workers',
        type=_positive,
        default=None,
        metavar='N',
        help='execution environments, each handling one request at a time (default: the number of cores)',
    )
    p.add_argument('--template', type=Path, default=(root or Path.cwd()) / 'template.yaml')


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be at least 1')
    return value


cli.EXTENSIONS.append(_add_commands)


@cli.command('token')
def cmd_token(args: argparse.Namespace) -> int:
    try:
        print(tokens.issue_token(args.subject, client=args.client, ttl_s=args.ttl))
    except ValueError as exc:  # a client that is not registered
        print(f'giftcard token: {exc}', file=sys.stderr)
        return 2
    return 0


@cli.command('serve')
def cmd_serve(args: argparse.Namespace) -> int:
    if not args.template.is_file():
        print(f'giftcard serve: no {args.template}; run it from the project root or pass --template', file=sys.stderr)
        return 2
    rc = cli.cmd_migrate(args)
    if rc:
        return rc
    return _serve(args, monitor=not args.no_monitor)


@cli.command('dev')
def cmd_dev(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if not args.template.is_file():
        print(f'giftcard dev: no {args.template}; run it from the project root or pass --template', file=sys.stderr)
        return 2
    rc = cli.cmd_migrate(args)
    if rc:
        return rc
    demo = _load_demo()
    return _serve(args, monitor=True, banner=lambda url: _print_dev_banner(url, demo), started=started)


def _load_demo() -> dict[str, Any] | None:
    try:
        module = importlib.import_module(DEMO_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DEMO_MODULE:
            raise
        return None
    loaded: dict[str, Any] = module.load()
    return loaded


def _serve(args: argparse.Namespace, *, monitor: bool, banner: Any = None, started: float | None = None) -> int:
    from giftcard_local.server import LocalServer, ServerFailed

    server = LocalServer(args.template, host=args.host, port=args.port, workers=args.workers, monitor=monitor)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        server.start()
    except OSError as exc:
        print(f'giftcard: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}', file=sys.stderr)
        return 1
    except ServerFailed as exc:
        print(f'giftcard: {exc}', file=sys.stderr)
        return 1
    try:
        if banner is not None:
            banner(server.url)
        print(f'serving {server.url} with {server.workers} execution environment(s) (Ctrl-C stops)', flush=True)
        if started is not None:
            print(f'answering after {_first_answer(server.url) - started:.2f} s', flush=True)
        while not stop.wait(0.5):
            if not server.running():
                print('giftcard: the execution environments exited; stopping', file=sys.stderr)
                break
    finally:
        server.stop()
    print('stopped', flush=True)
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGHUP stop the server as Ctrl-C does; so does SIGINT, unless it was ignored when the
    process started (a background job of a non-interactive shell, nohup): then it stays ignored."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGHUP, handle)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handle)


def _first_answer(url: str) -> float:
    """When the server first answers a request (any status counts: it is answering)."""
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(f'{url}/openapi.json', timeout=10).close()  # noqa: S310 - our own http URL
    return time.perf_counter()


def _print_dev_banner(url: str, demo: dict[str, Any] | None) -> None:
    lines = ['', f'Gift card credit system running at {url}', '']
    role_tokens: dict[str, str] = dict((demo or {}).get('tokens') or {})
    if demo is None:
        role_tokens = {'dev-admin': tokens.issue_token('dev-admin')}
        lines += [
            'No demo data (giftcard_local.demo is not installed). Give the token below a role with:',
            '  giftcard grant dev-admin platform_admin',
            '',
        ]
    else:
        lines.append('Demo data:')
        for key, value in demo.items():
            if key != 'tokens':
                lines.append(f'  {key}: {_readable(value)}')
        lines.append('')
    lines.append('Bearer tokens (12 h):')
    for role, token in role_tokens.items():
        lines.append(f'  export {_env_name(role)}={token}')
    lines += ['', f'Console: {url}/console/  (API docs: {url}/docs)', 'Sign in with one click, as:']
    for role, token in role_tokens.items():
        if role != 'client_integration':  # integrations have no console: they only provision
            lines.append(f'  {role.replace("_", " ")}: {console_sign_in_link(url, token)}')
    first = _env_name(next(iter(role_tokens), 'TOKEN'))
    lines += [
        '',
        'Try:',
        f'  curl -H "Authorization: Bearer ${first}" {url}/agencies',
        f'  curl -H "Authorization: Bearer ${first}" {url}/dashboards/admin',
        f'  curl {url}/openapi.json',
        f'  open {url}/redeem  (the end customer page, no login)',
        '',
        'Cards sent to recipients (deliveryMethod email or sms) land in the local outbox (`giftcard outbox`):',
        f'  {_outbox_url()}',
        '',
    ]
    print('\n'.join(lines), flush=True)


def console_sign_in_link(url: str, token: str) -> str:
    """A link that signs the console in with `token`: it travels in the fragment, which the browser never sends."""
    return f'{url}/console/#token={token}'


def _outbox_url() -> str:
    from giftcard_local.outbox_cli import index_url

    return index_url()


def _env_name(role: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in role).upper() + '_TOKEN'


def _readable(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, indent=None)
