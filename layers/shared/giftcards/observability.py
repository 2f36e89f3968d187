"""The one Logger, Tracer and Metrics of every function (Powertools), configured by environment variables."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = 'giftcards'

# Most requests publish no metric (a read, a refusal); Powertools warns at each of them unless told, in the way its
# metrics documentation gives, that this is expected.
warnings.filterwarnings('ignore', 'No application metrics to publish*')

logger = Logger(service=SERVICE)
metrics = Metrics(namespace='GiftCards', service=SERVICE)


@functools.cache
def _tracer() -> Tracer:
    # Created on first use rather than at import: a Tracer imports the X-Ray SDK and botocore (about 0.4 s of a
    # cold start) even when it is disabled.
    return Tracer(service=SERVICE)


def _tracing_disabled() -> bool:
    """POWERTOOLS_TRACE_DISABLED as Powertools reads it: its true values, compared the same way."""
    return os.getenv('POWERTOOLS_TRACE_DISABLED', 'false').lower() in ('1', 'y', 'yes', 't', 'true', 'on')


def capture_lambda_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """The Tracer's `capture_lambda_handler` on a function's entry point; when tracing is disabled (locally, in
    tests), the handler itself: a disabled Tracer records nothing, and leaving it out spares the X-Ray SDK import.

    Neither the answer nor an exception is recorded in the trace: answers hold card codes, numbers, PINs and newly
    issued redemption codes, and an exception may quote its input. (Powertools records both unless told not to.)"""
    if _tracing_disabled():
        return handler
    return _tracer().capture_lambda_handler(handler, capture_response=False, capture_error=False)


def mask(value: str | None, keep: int = 4) -> str | None:
    """Show at most the last `keep` characters of a secret such as a card code or redemption code."""
    if value is None:
        return None
    return '*' * max(len(value) - keep, 0) + value[-keep:] if len(value) > keep else '*' * len(value)
