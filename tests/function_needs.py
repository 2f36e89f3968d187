"""What each function's code can reach, read from the source with `ast`: the `config.Need`s of a Lambda function.

A function runs its handler module and, as they are imported, the top-level code of every module of the package it
imports (route registrations included). From there the code it can reach is every function or method it names:
`card_secrets.reveal_card`, `UnitOfWork` (its constructor, dunder and decorated methods), and for a method called on
an object (`uow.fetch(...)`, `self._kms.decrypt(...)`) every method of that name in the package. The reach errs on
the side of too much, never too little, with one exception that cannot run in a deployed function: a function whose
first statement is `refuse_outside_local(...)` (the one guard of every local stand-in, which raises unless
ENVIRONMENT is local) is reached, and what it names is not followed.

In what it reaches, a function needs
- what a setting names, when the code reads the setting (`NEEDS_BY_SETTING`, by field of `config.Settings`);
- a KMS operation on card keys, when the code calls the KMS client (`NEEDS_BY_KMS_CALL`);
- a Secrets Manager operation other than reading, when the code calls it (`NEEDS_BY_SECRETS_CALL`).
Modules imported only to be described (the OpenAPI document imports every router with `importlib`) are not
followed: their routes are never called there.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from giftcards.config import Need, Settings

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / 'layers' / 'shared'
FUNCTIONS = ROOT / 'functions'

# Reading one of these settings is using what it names.
NEEDS_BY_SETTING = {
    'DB_SECRET_ARN': Need.DATABASE,
    'DB_OWNER_SECRET_ARN': Need.DATABASE_OWNER,
    'CODE_HASH_SECRET_ARN': Need.CODE_HASH,
    'ALERTS_TOPIC_ARN': Need.ALERTS,
    'VENDORS': Need.VENDORS,
    'DELIVERY_QUEUE_URL': Need.DELIVERY_QUEUE,
    'DELIVERY_TRANSPORT': Need.MESSAGING,
    'EMAIL_FROM': Need.MESSAGING,
    'SES_CONFIGURATION_SET': Need.MESSAGING,
    'REDEEM_URL': Need.MESSAGING,
}
# Settings read by code of more than one need: which need it is, is told by what the code does with it.
SHARED_SETTINGS = {'KMS_KEY_ID', 'DB_HOST'}
# The KMS client of the card key (`crypto.KmsKeys._kms`): each operation called on it.
KMS_CLIENT = '_kms'
NEEDS_BY_KMS_CALL = {'generate_data_key': Need.CARD_KEYS, 'decrypt': Need.CARD_REVEAL}
# Secrets Manager operations beyond reading a secret (which the setting naming it stands for).
NEEDS_BY_SECRETS_CALL = {
    'describe_secret': Need.DATABASE_ROTATION,
    'get_random_password': Need.DATABASE_ROTATION,
    'put_secret_value': Need.DATABASE_ROTATION,
    'update_secret_version_stage': Need.DATABASE_ROTATION,
}
# The guard a local stand-in begins with (config.refuse_outside_local): what follows it runs only when ENVIRONMENT is
# local.
LOCAL_GUARD = 'refuse_outside_local'
# Decorators that register the function they decorate when the module is imported (routes, error handlers).
REGISTERING = {'get', 'post', 'put', 'patch', 'delete', 'head', 'route', 'exception_handler'}

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def field_aliases() -> dict[str, str]:
    """Each setting's field name -> its environment variable."""
    return {name: info.alias for name, info in Settings.model_fields.items() if info.alias}


@dataclass
class Module:
    name: str
    tree: ast.Module
    bindings: dict[str, str] = field(default_factory=dict)  # name -> 'giftcards.crypto' or 'giftcards.db.UnitOfWork'
    definitions: dict[str, Definition] = field(default_factory=dict)


def _module_name(path: Path) -> str:
    if not path.is_relative_to(LAYER):
        return path.stem  # a handler module: `provision_app`
    parts = path.relative_to(LAYER).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _load(path: Path) -> Module:
    name = _module_name(path)
    module = Module(name, ast.parse(path.read_text(encoding='utf-8'), filename=str(path)))
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    module.bindings[alias.asname] = alias.name
                else:
                    first = alias.name.partition('.')[0]
                    module.bindings[first] = first
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[: len(package.split('.')) - node.level + 1]
                base = '.'.join([*anchor, base] if base else anchor)
            for alias in node.names:
                module.bindings[alias.asname or alias.name] = f'{base}.{alias.name}'
    for node in module.tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            module.definitions[node.name] = node
    return module


class Program:
    """The package and the handler modules, with every definition by its qualified name."""

    def __init__(self) -> None:
        paths = [*(LAYER / 'giftcards').rglob('*.py'), *FUNCTIONS.glob('*/*_app.py')]
        self.modules = {module.name: module for module in map(_load, paths)}
        self.definitions: dict[str, tuple[Module, Definition]] = {}
        self.methods: dict[str, list[str]] = {}
        for module in self.modules.values():
            for name, node in module.definitions.items():
                self.definitions[f'{module.name}.{name}'] = (module, node)
                if isinstance(node, ast.ClassDef):
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                            qualified = f'{module.name}.{name}.{item.name}'
                            self.definitions[qualified] = (module, item)
                            self.methods.setdefault(item.name, []).append(qualified)

    # --- names ------------------------------------------------------------------------------------------

    def resolve(self, module: Module, name: str, depth: int = 0) -> str | None:
        """What `name` is in `module`: a module or definition of the program by its qualified name, else None."""
        if name in module.definitions:
            return f'{module.name}.{name}'
        target = module.bindings.get(name)
        return None if target is None or depth > 10 else self.resolve_qualified(target, depth + 1)

    def resolve_qualified(self, target: str, depth: int = 0) -> str | None:
        if target in self.modules:
            return target
        owner, _, attribute = target.rpartition('.')
        return self.resolve(self.modules[owner], attribute, depth) if owner in self.modules else None

    def imports(self, module: Module) -> set[str]:
        """The program's modules `module` imports (with the packages that hold them, which run first)."""
        found = set()
        for target in module.bindings.values():
            while target and target not in self.modules:
                target = target.rpartition('.')[0]
            while target:
                if target in self.modules and target != module.name:
                    found.add(target)
                target = target.rpartition('.')[0]
        return found

    # --- reach ------------------------------------------------------------------------------------------

    def references(self, module: Module, nodes: Iterable[ast.AST]) -> set[str]:
        """The definitions the code in `nodes` (of `module`) names or calls."""
        found: set[str] = set()
        for root in nodes:
            for node in ast.walk(root):
                if isinstance(node, ast.Name):
                    resolved = self.resolve(module, node.id)
                    if resolved in self.definitions:
                        found.add(resolved)
                elif isinstance(node, ast.Attribute):
                    found |= self._attribute(module, node)
        return found

    def _attribute(self, module: Module, node: ast.Attribute) -> set[str]:
        if isinstance(node.value, ast.Name):
            base = self.resolve(module, node.value.id)
            if base in self.modules:
                resolved = self.resolve(self.modules[base], node.attr)
                return {resolved} if resolved in self.definitions else set()
            if base in self.definitions and isinstance(self.definitions[base][1], ast.ClassDef):
                method = f'{base}.{node.attr}'
                return {method} if method in self.definitions else set()
        return set(self.methods.get(node.attr, ()))

    def _implicit(self, qualified: str, node: ast.ClassDef) -> Iterator[str]:
        """What naming a class runs or may run without naming it: dunder and decorated methods (validators,
        properties); ordinary methods are reached when called by name."""
        for item in node.body:
            if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            dunder = item.name.startswith('__') and item.name.endswith('__')
            decorated = any(
                not (isinstance(d, ast.Name) and d.id in ('staticmethod', 'classmethod')) for d in item.decorator_list
            )
            if dunder or decorated:
                yield f'{qualified}.{item.name}'

    def body_of(self, qualified: str) -> list[ast.AST]:
        """The code a definition runs: a function's whole body; a class's bases, decorators and class-level
        statements (its methods are definitions of their own)."""
        _, node = self.definitions[qualified]
        if isinstance(node, ast.ClassDef):
            statements = [s for s in node.body if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
            return [*node.bases, *node.keywords, *node.decorator_list, *statements]
        return [node]

    def top_level(self, module: Module) -> tuple[list[ast.AST], set[str]]:
        """What importing `module` runs: its top-level statements (definitions only by their decorators, bases
        and class-level statements), and the definitions it registers (`@router.post(...)`)."""
        code: list[ast.AST] = []
        registered: set[str] = set()
        for statement in module.tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                code.extend(statement.decorator_list)
                if any(_registers(d) for d in statement.decorator_list):
                    registered.add(f'{module.name}.{statement.name}')
            elif isinstance(statement, ast.ClassDef):
                code.extend(self.body_of(f'{module.name}.{statement.name}'))
            else:
                code.append(statement)
        return code, registered

    def reach(self, handler_module: str) -> tuple[list[tuple[Module, list[ast.AST]]], set[str]]:
        """Everything the function of `handler_module` can run: the top-level code of every module it imports,
        and the definitions reachable from there."""
        imported, todo = set(), [handler_module]
        while todo:
            name = todo.pop()
            if name not in imported:
                imported.add(name)
                todo.extend(self.imports(self.modules[name]))
        code = []
        reached: set[str] = set()
        # Lambda calls the handler module's `lambda_handler`, however it was made.
        pending = [q for q in (f'{handler_module}.lambda_handler',) if q in self.definitions]
        for name in sorted(imported):
            module = self.modules[name]
            statements, registered = self.top_level(module)
            code.append((module, statements))
            pending.extend(self.references(module, statements) | registered)
        while pending:
            qualified = pending.pop()
            if qualified in reached:
                continue
            reached.add(qualified)
            module, node = self.definitions[qualified]
            if local_only(node):
                continue
            pending.extend(self.references(module, self.body_of(qualified)))
            if isinstance(node, ast.ClassDef):
                pending.extend(self._implicit(qualified, node))
        return code, reached

    def needs(self, handler_module: str) -> set[Need]:
        code, reached = self.reach(handler_module)
        chunks = code + [(self.definitions[q][0], self.body_of(q)) for q in reached]
        return {need for _, nodes in chunks for need in needs_in(nodes)}


def local_only(node: Definition) -> bool:
    """Whether a function begins (after its docstring) by refusing to run outside ENVIRONMENT=local."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = node.body[1:] if ast.get_docstring(node) is not None else node.body
    first = body[0] if body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Call)
        and (ast.unparse(first.value.func).rpartition('.')[2] == LOCAL_GUARD)
    )


def _registers(decorator: ast.expr) -> bool:
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr in REGISTERING
    )


def needs_in(nodes: Iterable[ast.AST]) -> set[Need]:
    aliases = field_aliases()
    found = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Attribute) and aliases.get(node.attr) in NEEDS_BY_SETTING:
                found.add(NEEDS_BY_SETTING[aliases[node.attr]])
            elif kms_operation(node) in NEEDS_BY_KMS_CALL:
                found.add(NEEDS_BY_KMS_CALL[kms_operation(node)])  # type: ignore[index]
            elif called(node) in NEEDS_BY_SECRETS_CALL:
                found.add(NEEDS_BY_SECRETS_CALL[called(node)])  # type: ignore[index]
    return found


def called(node: ast.AST) -> str | None:
    """`put_secret_value` for a call `<...>.put_secret_value(...)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def kms_operation(node: ast.AST) -> str | None:
    """`decrypt` for a call `<...>._kms.decrypt(...)`."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == KMS_CLIENT
    ):
        return node.func.attr
    return None


@cache
def program() -> Program:
    return Program()


def function_needs(function: str) -> set[Need]:
    """The needs of the function whose code is `functions/<function>/`."""
    return program().needs(f'{function}_app')
