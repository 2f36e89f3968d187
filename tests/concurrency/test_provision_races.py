"""Provisioning under real concurrency: each request on its own connection, released together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from giftcards import errors, recovery
from giftcards.api.provision import render
from giftcards.provisioning import ProvisionResult

from tests import factories
from tests import provisioning_support as ps
from tests.concurrency_support import race

pytestmark = pytest.mark.slow


def answer(result: ProvisionResult) -> dict[str, Any]:
    """The HTTP body, without the one field a replay adds."""
    body = render(result).model_dump(mode='json')
    body.pop('replayed', None)
    return body


def test_forty_codes_from_twenty_connections_buy_exactly_the_five_cards_the_campaign_can_pay_for(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=5 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 50)
    codes = [ps.new_code() for _ in range(40)]

    def two_codes(pair: list[str]) -> list[ProvisionResult | BaseException]:
        outcomes: list[ProvisionResult | BaseException] = []
        for code in pair:
            try:
                outcomes.append(s.provision(code))
            except errors.DomainError as exc:
                outcomes.append(exc)
        return outcomes

    def thread(i: int) -> Callable[[], list[ProvisionResult | BaseException]]:
        return lambda: two_codes(codes[i::20])

    results = race([thread(i) for i in range(20)])

    flat = [outcome for per_thread in results for outcome in per_thread]  # type: ignore[union-attr]
    succeeded = [r for r in flat if isinstance(r, ProvisionResult)]
    refused = [r for r in flat if not isinstance(r, ProvisionResult)]
    assert len(flat) == 40
    assert len(succeeded) == 5
    assert all(isinstance(r, errors.InsufficientCredit | errors.CampaignNotActive) for r in refused), refused
    assert len({r.card.card_code for r in succeeded}) == 5
    claimed = ps.query(
        'SELECT count(*) AS n FROM cards WHERE pool_id = CAST(:p AS uuid) AND status = :s', p=pool, s='claimed'
    )
    assert claimed == [{'n': 5}]
    assert factories.balance_cents(s.paying_account) == 0
    assert ps.query('SELECT status, paused_reason FROM campaigns WHERE id = CAST(:c AS uuid)', c=s.campaign_id) == [
        {'status': 'paused', 'paused_reason': 'depleted'}
    ]
    assert sum(r.campaign_paused for r in succeeded) == 1
    report = factories.ledger_check()
    assert report.ok, report.summary()


def test_one_code_sent_twenty_times_at_once_buys_one_card_and_answers_the_same(owner: Any) -> None:
    s = ps.setup(owner, funds_cents=10 * 2500)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 5)
    code = ps.new_code()

    results = race([lambda: s.provision(code) for _ in range(20)])

    assert all(isinstance(r, ProvisionResult) for r in results), results
    answers = [answer(r) for r in results]  # type: ignore[arg-type]
    assert all(a == answers[0] for a in answers)
    assert sum(not r.replayed for r in results) == 1  # type: ignore[union-attr]
    assert len(ps.redemptions_of(s.campaign_id)) == 1
    assert factories.balance_cents(s.paying_account) == 9 * 2500
    assert ps.query('SELECT count(*) AS n FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool) == [{'n': 4}]
    assert factories.ledger_check().ok


def test_one_code_sent_ten_times_at_once_on_the_vendor_path_buys_one_card(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner, funds_cents=10 * 2500)
    code = ps.new_code()
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('slow')  # the first request holds the order while the others arrive

        results = race([lambda: s.provision(code) for _ in range(10)])

        assert all(isinstance(r, ProvisionResult) for r in results), results
        answers = [answer(r) for r in results]  # type: ignore[arg-type]
        assert all(a == answers[0] for a in answers)
        (row,) = ps.redemptions_of(s.campaign_id)
        assert vendor.sold_count(row['vendor_key']) == 1
        assert factories.balance_cents(s.paying_account) == 9 * 2500
        ps.assert_settled(s.campaign_id, vendor)


def test_overlapping_recoveries_buy_each_pending_card_once(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner, funds_cents=20 * 2500)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('error')
        for _ in range(8):
            with pytest.raises(errors.ServiceUnavailable):
                s.provision()
        vendor.set_mode('slow')

        reports = race([lambda: recovery.recover_pending(older_than_s=0) for _ in range(4)])

        assert all(isinstance(r, recovery.RecoveryReport) for r in reports), reports
        mine = {r['id'] for r in ps.redemptions_of(s.campaign_id)}
        fulfilled = [rid for r in reports for rid in r.fulfilled if rid in mine]  # type: ignore[union-attr]
        assert sorted(fulfilled) == sorted(mine)  # each one by exactly one run
        ps.assert_settled(s.campaign_id, vendor)
