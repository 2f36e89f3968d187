"""Contract fuzzing: schemathesis draws requests (valid and invalid ones) for every operation of
`GET /openapi.json` of a real `giftcard serve`, as a platform admin and with no token at all. No answer may be a
5xx, and every refusal must be in the contract's error shape.

`make test` runs a bounded number of examples per operation; `make fuzz` runs many more (`FUZZ_EXAMPLES`).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from giftcard_local.tokens import issue_token
from giftcards import db
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Live

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get('FUZZ_EXAMPLES', '12'))


@pytest.fixture(scope='module')
def known(live: Live) -> dict[str, str]:
    """Real ids for the path parameters, so that drawn requests also get past the lookups; and an admin."""
    with db.owner_connection() as owner:
        s = ps.setup(owner, funds_cents=1_000_000)
        pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 20)
        admin = factories.platform_admin(owner)
    return {
        'agency_id': s.tree.agency['id'],
        'client_id': s.tree.client['id'],
        'campaign_id': s.campaign_id,
        'brand_id': s.brand['id'],
        'pool_id': pool,
        'account_id': s.tree.client['account_id'],
        'admin': admin,
    }


def error_shape_problem(status: int, content_type: str, text: str, body: Any, path: str) -> str | None:
    """What is wrong with an answer: a 5xx, or a refusal outside `{"success": false, "error": {code, message}}`
    (the end customer's form post to /redeem gets its HTML page back instead)."""
    if status >= 500:
        return f'{status}: {text[:300]}'
    if status < 400 or (path == '/redeem' and content_type.startswith('text/html')):
        return None
    error = body.get('error') if isinstance(body, dict) else None
    if not (isinstance(body, dict) and body.get('success') is False and isinstance(error, dict)):
        return f'{status} outside the error shape: {text[:300]}'
    if not (isinstance(error.get('code'), str) and isinstance(error.get('message'), str)):
        return f'{status} error without code and message: {text[:300]}'
    return None


def strategies(operation: Any, known: dict[str, str]) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests for the operation, with drawn path ids and, where it has any, with real ones."""
    names = [p.name for p in operation.path_parameters]
    fixed = [None]
    if names and all(name in known for name in names):
        fixed.append({name: known[name] for name in names})
    drawn = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for path_parameters in fixed:
            try:
                drawn.append(operation.as_strategy(mode, path_parameters=path_parameters))
            except Exception:  # noqa: S112 - an operation with nothing to make invalid has no negative cases
                continue
    return st.one_of(drawn)


def fuzz(live: Live, known: dict[str, str], headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f'{live.url}/openapi.json')
    problems: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30  # every route of the template but the document itself

    for operation in operations:

        @given(case=strategies(operation, known))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def one(case: schemathesis.Case) -> None:
            response = case.call(base_url=live.url, headers=headers)
            try:
                body = response.json()
            except ValueError:
                body = None
            content_type = response.headers.get('content-type', [''])[0]
            problem = error_shape_problem(response.status_code, content_type, response.text, body, case.path)
            if problem:
                problems.append(f'{case.method.upper()} {case.formatted_path}: {problem}')

        one()
    return problems


def test_a_platform_admin_gets_no_5xx_and_every_refusal_in_the_error_shape(live: Live, known: dict[str, str]) -> None:
    problems = fuzz(live, known, {'Authorization': f'Bearer {issue_token(known["admin"])}'})

    assert not problems, '\n'.join(problems)


def test_a_caller_without_a_token_gets_no_5xx_and_every_refusal_in_the_error_shape(
    live: Live, known: dict[str, str]
) -> None:
    problems = fuzz(live, known, {})

    assert not problems, '\n'.join(problems)
