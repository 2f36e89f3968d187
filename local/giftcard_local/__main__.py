"""`python -m giftcard_local ...`: the `giftcard` command, for when its script is not on PATH."""

import sys

from giftcard_local.cli import main

sys.exit(main())
