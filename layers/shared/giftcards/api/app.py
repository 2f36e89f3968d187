"""The resolver every function uses: validation on, exact decimal JSON, and the one mapping of failures to the
contract's error shape."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from pydantic import Field

from giftcards import db, errors
from giftcards.api import edge
from giftcards.api.models import Answer
from giftcards.auth import subject_from_claims
from giftcards.observability import capture_lambda_handler, logger, metrics

# Non-integer numbers become Decimal so that 27.5 stays 27.5; NaN/Infinity become Decimal too, and the
# amount validator rejects them with a 422 rather than the parser with a 400.
_loads = functools.partial(json.loads, parse_float=Decimal, parse_constant=Decimal)


def parse_json(text: str) -> Any:
    """JSON with exact decimals. Input the parser cannot take (nesting too deep for the recursion limit, an
    integer over Python's digit limit) is malformed JSON too, so that it answers 400 rather than 500."""
    try:
        return _loads(text)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError) as exc:
        raise json.JSONDecodeError(f'unparseable JSON: {type(exc).__name__}', text, 0) from exc


def _serialize(obj: Any) -> str:
    return json.dumps(obj, separators=(',', ':'), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, 'isoformat'):
        return value.isoformat()
    if hasattr(value, 'model_dump'):
        return value.model_dump(mode='json')
    raise TypeError(f'{type(value).__name__} is not JSON serializable')


class ErrorDetail(Answer):
    code: str = Field(description='machine code, e.g. insufficient_credit')
    message: str = Field(description='what went wrong, for people')
    details: list[dict[str, Any]] | None = Field(None, description='per field or per line, where there are several')


class ErrorEnvelope(Answer):
    """The contract's shape of every refusal."""

    success: Literal[False]
    error: ErrorDetail


def error_responses(described: dict[int, str]) -> dict[int, Any]:
    """OpenAPI `responses` for refusals a route documents: each status with its description and the error shape."""
    return {
        status: {'description': text, 'content': {'application/json': {'model': ErrorEnvelope}}}
        for status, text in described.items()
    }


def answers(
    refusals: dict[int, str],
    *,
    status: int = 200,
    description: str = 'Success',
    content: dict[str, Any] | None = None,
) -> dict[int, Any]:
    """A route's OpenAPI `responses`: its success (`status`, described by the route's return annotation unless
    `content` says otherwise) and every refusal it can answer, in the error envelope.

    Its 422 replaces the validation error Powertools would describe, which no caller ever gets: the error handlers
    answer every refusal in the envelope."""
    success: dict[str, Any] = {'description': description}
    if content is not None:
        success['content'] = content
    return {status: success, **error_responses(refusals)}


# What any route may refuse besides its own refusals: merge them (`SIGNED_IN | BODY | {404: ...}`) into `answers`.
SIGNED_IN = {
    401: '`unauthorized`: no valid bearer token',
    422: '`validation_error`: a parameter is not valid (`error.details` names each), or `invalid_text`',
    503: '`service_unavailable` or `busy`: try again',
}
BODY = {
    400: '`malformed_json` or `malformed_body`: the body is not JSON, or not UTF-8 text',
    415: '`unsupported_media_type`: the body is not application/json',
    422: '`validation_error`: a field of the body or a parameter is not valid (`error.details` names each), or '
    '`invalid_text`',
}
COMMITS = {
    503: '`service_unavailable` or `busy`: nothing was changed, try again; or `outcome_unknown`: the connection broke '
    'while the change was committed, so it may or may not have been made (check before repeating it)',
}


def make_app(*routers: Router, title: str = 'Gift card credit system') -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json, serializer=_serialize)
    for router in routers:
        app.include_router(router)
    _register_errors(app)
    return app


def _error_response(error: errors.DomainError) -> Response:
    headers = {'Cache-Control': 'no-store', **error.headers}
    return Response(
        status_code=error.status, content_type='application/json', body=json.dumps(error.body()), headers=headers
    )


def _validation_details(problems: Any) -> list[dict[str, Any]]:
    details = []
    for problem in problems:
        loc = [str(part) for part in problem.get('loc', ()) if part not in ('body', 'query', 'path', 'header')]
        details.append({'field': '.'.join(loc) or None, 'message': str(problem.get('msg', 'invalid'))})
    return details


def _register_errors(app: APIGatewayHttpResolver) -> None:
    """Install the exception handlers that give every failure the contract's shape: the one mapping to HTTP."""

    @app.exception_handler(errors.DomainError)
    def _domain(exc: errors.DomainError) -> Response:
        if exc.status >= 500:
            logger.warning('request failed', extra={'error_code': exc.code, 'status': exc.status})
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        problems = list(exc.errors())
        if any(p.get('type') == 'json_invalid' for p in problems):
            return _error_response(errors.MalformedJson())
        details = _validation_details(problems)
        first = details[0] if details else {'field': None, 'message': 'invalid'}
        message = f'{first["field"]}: {first["message"]}' if first['field'] else first['message']
        return _error_response(errors.ValidationFailed(message, details=details))

    @app.exception_handler(RequestUnsupportedContentType)
    def _media(exc: RequestUnsupportedContentType) -> Response:
        return _error_response(errors.UnsupportedMediaType())

    @app.exception_handler(NotFoundError)
    def _no_route(exc: NotFoundError) -> Response:
        return _error_response(errors.NotFound('No such route.', code='route_not_found'))

    @app.exception_handler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        return _error_response(
            errors.DomainError(str(exc.msg), code='http_error')
            if exc.status_code < 500
            else errors.ServiceUnavailable()
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if db.is_input_data_exception(exc):
            # The last wall: a value the database refused that no check above knew of. The caller's input, so a
            # 422; logged, since it means a check is missing.
            logger.warning('data exception from the database', extra={'sqlstate': db.sqlstate(exc)})
            return _error_response(db.invalid_input())
        logger.exception('unexpected error')
        err = errors.DomainError('An internal error occurred.', code='internal_error')
        err.status = 500
        return _error_response(err)


def _event(router: Router | APIGatewayHttpResolver) -> APIGatewayProxyEventV2:
    event = router.current_event
    assert isinstance(event, APIGatewayProxyEventV2), 'HTTP API (v2) events only'
    return event


def caller_subject(router: Router | APIGatewayHttpResolver) -> str:
    """The verified subject of the request being handled (401 without one)."""
    return _verified_subject(_event(router))


def _verified_subject(event: APIGatewayProxyEventV2) -> str:
    """The subject of the claims the JWT authorizer verified for `event` (Unauthorized without one)."""
    try:
        claims = event.request_context.authorizer.jwt_claim
    except (AttributeError, KeyError, TypeError):
        claims = None
    return subject_from_claims(claims)


def source(router: Router | APIGatewayHttpResolver) -> dict[str, str | None]:
    """Where a request came from, for fraud review: API Gateway's source IP (never X-Forwarded-For)."""
    http = _event(router).request_context.http
    return {'ip': http.source_ip, 'user_agent': http.user_agent}


def http_handler(app: APIGatewayHttpResolver) -> Any:
    """The Lambda entry point for an HTTP function: correlation ids in every log line, traces, metrics."""
    from aws_lambda_powertools.logging import correlation_paths

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        refused = edge.refusal(event)
        if refused is not None:
            logger.info('request refused before routing', extra={'error_code': refused.code, 'status': refused.status})
            return gateway_response(refused)
        with db.acting_as(_signed_in_scope(event)):
            return app.resolve(event, context)

    return lambda_handler


def _signed_in_scope(event: dict[str, Any]) -> db.Scope | None:
    """What the database shows this request's work: the verified caller's scope (row-level security). None for a
    request with no verified caller (the redeem page enters the scope of the code it is given)."""
    try:
        return db.Scope.of_subject(_verified_subject(APIGatewayProxyEventV2(event)))
    except errors.Unauthorized:
        return None


def gateway_response(error: errors.DomainError) -> dict[str, Any]:
    """An error as the payload 2.0 answer API Gateway turns into the HTTP response."""
    return {
        'statusCode': error.status,
        'headers': {'Content-Type': 'application/json', 'Cache-Control': 'no-store', **error.headers},
        'body': json.dumps(error.body()),
        'isBase64Encoded': False,
    }
