"""The template passes checkov (`make validate`), and every check it does not pass on purpose is skipped in one
place, `.checkov.yaml`, with its reason."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / '.checkov.yaml'
CHECKOV = ROOT / '.venv-checkov' / 'bin' / 'checkov'  # `make checkov`
SKIP = re.compile(r'^\s+- (CKV2?_AWS_\d+)\s+# (\S.{20,})$')


def test_every_skipped_check_is_listed_once_with_its_reason() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding='utf-8'))
    lines = [line for line in CONFIG.read_text(encoding='utf-8').splitlines() if line.lstrip().startswith('- CKV')]
    reasons = {match[1]: match[2] for line in lines if (match := SKIP.match(line))}

    assert config['framework'] == ['cloudformation']
    assert len(reasons) == len(lines) == len(config['skip-check']), 'a skipped check without its reason'
    assert sorted(reasons) == sorted(config['skip-check'])


def test_no_other_file_skips_a_check() -> None:
    template = (ROOT / 'template.yaml').read_text(encoding='utf-8')

    assert 'checkov' not in template.lower()


@pytest.mark.skipif(
    not CHECKOV.exists(), reason='checkov is not installed here: `make checkov` (make validate runs it)'
)
def test_checkov_finds_nothing_in_the_template_but_what_is_skipped() -> None:
    result = subprocess.run(
        [CHECKOV, '--config-file', CONFIG, '--file', ROOT / 'template.yaml', '--skip-download', '--compact', '--quiet'],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Failed checks: 0' in result.stdout
