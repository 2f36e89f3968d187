"""The project's own files agree with each other: README commands, Makefile targets, pinned dependencies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands_the_makefile_defines():
    readme = (ROOT / 'README.md').read_text()
    first_block = re.search(r'```sh\n(.*?)```', readme, re.S)
    assert first_block is not None, 'README must open with a shell block'
    assert readme.index(first_block.group(0)) < readme.index('## '), 'the commands come before any section'
    commands = [line.split('#')[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ['make dev', 'make test']
    makefile = (ROOT / 'Makefile').read_text()
    for target in ('dev', 'test'):
        assert re.search(rf'^{target}:', makefile, re.M), f'Makefile has no {target} target'


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / '.ci' / 'run').read_text()
    assert re.search(r'^\s*make test\b', ci, re.M)


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    found = {}
    for line in lines:
        line = line.split('#')[0].strip()
        if line:
            requirement = Requirement(line)
            found[canonicalize_name(requirement.name)] = requirement
    return found


def _exact(requirement: Requirement) -> str | None:
    [*specs] = requirement.specifier
    return specs[0].version if len(specs) == 1 and specs[0].operator == '==' else None


def test_the_layer_pins_exact_versions_the_project_allows():
    """The deployed layer installs exactly what requirements.txt names; each version within the project's own
    requirement, and no runtime dependency missing from either."""
    project = _requirements(tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['dependencies'])
    layer = _requirements((ROOT / 'layers' / 'shared' / 'requirements.txt').read_text().splitlines())
    assert project.keys() == layer.keys()
    for name, pinned in layer.items():
        version = _exact(pinned)
        assert version is not None, f'{pinned} is not pinned to one version'
        assert project[name].specifier.contains(version), f'{pinned} is outside {project[name]}'
        assert pinned.extras == project[name].extras, name


def test_every_dependency_is_pinned_or_bounded_above():
    """A release of a dependency that this project has never run with never arrives by itself: every requirement
    names one version, or a range closed above."""
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    lines = project['dependencies'] + [d for deps in project['optional-dependencies'].values() for d in deps]
    for requirement in _requirements(lines).values():
        operators = {spec.operator for spec in requirement.specifier}
        assert '==' in operators or '<' in operators, f'{requirement} has no upper bound'


def test_the_processes_tests_start_run_this_checkouts_code():
    """`giftcard serve` and `giftcard check` started by the tests import the code under test, not the copy that
    the venv's editable install names (another worktree of the project may share the venv)."""
    found = subprocess.run(
        [
            sys.executable,
            '-c',
            'import giftcards, giftcard_local; print(giftcards.__file__); print(giftcard_local.__file__)',
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert [Path(f).resolve().parent for f in found] == [
        ROOT / 'layers/shared/giftcards',
        ROOT / 'local/giftcard_local',
    ]


def _package_folders(top: str, base: Path) -> dict[str, Path]:
    """Every folder under `base` that Python can import as a package (links followed), by dotted name."""
    found = {}
    for folder, subfolders, _ in os.walk(base, followlinks=True):
        subfolders[:] = [name for name in subfolders if name.isidentifier() and name != '__pycache__']
        relative = Path(folder).relative_to(base).parts
        found['.'.join((top, *relative))] = Path(folder)
    return found


def test_every_folder_of_the_packages_is_declared_with_its_files():
    """setuptools takes every importable folder inside a package for a package (the migrations and the /docs page's
    files are such folders, links into the tree): each one is named in `packages`, or a build may leave it out, and
    each of its files is a module or one of its `package-data`, or the installed project lacks it."""
    setup = tomllib.loads((ROOT / 'pyproject.toml').read_text())['tool']['setuptools']
    data = setup.get('package-data', {})
    folders = {
        name: path
        for top, location in setup['package-dir'].items()
        for name, path in _package_folders(top, ROOT / location).items()
    }
    assert {'giftcards.migrations', 'giftcards.docs_page'} <= folders.keys()  # what the walk must see
    assert sorted(folders) == sorted(setup['packages'])
    for name, path in folders.items():
        for file in sorted(p for p in path.iterdir() if p.is_file()):
            shipped = file.suffix == '.py' or any(fnmatch(file.name, pattern) for pattern in data.get(name, []))
            assert shipped, f'{file.relative_to(ROOT)} is in no package-data of {name}'
