"""The import graph of the shipped code flows one way: handlers -> api -> use cases -> ledger/auth -> db.

Imports are read from the source with `ast`, wherever they are written: at module level, inside functions (an
import deferred to dodge a cycle is still a cycle) and under `if TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / 'layers' / 'shared'
FUNCTIONS = ROOT / 'functions'
API = 'giftcards.api'
LOCAL_TOOLING = 'giftcard_local'  # embedded database, local server, fake vendors, CLI: never deployed


def module_name(path: Path) -> str:
    """`giftcards.api.app` for a module of the layer; a handler module by its file name (`provision_app`)."""
    if not path.is_relative_to(LAYER):
        return path.stem
    parts = path.relative_to(LAYER).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


@cache
def giftcards_modules() -> frozenset[str]:
    return frozenset(module_name(path) for path in (LAYER / 'giftcards').rglob('*.py'))


def imported(path: Path) -> set[str]:
    """The modules `path` imports: for `from a import b`, `a.b` when that is a module of the layer, else `a`."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f'{base}.{alias.name}'
                found.add(submodule if submodule in giftcards_modules() else base)
    return found


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(f'{package}.')


def giftcards_graph() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports. A submodule's package runs first, but
    is no edge of its own: a package's __init__ imports its submodules to name them."""
    graph = {}
    for path in (LAYER / 'giftcards').rglob('*.py'):
        name, edges = module_name(path), set()
        for target in imported(path):
            while target and target not in giftcards_modules():
                target = target.rpartition('.')[0]  # `giftcards.db.UnitOfWork` is `giftcards.db`
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules `start` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_the_giftcards_modules_import_each_other_without_cycles():
    graph = giftcards_graph()
    reach = {name: reachable(graph, name) for name in graph}
    cycles = {
        tuple(sorted(other for other in reach[name] if name in reach[other])) for name in graph if name in reach[name]
    }
    assert not cycles, f'modules that import each other, directly or through others: {sorted(cycles)}'


def test_the_domain_never_imports_the_http_adapters():
    reaching = {
        name: sorted(target for target in targets if is_within(target, API))
        for name, targets in giftcards_graph().items()
        if not is_within(name, API)
    }
    assert {name: targets for name, targets in reaching.items() if targets} == {}


def test_shipped_code_never_imports_the_local_tooling():
    """The layer and the functions run in AWS; `giftcard_local` (with the fake vendors) is not there."""
    shipped = [*LAYER.rglob('*.py'), *FUNCTIONS.rglob('*.py')]
    reaching = {
        str(path.relative_to(ROOT)): sorted(target for target in imported(path) if is_within(target, LOCAL_TOOLING))
        for path in shipped
    }
    assert {path: targets for path, targets in reaching.items() if targets} == {}
