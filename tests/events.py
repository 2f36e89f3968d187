"""API Gateway HTTP API (v2) events and a Lambda context for handler tests."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass
class LambdaContext:
    function_name: str = 'test-function'
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = 'arn:aws:lambda:us-east-1:123456789012:function:test-function'
    aws_request_id: str = 'c6af9ac6-7b61-11e6-9a41-93e812345678'

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    subject: str | None = None,
    claims: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    source_ip: str = '203.0.113.7',
    user_agent: str = 'pytest',
    content_type: str | None = 'application/json',
) -> dict[str, Any]:
    """A v2 event as API Gateway sends it. `subject` fills the JWT authorizer's claims."""
    all_headers = {'user-agent': user_agent, **({'content-type': content_type} if content_type else {})}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    event: dict[str, Any] = {
        'version': '2.0',
        'routeKey': f'{method} {path}',
        'rawPath': path,
        'rawQueryString': urlencode(query or {}),
        'headers': all_headers,
        'requestContext': {
            'accountId': '123456789012',
            'apiId': 'local',
            'domainName': 'localhost',
            'http': {
                'method': method,
                'path': path,
                'protocol': 'HTTP/1.1',
                'sourceIp': source_ip,
                'userAgent': user_agent,
            },
            'requestId': str(uuid.uuid4()),
            'routeKey': f'{method} {path}',
            'stage': '$default',
            'time': '26/Nov/2026:12:00:00 +0000',
            'timeEpoch': 1795694400000,
        },
        'isBase64Encoded': False,
    }
    if query:
        event['queryStringParameters'] = dict(query)
    if subject is not None or claims is not None:
        event['requestContext']['authorizer'] = {'jwt': {'claims': claims or {'sub': subject}, 'scopes': None}}
    if raw_body is not None:
        if isinstance(raw_body, bytes):
            event['body'] = base64.b64encode(raw_body).decode()
            event['isBase64Encoded'] = True
        else:
            event['body'] = raw_body
    elif body is not None:
        event['body'] = json.dumps(body)
    return event


def call(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Invoke a Lambda handler; answers (status, headers, parsed JSON body or text)."""
    result = handler(event, LambdaContext())
    text = result.get('body') or ''
    if result.get('isBase64Encoded'):
        text = base64.b64decode(text).decode()
    headers = {k.lower(): v for k, v in (result.get('headers') or {}).items()}
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return result['statusCode'], headers, parsed
