"""Sending one message: Amazon SES (e-mail) and Amazon SNS (SMS) when DELIVERY_TRANSPORT is `aws`; otherwise the
local outbox, a folder in GIFTCARD_HOME holding each message as its recipient would see it, and an index page.

Neither SES's SendEmail nor SNS's Publish takes an idempotency token. Each message carries its send's key (the
delivery id and send number) as an SES message tag or SNS message attribute, so a notification about it can be
matched, and `giftcards.deliveries` makes sure no two senders send the same attempt. A failure is `SendFailed`:
permanent when the service refused the message itself (sending it again cannot help), else transient.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, NamedTuple

from giftcards.config import Settings, get_settings, refuse_outside_local
from giftcards.messages import Message
from giftcards.recipients import Channel

# SES and SNS error codes that refuse the message itself.
PERMANENT_ERRORS = frozenset(
    {'MessageRejected', 'BadRequestException', 'InvalidParameter', 'InvalidParameterValue', 'InvalidParameterException'}
)
OUTBOX = 'outbox'
INDEX = 'index.html'


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Outgoing(NamedTuple):
    delivery_id: str
    send_number: int
    channel: Channel
    address: str
    message: Message

    @property
    def send_key(self) -> str:
        """This send of the delivery, as the provider's tags and attributes name it."""
        return f'{self.delivery_id}-{self.send_number}'


def send(outgoing: Outgoing) -> str:
    """Send the message; answers the provider's message id. Raises SendFailed."""
    settings = get_settings()
    if settings.delivery_transport == 'local':
        return write_to_outbox(outgoing)
    if outgoing.channel == 'email':
        return _send_email(outgoing, settings)
    return _send_sms(outgoing, settings)


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=10, retries={'max_attempts': 2, 'mode': 'standard'})
    return boto3.client(service, config=config)


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """botocore's failures as SendFailed: the error code only (an error's message may quote the address)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get('Error', {}).get('Code', 'ClientError'))
        raise SendFailed(code, permanent=code in PERMANENT_ERRORS) from None
    except BotoCoreError as exc:  # network, timeouts, credentials
        raise SendFailed(type(exc).__name__, permanent=False) from None


def _send_email(outgoing: Outgoing, settings: Settings) -> str:
    if not settings.email_from:
        raise SendFailed('EMAIL_FROM is not configured', permanent=False)
    message = outgoing.message
    request: dict[str, Any] = {
        'FromEmailAddress': settings.email_from,
        'Destination': {'ToAddresses': [outgoing.address]},
        'Content': {
            'Simple': {
                'Subject': {'Data': message.subject, 'Charset': 'UTF-8'},
                'Body': {
                    'Text': {'Data': message.text, 'Charset': 'UTF-8'},
                    'Html': {'Data': message.html, 'Charset': 'UTF-8'},
                },
            }
        },
        'EmailTags': [
            {'Name': 'delivery_id', 'Value': outgoing.delivery_id},
            {'Name': 'send_number', 'Value': str(outgoing.send_number)},
        ],
    }
    if settings.ses_configuration_set:
        request['ConfigurationSetName'] = settings.ses_configuration_set
    with _failures():
        answer = _client('sesv2').send_email(**request)
    return str(answer['MessageId'])


def _send_sms(outgoing: Outgoing, settings: Settings) -> str:
    attributes = {
        'AWS.SNS.SMS.SMSType': {'DataType': 'String', 'StringValue': 'Transactional'},
        'delivery_send': {'DataType': 'String', 'StringValue': outgoing.send_key},
    }
    if settings.sms_sender_id:
        attributes['AWS.SNS.SMS.SenderID'] = {'DataType': 'String', 'StringValue': settings.sms_sender_id}
    with _failures():
        answer = _client('sns').publish(
            PhoneNumber=outgoing.address, Message=outgoing.message.sms, MessageAttributes=attributes
        )
    return str(answer['MessageId'])


# --- the local outbox ----------------------------------------------------------------------------------------


def outbox_dir() -> Path:
    return Path(get_settings().giftcard_home).resolve() / OUTBOX


def write_to_outbox(outgoing: Outgoing) -> str:
    """Write the message to the local outbox, and the outbox's index page; answers the message's local id. Only when
    ENVIRONMENT is local: a deployed function that took itself for a developer's machine would send nothing."""
    refuse_outside_local('the local outbox', 'DELIVERY_TRANSPORT')
    folder = outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = f'{now:%Y%m%dT%H%M%S%fZ}-{outgoing.channel}-{outgoing.send_key}'
    message = outgoing.message
    page = message.html if outgoing.channel == 'email' else _sms_page(outgoing.address, message.sms)
    _write(folder / f'{name}.html', page)
    record = {
        'id': name,
        'at': now.isoformat(),
        'channel': outgoing.channel,
        'to': outgoing.address,
        'subject': message.subject if outgoing.channel == 'email' else None,
        'text': message.text if outgoing.channel == 'email' else message.sms,
        'page': f'{name}.html',
        'delivery_id': outgoing.delivery_id,
        'send_number': outgoing.send_number,
    }
    _write(folder / f'{name}.json', json.dumps(record, indent=2))
    write_index(folder)
    return f'local-{name}'


def outbox_messages(folder: Path | None = None) -> list[dict[str, Any]]:
    """The local outbox's messages, newest first."""
    folder = folder or outbox_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob('*.json'):
        with contextlib.suppress(OSError, ValueError):
            found.append(json.loads(path.read_text(encoding='utf-8')))
    return sorted(found, key=lambda m: (m.get('at', ''), m.get('id', '')), reverse=True)


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a file."""
    partial = path.with_name(f'.{path.name}.{os.getpid()}')
    partial.write_text(text, encoding='utf-8')
    partial.replace(path)


def write_index(folder: Path | None = None) -> Path:
    """The outbox's index page, listing every message (none yet: an empty list); answers its path."""
    folder = folder or outbox_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # One writer at a time, so the page always lists every message written before it.
    with open(folder / '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = ''.join(
            f'<tr><td>{escape(m["at"][:19])}</td><td>{escape(m["channel"])}</td><td>{escape(m["to"])}</td>'
            f'<td><a href="{escape(m["page"])}">{escape(m.get("subject") or m["text"][:80])}</a></td></tr>'
            for m in outbox_messages(folder)
        )
        _write(
            folder / INDEX,
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local outbox</title></head><body>'
            '<h1>Local outbox</h1><p>Every e-mail and SMS the local system sent, newest first.</p>'
            '<table><thead><tr><th>Sent (UTC)</th><th>Channel</th><th>To</th><th>Message</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></body></html>',
        )
    return folder / INDEX


def _sms_page(address: str, text: str) -> str:
    words = ' '.join(
        f'<a href="{escape(word)}">{escape(word)}</a>' if word.startswith(('http://', 'https://')) else escape(word)
        for word in text.split(' ')
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SMS</title></head><body>'
        f'<p>SMS to {escape(address)}</p>'
        f'<p style="max-width:22rem;padding:.75rem;border-radius:1rem;background:#e9e9eb">{words}</p>'
        '</body></html>'
    )
