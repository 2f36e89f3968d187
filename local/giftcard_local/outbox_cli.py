"""`giftcard outbox`: the e-mails and SMS the local system sent, in the outbox folder of GIFTCARD_HOME.

Locally (DELIVERY_TRANSPORT `local`, the default) every delivery is written there as its recipient would see it:
an HTML page per message and `index.html` listing them, which `make dev` prints a link to.
"""

from __future__ import annotations

import argparse
import json

from giftcard_local import cli, embedded


def _register(sub: cli.Commands) -> None:
    outbox = sub.add_parser('outbox', help='list the e-mails and SMS the local system sent (newest first)')
    outbox.add_argument('--limit', type=int, default=20, metavar='N', help='how many (default 20)')
    outbox.add_argument('--json', action='store_true', help='print the messages as JSON, texts included')


def index_url() -> str:
    """The outbox's index page (written now if there is none yet), as a link to open in a browser."""
    from giftcards import senders

    index = senders.outbox_dir() / senders.INDEX
    return (index if index.exists() else senders.write_index()).as_uri()


def cmd_outbox(args: argparse.Namespace) -> int:
    from giftcards import senders

    embedded.home()
    messages = senders.outbox_messages()[: max(args.limit, 0)]
    if args.json:
        print(json.dumps(messages, indent=2))
        return 0
    if not messages:
        print(f'the outbox is empty ({senders.outbox_dir()})')
        return 0
    for m in messages:
        what = m.get('subject') or m['text'].replace('\n', ' ')[:72]
        print(f'{m["at"][:19]}  {m["channel"]:5}  {m["to"]:32}  {what}')
        print(f'    {(senders.outbox_dir() / m["page"]).as_uri()}')
    print(f'\nall of them: {index_url()}')
    return 0


cli.EXTENSIONS.append(_register)
cli.COMMANDS['outbox'] = cmd_outbox
