"""Domain errors with their HTTP status and machine code, and the one mapping to the contract's error shape.

Every failure a caller can cause answers
`{"success": false, "error": {"code": ..., "message": ...}}` with the right status; nothing a caller
sends produces a 500 or a stack trace.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response


class DomainError(Exception):
    status = 400
    code = 'bad_request'
    default_message = 'The request could not be processed.'

    def __init__(
        self,
        message: str | None = None,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = details
        self.headers = headers or {}
        if code:
            self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {'code': self.code, 'message': self.message}
        if self.details is not None:
            error['details'] = self.details
        return {'success': False, 'error': error}


class BadRequest(DomainError):
    status, code = 400, 'bad_request'


class MalformedJson(DomainError):
    status, code, default_message = 400, 'malformed_json', 'The request body is not valid JSON.'


class Unauthorized(DomainError):
    status, code, default_message = 401, 'unauthorized', 'A valid bearer token is required.'


class Forbidden(DomainError):
    status, code, default_message = 403, 'forbidden', 'You may not perform this action.'


class NotFound(DomainError):
    status, code, default_message = 404, 'not_found', 'Not found.'


class Conflict(DomainError):
    status, code, default_message = 409, 'conflict', 'The request conflicts with the current state.'


class InsufficientCredit(Conflict):
    code, default_message = 'insufficient_credit', 'The account does not hold enough credit.'


class CampaignNotActive(Conflict):
    code, default_message = 'campaign_not_active', 'The campaign is not active.'


class IdempotencyConflict(Conflict):
    code, default_message = 'idempotency_conflict', 'This key was already used with a different request.'


class ValidationFailed(DomainError):
    status, code, default_message = 422, 'validation_error', 'The request is not valid.'


class InvalidHierarchy(ValidationFailed):
    code, default_message = 'invalid_hierarchy', 'Credit moves only between a direct parent and child.'


class UnsupportedMediaType(DomainError):
    status, code, default_message = 415, 'unsupported_media_type', 'Send the body as application/json.'


class RateLimited(DomainError):
    status, code, default_message = 429, 'rate_limited', 'Too many attempts; try again later.'


class VendorFailure(DomainError):
    status, code, default_message = 502, 'vendor_error', 'A gift card vendor failed.'


class ServiceUnavailable(DomainError):
    status, code, default_message = 503, 'service_unavailable', 'The service is temporarily unavailable.'


class FulfilmentUnavailable(ServiceUnavailable):
    code, default_message = 'fulfilment_unavailable', 'No gift card could be obtained right now.'


class OutcomeUnknown(ServiceUnavailable):
    """The connection to the database broke while a COMMIT was on its way: the change may or may not have been
    applied, and nothing here can tell. Never an invitation to repeat blindly: a caller repeats only what is
    idempotent (a request with the same Idempotency-Key, the same redemption code), or checks first."""

    code, default_message = (
        'outcome_unknown',
        'The connection to the database broke while the change was being committed: it may or may not have been '
        'applied. Check before repeating it.',
    )


def raised_by_the_database(code: str, message: str) -> DomainError:
    """The domain error for a refusal the database raised as "giftcards:<code>: <message>": the error class of that
    code when there is one (`invalid_hierarchy` is InvalidHierarchy), else a validation error with the code."""
    known = _by_code().get(code)
    return known(message) if known is not None else ValidationFailed(message, code=code)


def _by_code() -> dict[str, type[DomainError]]:
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_response(error: DomainError) -> Response:
    from aws_lambda_powertools.event_handler import Response

    headers = {'Cache-Control': 'no-store', **error.headers}
    return Response(
        status_code=error.status, content_type='application/json', body=json.dumps(error.body()), headers=headers
    )


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    details = []
    for err in errors:
        loc = [str(part) for part in err.get('loc', ()) if part not in ('body', 'query', 'path', 'header')]
        details.append({'field': '.'.join(loc) or None, 'message': str(err.get('msg', 'invalid'))})
    return details


def register(app: APIGatewayHttpResolver) -> None:
    """Install the exception handlers that give every failure the contract's shape."""
    from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
    from aws_lambda_powertools.event_handler.openapi.exceptions import (
        RequestUnsupportedContentType,
        RequestValidationError,
    )

    from giftcards.observability import logger

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        if exc.status >= 500:
            logger.warning('request failed', extra={'error_code': exc.code, 'status': exc.status})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if any(e.get('type') == 'json_invalid' for e in errors):
            return error_response(MalformedJson())
        details = _validation_details(errors)
        first = details[0] if details else {'field': None, 'message': 'invalid'}
        message = f'{first["field"]}: {first["message"]}' if first['field'] else first['message']
        return error_response(ValidationFailed(message, details=details))

    @app.exception_handler(RequestUnsupportedContentType)
    def _media(exc: RequestUnsupportedContentType) -> Response:
        return error_response(UnsupportedMediaType())

    @app.exception_handler(NotFoundError)
    def _no_route(exc: NotFoundError) -> Response:
        return error_response(NotFound('No such route.', code='route_not_found'))

    @app.exception_handler(ServiceError)
    def _service(exc: ServiceError) -> Response:
        return error_response(
            DomainError(str(exc.msg), code='http_error') if exc.status_code < 500 else ServiceUnavailable()
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        from giftcards import db

        if db.is_input_data_exception(exc):
            # The last wall: a value the database refused that no check above knew of. The caller's input, so a
            # 422; logged, since it means a check is missing.
            logger.warning('data exception from the database', extra={'sqlstate': db.sqlstate(exc)})
            return error_response(db.invalid_input())
        logger.exception('unexpected error')
        err = DomainError('An internal error occurred.', code='internal_error')
        err.status = 500
        return error_response(err)
