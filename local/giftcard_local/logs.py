"""Logging of the local tooling: plain text lines on stderr, each written once.

Configured when a `giftcard` command or an execution environment starts, before any handler module is imported:
Powertools' Logger writes its own JSON records to stdout and, when it is created, keeps them from repeating
through the handlers it finds on the root logger.
"""

from __future__ import annotations

import logging
import sys

FORMAT = '%(asctime)s %(levelname)s %(name)s %(message)s'


def configure() -> None:
    root = logging.getLogger()
    if any(getattr(h, 'giftcard_local', False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.giftcard_local = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger('pgserver').setLevel(logging.WARNING)  # every pg_ctl command line, otherwise
