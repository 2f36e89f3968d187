"""The local server's gift card vendors: two fake vendors on 127.0.0.1, reached by the real clients.

`tango` speaks Tango RaaS v2 and `tillo` speaks Tillo v2 (see giftcard_local.fake_vendors); both accept any brand and
denomination, so demo brands work. Their control URLs go to `$GIFTCARD_HOME/vendors.json`, where
`giftcard vendor-fault` finds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from giftcard_local.fake_vendors import FakeVendor, start_fake_vendor

VENDORS_FILE = 'vendors.json'
LOCAL_TIMEOUT_S = 3.0  # short, so that a `timeout` fault is over quickly; the fakes' `slow` stays well within it

_running: list[FakeVendor] = []
_record: Path | None = None


def start(home: Path) -> dict[str, str]:
    """Start the fake vendors and record them under `home`; answers the environment (VENDORS) that uses them."""
    global _record
    stop()
    tango = start_fake_vendor('tango', client_timeout_s=LOCAL_TIMEOUT_S)
    tillo = start_fake_vendor('tillo', client_timeout_s=LOCAL_TIMEOUT_S)
    _running.extend([tango, tillo])
    record = {
        'pid': os.getpid(),
        'vendors': {fake.name: {'control_url': fake.control_url, 'root_url': fake.root_url} for fake in _running},
    }
    path = Path(home) / VENDORS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix('.json.tmp')
    partial.write_text(json.dumps(record, indent=2) + '\n')
    partial.replace(path)
    _record = path
    return {'VENDORS': json.dumps([tango.tango_config(), tillo.tillo_config()])}


def stop() -> None:
    """Stop the fake vendors this process started and remove their record (if it is still ours)."""
    global _record
    while _running:
        _running.pop().stop()
    if _record is not None:
        try:
            if json.loads(_record.read_text()).get('pid') == os.getpid():
                _record.unlink()
        except (FileNotFoundError, ValueError):
            pass
        _record = None
