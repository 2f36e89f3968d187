"""The migrate function: CloudFormation's custom resource runs it on every deploy, and Secrets Manager to rotate the
application role's password (`giftcards.rotation`; a failed step raises, and Secrets Manager tries it again).

Create/Update: apply pending migrations as the owner role and set the giftcard_app password from its secret.
Delete: succeed without touching data (the database outlives the resource). CloudFormation always gets an
answer through the ResponseURL: FAILED with the reason on any error, and FAILED shortly before the Lambda
would time out, so a stack never hangs waiting for this function.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from giftcards import db, deploy, rotation
from giftcards.config import Need, require
from giftcards.observability import logger

# What this function's code uses (tests/unit/test_function_needs.py derives it); outside ENVIRONMENT=local it
# does not start without every setting these name.
NEEDS = require(Need.DATABASE_OWNER, Need.DATABASE, Need.DATABASE_ROTATION)

PHYSICAL_ID = 'giftcards-database-migrations'
RESPONSE_TIMEOUT_S = 5
RESPONSE_ATTEMPTS = 3
SAFETY_MARGIN_MS = 15_000  # answer FAILED this long before the deadline (room for two PUT attempts)


def _answer(event: dict[str, Any], status: str, reason: str, data: dict[str, Any] | None = None) -> None:
    body = json.dumps(
        {
            'Status': status,
            'Reason': reason[:1000],
            'PhysicalResourceId': event.get('PhysicalResourceId') or PHYSICAL_ID,
            'StackId': event.get('StackId'),
            'RequestId': event.get('RequestId'),
            'LogicalResourceId': event.get('LogicalResourceId'),
            'NoEcho': False,
            'Data': data or {},
        }
    ).encode()
    url = event['ResponseURL']
    if urlsplit(url).scheme not in ('https', 'http'):
        raise ValueError('ResponseURL is not an HTTP(S) URL')
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=body, method='PUT', headers={'Content-Type': '', 'Content-Length': str(len(body))}
    )
    for attempt in range(1, RESPONSE_ATTEMPTS + 1):
        if attempt > 1:
            time.sleep(0.5 * attempt)
        try:
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_S) as response:  # noqa: S310
                logger.info('answered CloudFormation', extra={'status': status, 'http_status': response.status})
                return
        except OSError as exc:  # URLError, HTTPError and socket timeouts are all OSErrors
            logger.warning('answering CloudFormation failed', extra={'attempt': attempt, 'error': str(exc)})
    logger.error('CloudFormation was not answered', extra={'status': status})


def _run(event: dict[str, Any]) -> dict[str, Any]:
    if event.get('RequestType') == 'Delete':
        return {}
    with db.owner_connection() as conn:
        applied = deploy.prepare_database(conn)
    return {'Applied': len(applied)}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> None:
    if rotation.is_rotation(event):
        logger.info('rotation step', extra={'step': event['Step']})
        rotation.rotate(event['SecretId'], event['ClientRequestToken'], event['Step'])
        return
    request = {k: event.get(k) for k in ('RequestType', 'LogicalResourceId', 'RequestId')}
    logger.info('custom resource request', extra=request)  # never the whole event: ResponseURL is a credential
    answered = threading.Lock()

    def answer_once(status: str, reason: str, data: dict[str, Any] | None = None) -> None:
        if answered.acquire(blocking=False):
            _answer(event, status, reason, data)

    deadline_s = max(context.get_remaining_time_in_millis() - SAFETY_MARGIN_MS, 0) / 1000
    timer = threading.Timer(deadline_s, answer_once, ('FAILED', 'The migrate function ran out of time.'))
    timer.daemon = True
    timer.start()
    try:
        data = _run(event)
    except Exception as exc:
        logger.exception('custom resource failed', extra=request)
        answer_once('FAILED', f'{type(exc).__name__}: {exc}')
    else:
        answer_once('SUCCESS', f'{event.get("RequestType")} done', data)
    finally:
        timer.cancel()
        timer.join()  # when the deadline answer is on its way, let it arrive before the Lambda freezes
