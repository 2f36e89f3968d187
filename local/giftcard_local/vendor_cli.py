"""`giftcard vendor-fault MODE [--vendor NAME] [--count N]`: switch the fake vendors of a running `giftcard serve`.

The server records its fakes' control URLs in `$GIFTCARD_HOME/vendors.json` (see local_vendors); this command
posts the mode to each of them (all unless --vendor).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from giftcards.vendors.transport import HttpRequest, NoAnswer, NotSent, send

from giftcard_local import cli, embedded
from giftcard_local.fake_vendors import MODES
from giftcard_local.local_vendors import VENDORS_FILE


def _add_parser(sub: cli.Commands) -> None:
    p = sub.add_parser(
        'vendor-fault',
        help='switch the local fake vendors of the running `giftcard serve`',
        description='ok, refuse, error (5xx), timeout (no answer within the vendor timeout), '
        'slow (answers within it), drop_response (sells, then loses the answer)',
    )
    p.add_argument('mode', choices=MODES)
    p.add_argument('--vendor', metavar='NAME', help='only this fake vendor (default: all of them)')
    p.add_argument('--count', type=int, metavar='N', help='only for the next N vendor requests, then as before')


cli.EXTENSIONS.append(_add_parser)


@cli.command('vendor-fault')
def cmd_vendor_fault(args: argparse.Namespace) -> int:
    home = embedded.home()
    record_path = home / VENDORS_FILE
    not_running = (
        f'giftcard vendor-fault: no running `giftcard serve` for GIFTCARD_HOME={home}; '
        'start it first (`giftcard serve` or `make dev`)'
    )
    try:
        vendors: dict[str, Any] = json.loads(record_path.read_text())['vendors']
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        print(not_running, file=sys.stderr)
        return 1
    if args.count is not None and args.count < 1:
        print('giftcard vendor-fault: --count must be at least 1', file=sys.stderr)
        return 1
    if args.vendor is not None and args.vendor not in vendors:
        print(
            f'giftcard vendor-fault: no fake vendor named {args.vendor!r} (running: {", ".join(vendors)})',
            file=sys.stderr,
        )
        return 1
    names = [args.vendor] if args.vendor is not None else list(vendors)
    body = json.dumps({'mode': args.mode, 'count': args.count}).encode()
    for name in names:
        request = HttpRequest(
            'POST', vendors[name]['control_url'] + '/mode', {'Content-Type': 'application/json'}, body
        )
        try:
            response = send(request, connect_timeout_s=2, read_timeout_s=5)
        except (NotSent, NoAnswer):
            print(not_running, file=sys.stderr)
            return 1
        if response.status != 200:
            print(
                f'giftcard vendor-fault: {name} refused the switch: {response.body.decode(errors="replace")}',
                file=sys.stderr,
            )
            return 1
        scope = f' for the next {args.count} request(s)' if args.count else ''
        print(f'{name}: {args.mode}{scope}')
    return 0
