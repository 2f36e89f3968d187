"""Cold import of each handler module: what `import <name>_app` costs a fresh interpreter, as the init phase of a
Lambda cold start does before the first event, with the environment the local server sets (tracing disabled).

    .venv/bin/python -m bench.imports [--runs 7] [function ...]

Each run is a new `python -X importtime -c "import <name>_app"`; its figure is the cumulative time -X importtime
gives that import (the interpreter's own start-up is not in it). The functions take their runs in turn, so that
the load of other processes falls on all of them alike; min/median/max per function. Then the ten modules with
the most time of their own (median over the runs) in the function with the slowest median. No database is used.
Target: a median under 300 ms for every function.

Beside them, in the same runs, two baselines no change to this project can lower: a fresh interpreter importing only
the libraries every handler needs (Powertools' event handler, Logger and Metrics, pydantic, pg8000), and the floor of
an HTTP function (`bench/_floor/floor_app.py`: those libraries with one request model and one resolver with request
validation and one route, which loads Powertools' OpenAPI models and the rest of pydantic). On a shared machine they
all move together (by 1.5x and more from one hour to the next); what a function takes over the floor is this
project's own share.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import bench

ROOT = Path(__file__).resolve().parents[1]
# The functions that answer events; `migrate` (run once per deploy) can be named on the command line.
FUNCTIONS = ('provision', 'allocate', 'monitor', 'redeem', 'admin', 'dashboards')
TARGET_MS = 300
# What `giftcard serve` sets for the functions (besides the database and keys, which importing does not read).
LOCAL_ENVIRONMENT = {
    'POWERTOOLS_TRACE_DISABLED': 'true',
    'ENVIRONMENT': 'local',
    'POWERTOOLS_SERVICE_NAME': 'giftcards',
    'POWERTOOLS_METRICS_NAMESPACE': 'GiftCards',
    'PYDANTIC_DISABLE_PLUGINS': '__all__',
}

# One run's -X importtime figures: module -> (self µs, cumulative µs).
Timings = dict[str, tuple[int, int]]


BASELINE = 'dependencies alone'
FLOOR = 'the floor of an HTTP function'
DEPENDENCIES = (
    'aws_lambda_powertools.event_handler',
    'aws_lambda_powertools.logging',
    'aws_lambda_powertools.metrics',
    'pydantic',
    'pg8000.native',
)


FLOOR_FOLDER = ROOT / 'bench' / '_floor'
# What each baseline imports, and the folders it is imported from besides the layer.
BASELINES: dict[str, tuple[tuple[str, ...], tuple[Path, ...]]] = {
    FLOOR: (('floor_app',), (FLOOR_FOLDER,)),
    BASELINE: (DEPENDENCIES, ()),
}


def cold_import(function: str) -> tuple[int, Timings]:
    """Import the function's handler module (or a baseline's modules) in a new interpreter: (the cumulative µs of what
    was imported, every module's figures)."""
    modules, folders = BASELINES.get(function, ((f'{function}_app',), (ROOT / 'functions' / function,)))
    path = os.pathsep.join(str(p) for p in (ROOT / 'layers' / 'shared', *folders))
    result = subprocess.run(
        [sys.executable, '-X', 'importtime', '-c', f'import {", ".join(modules)}'],
        env={**os.environ, **LOCAL_ENVIRONMENT, 'PYTHONPATH': path},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f'importing {", ".join(modules)} failed:\n{result.stderr}')
    timings: Timings = {}
    total = 0
    for line in result.stderr.splitlines():
        # "import time:       412 |      26813 |     pg8000.native" (the first line is the column header); a module
        # imported by the -c statement itself has one space before its name
        fields = line.removeprefix('import time:').split('|')
        if line.startswith('import time:') and fields[0].strip().isdigit():
            timings[fields[2].strip()] = (int(fields[0]), int(fields[1]))
            if not fields[2].startswith('  '):
                total += int(fields[1])
    return total, timings


def compile_sources(functions: list[str]) -> None:
    """Write the bytecode of the layer's package, of the floor and of each function, as `make build` ships it (a
    Lambda cannot write it: its code is read-only), so that a timed run measures importing, not compiling. An import
    would not write it under PYTHONDONTWRITEBYTECODE, and then every run compiled every module of this project from
    source."""
    folders = (ROOT / 'layers' / 'shared', FLOOR_FOLDER, *(ROOT / 'functions' / f for f in functions))
    for folder in folders:
        if not compileall.compile_dir(folder, quiet=1):
            raise RuntimeError(f'cannot compile {folder}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('functions', nargs='*', default=FUNCTIONS, help=f'default: {" ".join(FUNCTIONS)}')
    parser.add_argument('--runs', type=int, default=7, help='fresh interpreters per function (default 7)')
    args = parser.parse_args(argv)

    measured = [*args.functions, FLOOR, BASELINE]
    compile_sources(args.functions)
    for function in measured:
        cold_import(function)  # untimed: the first run of a process pays for what the operating system caches
    totals: dict[str, list[int]] = defaultdict(list)
    runs: dict[str, list[Timings]] = defaultdict(list)
    for _ in range(args.runs):
        for function in measured:
            total, timings = cold_import(function)
            totals[function].append(total)
            runs[function].append(timings)

    medians = {function: statistics.median(totals[function]) / 1000 for function in measured}
    libraries, floor = medians[BASELINE], medians[FLOOR]
    rows: list[tuple[Any, ...]] = [
        (f'`{function}_app`', f'{min(totals[function]) / 1000:.0f}', f'{medians[function]:.0f}',
         f'{max(totals[function]) / 1000:.0f}', f'{medians[function] - libraries:.0f}',
         f'{medians[function] - floor:.0f}', TARGET_MS, 'yes' if medians[function] < TARGET_MS else 'NO')
        for function in args.functions
    ]  # fmt: skip
    rows.append(
        (FLOOR, f'{min(totals[FLOOR]) / 1000:.0f}', f'{floor:.0f}', f'{max(totals[FLOOR]) / 1000:.0f}',
         f'{floor - libraries:.0f}', '', '', '')
    )  # fmt: skip
    rows.append(
        (BASELINE, f'{min(totals[BASELINE]) / 1000:.0f}', f'{libraries:.0f}', f'{max(totals[BASELINE]) / 1000:.0f}',
         '', '', '', '')
    )  # fmt: skip
    slowest = max(args.functions, key=medians.__getitem__)
    modules = {
        module: (statistics.median(t[module][0] for t in runs[slowest]) / 1000,
                 statistics.median(t[module][1] for t in runs[slowest]) / 1000)
        for module in runs[slowest][0]
    }  # fmt: skip
    costliest = sorted(modules.items(), key=lambda item: item[1][0], reverse=True)[:10]
    table = (
        bench.markdown_table(
            (
                'handler module',
                'min ms',
                'median ms',
                'max ms',
                'over the libraries ms',
                'over the floor ms',
                'target ms',
                'median < target',
            ),
            rows,
        )
        + f'\n\nThe ten costliest modules of `{slowest}_app` (medians of its {args.runs} runs):\n\n'
        + bench.markdown_table(
            ('module', 'own ms', 'with its imports ms'),
            ((f'`{module}`', f'{own:.1f}', f'{cumulative:.1f}') for module, (own, cumulative) in costliest),
        )
    )
    over = [function for function in args.functions if medians[function] >= TARGET_MS]
    verdict = f'Target (median < {TARGET_MS} ms for every function): ' + (
        f'NOT met by {", ".join(over)}.' if over else 'met.'
    )
    environment = ' '.join(f'{name}={value}' for name, value in LOCAL_ENVIRONMENT.items())
    notes = (
        f'{verdict}\n\nEach figure is one `python -X importtime` in a fresh interpreter with {environment}; '
        f'the functions took their {args.runs} runs in turn; load average {os.getloadavg()[0]:.1f} at the end.'
    )
    title = f'Cold import of the handler modules: {args.runs} fresh interpreters each'
    bench.report('imports', title, None, table, notes)
    print(notes)
    return 0


if __name__ == '__main__':
    sys.exit(main())
