"""The project's own files agree with each other: README commands, Makefile targets, pinned dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split('#')[0].strip()
        if line:
            name, version = line.split('==')
            pins[name.split('[')[0].lower()] = version
    return pins


def test_layer_requirements_match_the_project_runtime_dependencies():
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    layer = (ROOT / 'layers' / 'shared' / 'requirements.txt').read_text().splitlines()
    assert _pins(project['dependencies']) == _pins(layer)
    for dep in project['dependencies'] + [d for deps in project['optional-dependencies'].values() for d in deps]:
        assert '==' in dep, f'{dep} is not pinned'
