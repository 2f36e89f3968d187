"""`python -m bench [name ...]`: run every benchmark module in this package (or the named ones), one after another.

A benchmark is a module of `bench` with `main(argv: list[str] | None = None) -> int` (called with no arguments,
so each runs with its defaults and environment knobs); `baseline` is the shared pgbench baseline, run by the
benchmarks themselves (`python -m bench.baseline` runs it alone).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

NOT_BENCHMARKS = {'baseline'}


def available() -> list[str]:
    here = str(Path(__file__).resolve().parent)
    return sorted(
        m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith('_') and m.name not in NOT_BENCHMARKS
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f'unknown benchmark(s): {", ".join(unknown)}; available: {", ".join(available())}', file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f'== bench.{name}', flush=True)
        if importlib.import_module(f'bench.{name}').main([]):
            failed.append(name)
    if failed:
        print(f'failed: {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
