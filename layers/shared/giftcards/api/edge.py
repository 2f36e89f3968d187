"""What every request must be before any route sees it: the one place where input no route can use is refused.

Every HTTP function runs `refusal(event)` before its resolver (see `app.http_handler`). It answers, in the
contract's error shape:

- 400 `malformed_body` for a JSON or form body that is not UTF-8 (JSON text is UTF-8, RFC 8259), or whose
  base64 encoding is broken;
- 415 `unsupported_media_type` for multipart bodies, which no route takes;
- 422 `validation_error` for a JSON body that is not an object (an array, a string, a number): every JSON body of
  this API is an object, and Powertools would otherwise take a one-element array for its element;
- 422 `invalid_text` for a NUL character or a lone surrogate anywhere in the path parameters, the query string,
  or the strings (keys included) of a JSON or form body: PostgreSQL's text cannot hold NUL, and a lone surrogate
  cannot be encoded as UTF-8, so such a value could otherwise only fail deep inside a use case.

Route-specific validation (lengths, patterns, amounts) stays with each route's model; what reaches a route here is
text every layer below can store. Bodies of other types (the CSV import reads its own bytes) pass as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from giftcards import errors

JSON_TYPES = ('application/json',)
FORM_TYPE = 'application/x-www-form-urlencoded'


class MalformedBody(errors.DomainError):
    status, code, default_message = 400, 'malformed_body', 'The request body is not valid UTF-8 text.'


class InvalidText(errors.ValidationFailed):
    code = 'invalid_text'


def refusal(event: dict[str, Any]) -> errors.DomainError | None:
    """The error that refuses this API Gateway v2 event before routing, or None when it may go on."""
    headers = event.get('headers') or {}
    mime = str(headers.get('content-type') or '').split(';', 1)[0].strip().lower()
    problems = [
        *_bad_strings('path', (event.get('pathParameters') or {}).items()),
        *_bad_strings('query', (event.get('queryStringParameters') or {}).items()),
    ]
    body = event.get('body')
    if mime.startswith('multipart/'):
        return errors.UnsupportedMediaType('No route takes multipart bodies; send application/json.')
    if body and (not mime or mime in JSON_TYPES or mime.endswith('+json') or mime == FORM_TYPE):
        try:
            text = _text(body, bool(event.get('isBase64Encoded')))
        except (UnicodeDecodeError, binascii.Error, ValueError):
            return MalformedBody()
        if mime == FORM_TYPE:
            problems += _bad_strings('body', parse_qsl(text, keep_blank_values=True))
        else:
            document = _json(text)
            problems += _bad_json_strings(document)
            if not problems and document is not _NOT_JSON and not isinstance(document, dict):
                return errors.ValidationFailed(NOT_AN_OBJECT, details=[{'field': None, 'message': NOT_AN_OBJECT}])
    if not problems:
        return None
    first = problems[0]
    return InvalidText(
        f'{first["field"]}: {first["message"]}' if first['field'] else first['message'], details=problems
    )


def _text(body: str, base64_encoded: bool) -> str:
    if base64_encoded:
        return base64.b64decode(body, validate=True).decode('utf-8')
    body.encode('utf-8')  # a str holding a lone surrogate cannot be
    return body


def _bad_strings(where: str, pairs: Any) -> list[dict[str, Any]]:
    return [
        {'field': f'{where}.{name}' if _problem(str(name)) is None else where, 'message': message}
        for name, value in pairs
        for message in (_problem(str(name)), _problem(str(value)))
        if message
    ]


_NOT_JSON = object()
NOT_AN_OBJECT = 'The body must be a JSON object'


def _json(text: str) -> Any:
    """The JSON document `text` holds, or _NOT_JSON: then the route's validation answers that it is malformed."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _bad_json_strings(document: Any) -> list[dict[str, Any]]:
    if document is _NOT_JSON:
        return []
    return [
        {'field': path or None, 'message': message}
        for path, value in _strings(document)
        if (message := _problem(value))
    ]


def _strings(document: Any) -> Iterator[tuple[str, str]]:
    """Every string of a JSON document (keys too), with where it is; walked without recursion, as deep as the
    parser allowed."""
    stack: list[tuple[Any, str]] = [(document, '')]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield path, key
                stack.append((item, (f'{path}.{key}' if path else key) if _problem(key) is None else path))
        elif isinstance(value, list):
            stack.extend((item, f'{path}[{index}]') for index, item in enumerate(value))


def _problem(value: str) -> str | None:
    if '\x00' in value:
        return 'must not contain the NUL character (U+0000)'
    if not _valid(value):
        return 'is not valid Unicode text (it holds a lone surrogate)'
    return None


def _valid(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True
