"""The code uses its dependencies through their public APIs only: no private module imported, no private attribute
of another object read, written or overridden. A private member of a library can change in any release."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(path for folder in ('layers/shared', 'local', 'functions') for path in (ROOT / folder).rglob('*.py'))


# Modules of a dependency that its documentation does not offer: pg8000's are `pg8000.native` (what this project
# uses) and `pg8000.dbapi`; its protocol machinery and converters are internals.
INTERNAL_MODULES = ('pg8000.core', 'pg8000.converters', 'pg8000.exceptions', 'pg8000.legacy', 'pg8000.types')


def _internal(module: str) -> bool:
    return any(module == internal or module.startswith(f'{internal}.') for internal in INTERNAL_MODULES)


# A named tuple's own API: public, and spelled with an underscore so that it cannot clash with a field name
# (the `collections.namedtuple` documentation). The domain's value records are named tuples.
NAMED_TUPLE_API = frozenset({'_asdict', '_fields', '_field_defaults', '_make', '_replace'})


def _private(name: str) -> bool:
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__')) and name not in NAMED_TUPLE_API


def _uses_of_private_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _internal(alias.name) or any(_private(part) for part in alias.name.split('.')):
                    yield node.lineno, f'import {alias.name}'
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            module = node.module or ''
            if module.startswith('giftcard'):
                continue
            if _internal(module) or any(_private(part) for part in module.split('.')):
                yield node.lineno, f'from {module} import ...'
            for alias in node.names:
                if _private(alias.name) or _internal(f'{module}.{alias.name}'):
                    yield node.lineno, f'from {module} import {alias.name}'
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            # a class's own members, through self or cls, are its business; anything else's are not
            and not (isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls'))
        ):
            yield node.lineno, f'{ast.unparse(node.value)}.{node.attr}'


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_member_of_another_object_or_library(path: Path) -> None:
    found = list(_uses_of_private_names(ast.parse(path.read_text(), filename=str(path))))
    assert found == [], f'{path.relative_to(ROOT)}: {found}'


def test_the_check_finds_what_it_looks_for() -> None:
    source = (
        'import pg8000.core\n'
        'from aws_lambda_powertools.event_handler import _x\n'
        'from botocore._internal import y\n'
        'app._request_validation_middleware = None\n'
        'self._mine = 1\n'
        'from pg8000 import converters\n'
        'from pg8000.native import Connection\n'
        'request._replace(code=None)\n'
        'request._replaced\n'
    )
    assert sorted(line for line, _ in _uses_of_private_names(ast.parse(source))) == [1, 2, 3, 4, 6, 9]


def test_sources_were_found() -> None:
    assert len(SOURCES) > 40
