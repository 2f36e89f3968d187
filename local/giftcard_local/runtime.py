"""The local API's execution environments: gunicorn's sync workers, started by `LocalServer` as a child process.

    python -m giftcard_local.runtime --template T --listen-fd N --ready-fd M --workers W ...

gunicorn's arbiter takes the supervisor's listening socket (`fd://N`), builds the routes from the template and imports
every handler once (`preload_app`), then forks W workers: each starts warm, holding its own copy of every module, as
a Lambda environment restored from a snapshot does, and W environments start in the time of one (importing in each
worker took W times the CPU, over a minute for 32 environments on two busy cores). Each worker writes its pid to the
ready pipe and then serves one request at a time: a sync worker accepts a connection only when it is idle, answers
one request with `Connection: close`, and goes back to accepting. So each request meets an environment no other
request is using, and the kernel's backlog holds whoever waits. Nothing a request leaves behind reaches another
environment: a forked worker shares no state with its siblings, and the imports open no connection.

Why gunicorn's sync workers: a prefork server whose worker handles exactly one request at a time is Lambda's
execution model; gunicorn is the well-kept one for WSGI, runs a worker per process with a heartbeat that
replaces a hung or crashed one, and stops gracefully on SIGTERM. Its keep-alive workers (gthread) would bind a
client's connection to one worker while others idle.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from giftcard_local import logs

PR_SET_PDEATHSIG = 1


class ExecutionEnvironments(BaseApplication):
    """gunicorn's custom application: the settings below, and the WSGI app, built in the arbiter before it forks."""

    def __init__(self, template: Path, settings: dict[str, Any]) -> None:
        self.template = template
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.settings.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Any]:
        from giftcard_local.server import LocalApi, wsgi_app

        api = LocalApi(self.template)
        api.warm()
        return wsgi_app(api)


def _announce_ready(ready_fd: int) -> Callable[[Any], None]:
    def post_worker_init(worker: Any) -> None:
        os.write(ready_fd, f'{os.getpid()}\n'.encode())

    return post_worker_init


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to send SIGTERM to this process when its parent (the supervisor) dies, so that a killed
    `giftcard serve` leaves no server behind. Elsewhere there is no such call, and nothing is asked."""
    libc_name = ctypes.util.find_library('c')
    if not sys.platform.startswith('linux') or libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='giftcard_local.runtime', description=__doc__)
    p.add_argument('--template', type=Path, required=True)
    p.add_argument('--listen-fd', type=int, required=True)
    p.add_argument('--ready-fd', type=int, required=True)
    p.add_argument('--workers', type=int, required=True)
    p.add_argument(
        '--timeout', type=int, required=True, help='seconds a request may take before its worker is replaced'
    )
    p.add_argument('--graceful-timeout', type=int, required=True)
    p.add_argument('--parent-pid', type=int, required=True)
    args = p.parse_args(argv)
    _die_with_parent(args.parent_pid)
    logs.configure()  # before any handler module is imported
    settings = {
        'bind': [f'fd://{args.listen_fd}'],
        'workers': args.workers,
        'worker_class': 'sync',
        'preload_app': True,  # the handlers are imported once, before the workers are forked
        'timeout': args.timeout,
        'graceful_timeout': args.graceful_timeout,
        'post_worker_init': _announce_ready(args.ready_fd),
        'accesslog': None,  # each environment logs its own request lines
        'errorlog': '-',
        'loglevel': 'warning',
        'proc_name': 'giftcard-serve',
        'control_socket_disable': True,
        # API Gateway's limit (10,240 bytes for the request line and headers together) is applied by the WSGI app,
        # in the contract's error shape; gunicorn's own tighter defaults would refuse first, in HTML.
        'limit_request_line': 0,
        'limit_request_field_size': 16_384,
        'limit_request_fields': 200,
    }
    with contextlib.suppress(KeyboardInterrupt):
        ExecutionEnvironments(args.template, settings).run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
