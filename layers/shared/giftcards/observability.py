"""The one Logger, Tracer and Metrics of every function (Powertools), configured by environment variables."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = 'giftcards'

# Most requests publish no metric (a read, a refusal); Powertools warns at each of them unless told, in the way its
# metrics documentation gives, that this is expected.
warnings.filterwarnings('ignore', 'No application metrics to publish*')

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace='GiftCards', service=SERVICE)


def mask(value: str | None, keep: int = 4) -> str | None:
    """Show at most the last `keep` characters of a secret such as a card code or redemption code."""
    if value is None:
        return None
    return '*' * max(len(value) - keep, 0) + value[-keep:] if len(value) > keep else '*' * len(value)
