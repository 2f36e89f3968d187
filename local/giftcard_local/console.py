"""The web console's static files (web/console) at /console, as the deployed CloudFront distribution serves them
from S3: the same files, the same security headers. The console calls the API on this same origin; deployed, it
calls the API's own origin, which allows exactly the console's (CORS, template.yaml).

Only regular files inside web/console are served, for GET and HEAD; any other path under /console is a 404.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = '/console'
INDEX = 'index.html'
TYPES = {
    '.html': 'text/html; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8',
    '.css': 'text/css; charset=utf-8',
    '.json': 'application/json',
    '.svg': 'image/svg+xml',
    '.png': 'image/png',
    '.ico': 'image/x-icon',
    '.txt': 'text/plain; charset=utf-8',
}
# What template.yaml's ConsoleHeaders policy sends deployed, with the API on this origin ('self').
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    ('Content-Security-Policy', CONTENT_SECURITY_POLICY),
    ('X-Content-Type-Options', 'nosniff'),
    ('Referrer-Policy', 'no-referrer'),
    ('X-Frame-Options', 'DENY'),
    ('Cache-Control', 'no-cache'),  # always revalidated: a new deploy is seen on the next load
)


@dataclass(frozen=True)
class StaticAnswer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b''


def is_console_path(raw_path: str) -> bool:
    return raw_path == PREFIX or raw_path.startswith(PREFIX + '/')


def answer(root: Path, method: str, raw_path: str) -> StaticAnswer:
    """The answer for a request under /console; `root` is web/console."""
    if method not in ('GET', 'HEAD'):
        return _error(405, [('Allow', 'GET, HEAD')])
    if raw_path == PREFIX:
        return StaticAnswer(308, [('Location', PREFIX + '/')])
    relative = raw_path[len(PREFIX) + 1 :] or INDEX
    path = _inside(root, relative)
    if path is None:
        return _error(404)
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or 'application/octet-stream'
    return StaticAnswer(200, [('Content-Type', content_type), *HEADERS], path.read_bytes())


def _inside(root: Path, relative: str) -> Path | None:
    """The regular file `relative` names inside `root`, or None (outside it, hidden, missing, not a file)."""
    parts = relative.split('/')
    if any(part in ('', '.', '..') or part.startswith('.') or '\\' in part or '\x00' in part for part in parts):
        return None
    root = root.resolve()
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _error(status: int, headers: list[tuple[str, str]] | None = None) -> StaticAnswer:
    body = b'{"success": false, "error": {"code": "not_found", "message": "No such file of the console."}}'
    if status == 405:
        body = b'{"success": false, "error": {"code": "method_not_allowed", "message": "The console is read-only."}}'
    return StaticAnswer(status, [('Content-Type', 'application/json'), *(headers or [])], body)
