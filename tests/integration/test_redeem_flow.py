"""The public redemption against real PostgreSQL: a code for its card, replays, the uniform refusal of bad codes,
the failure limit per source network, and the record of every attempt and reveal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from giftcards import code_administration, codes, db, errors, provisioning, ratelimit, redeeming
from giftcards.api.redeem import render
from pg8000.native import DatabaseError

from tests import factories, round_trips
from tests import redeem_support as rs

LIMITS = ratelimit.Limits(max_failures=3, window=timedelta(seconds=60))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def camp(owner):
    return rs.campaign(owner, cards_in_stock=5)


def source(ip: str | None = None, user_agent: str = 'pytest-browser') -> ratelimit.Source:
    return ratelimit.Source.of(ip or rs.unique_ip(), user_agent)


def redeem(typed: str, origin: ratelimit.Source, clock: Clock | None = None) -> redeeming.Redeemed:
    return redeeming.redeem(typed, origin, limits=LIMITS, clock=clock or Clock())


# --- a code for its card -------------------------------------------------------------------------------


def test_a_code_gets_a_card_of_its_brand_and_value(camp):
    code = camp.issue()[0]
    redeemed = redeem(code, source())
    card = redeemed.provisioned.card
    assert not redeemed.replayed
    assert redeemed.brand_name == camp.brand['name']
    assert (card.brand_id, card.denomination_cents) == (camp.brand['id'], 2500)
    assert card.card_code.startswith('CARD-') and card.card_number and card.pin
    assert rs.code_row(code)['status'] == 'redeemed'
    assert factories.balance_cents(camp.tree.campaign['account_id']) == 100_000 - 2500


def test_a_code_is_redeemed_however_it_is_typed(camp):
    code = camp.issue()[0]
    typed = f'  {code.lower().replace("-", "").replace("1", "l").replace("0", "o")} '
    first = redeem(typed, source())
    again = redeem(code, source())
    assert again.replayed
    assert again.provisioned.card.card_code == first.provisioned.card.card_code


def test_the_answer_shows_the_card_and_nothing_about_the_payer(camp):
    code = camp.issue()[0]
    answer = render(redeem(code, source())).model_dump(mode='json')
    assert answer['card']['brand'] == camp.brand['name']
    assert answer['card']['value'] == 25
    assert answer['redemption']['code'] == f'****-****-****-{code[-4:]}'
    text = repr(answer)
    for secret in ('credit', 'cost', 'charged', 'account', code, code.replace('-', '')):
        assert secret not in text


def test_replay_shows_the_same_card_charges_once_and_records_each_reveal(camp):
    code = camp.issue()[0]
    first = redeem(code, source('10.9.8.7', 'first-browser'))
    second = redeem(code, source('10.9.8.6', 'second-browser'))
    assert second.replayed and not first.replayed
    assert second.provisioned.card == first.provisioned.card
    assert second.provisioned.redemption.id == first.provisioned.redemption.id
    assert factories.balance_cents(camp.tree.campaign['account_id']) == 100_000 - 2500
    seen = rs.reveals(first.provisioned.card.card_code)
    assert [(r['channel'], r['subject'], r['ip'], r['user_agent']) for r in seen] == [
        ('redeem_page', None, '10.9.8.7', 'first-browser'),
        ('redeem_page', None, '10.9.8.6', 'second-browser'),
    ]
    assert factories.ledger_check().ok


def test_attempts_are_recorded_with_the_code_id_only_for_a_recognised_code(camp):
    code = camp.issue()[0]
    origin = source(user_agent='Mozilla/5.0 (review)')
    code_id = rs.code_row(code)['id']
    redeem(code, origin)
    redeem(code, origin)
    with pytest.raises(codes.InvalidCode):
        redeem(codes.generate_code(), origin)
    assert [(a['outcome'], a['code_id'], a['user_agent']) for a in rs.attempts(origin.ip)] == [
        ('redeemed', code_id, 'Mozilla/5.0 (review)'),
        ('replayed', code_id, 'Mozilla/5.0 (review)'),
        ('invalid_code', None, 'Mozilla/5.0 (review)'),
    ]


# --- the same refusal for every bad code ---------------------------------------------------------------


def test_unknown_voided_and_malformed_codes_are_refused_alike(camp):
    voided = camp.issue()[0]
    code_administration.void_code(camp.tree.client_admin, rs.code_row(voided)['id'])
    refusals = []
    for typed in (codes.generate_code(), voided, 'not-a-code', '', 'ABCD-EFGH-JKMN-PQRU', 'x' * 5000):
        origin = source()
        with pytest.raises(codes.InvalidCode) as caught:
            redeem(typed, origin)
        refusals.append((caught.value.status, caught.value.body(), caught.value.headers))
        assert [(a['outcome'], a['code_id']) for a in rs.attempts(origin.ip)] == [('invalid_code', None)]
    assert refusals == [refusals[0]] * len(refusals)
    assert refusals[0][:2] == (
        404,
        {
            'success': False,
            'error': {'code': 'invalid_code', 'message': 'This code is not valid. Check it and try again.'},
        },
    )
    assert rs.code_row(voided)['status'] == 'void'


def test_unknown_voided_and_malformed_codes_do_the_same_database_work(camp, monkeypatch):
    """A hash and a lookup even for input that cannot be a code, so timing does not tell them apart."""
    voided = camp.issue()[0]
    code_administration.void_code(camp.tree.client_admin, rs.code_row(voided)['id'])
    hashed: list[str] = []
    real_hash = codes.code_hash

    def counted_hash(value: str) -> bytes:
        hashed.append(value)
        return real_hash(value)

    monkeypatch.setattr(codes, 'code_hash', counted_hash)
    work = []
    with round_trips.recorded(monkeypatch) as sent:
        for typed in ('not a code either', codes.generate_code(), voided, 'not a code at all'):
            hashed.clear()
            sent.clear()
            with pytest.raises(codes.InvalidCode):
                redeem(typed, source())
            # each round trip by its statement's first word and its parameters' names
            work.append(([(r.sql.split()[0], *r.params) for r in sent], len(hashed)))
    work = work[1:]  # the first prepared the statements on this connection
    assert work[0] == work[1] == work[2]
    assert work[0][1] == 1
    assert ('SELECT', 'h') in work[0][0], 'the lookup by hash'


def test_a_code_voided_after_lookup_is_refused_and_charges_nothing(camp, monkeypatch):
    code = camp.issue()[0]
    real = provisioning.provision_gift_card

    def void_first(request, **kwargs):
        code_administration.void_code(camp.tree.client_admin, rs.code_row(code)['id'])
        return real(request, **kwargs)

    monkeypatch.setattr(provisioning, 'provision_gift_card', void_first)
    origin = source()
    with pytest.raises(codes.InvalidCode):
        redeem(code, origin)
    assert factories.balance_cents(camp.tree.campaign['account_id']) == 100_000
    assert [a['outcome'] for a in rs.attempts(origin.ip)] == ['invalid_code']


# --- campaign state and stock --------------------------------------------------------------------------


def test_a_paused_campaign_refuses_new_redemptions_and_charges_nothing(camp):
    code = camp.issue()[0]
    camp.pause()
    origin = source()
    with pytest.raises(errors.CampaignNotActive):
        redeem(code, origin)
    assert factories.balance_cents(camp.tree.campaign['account_id']) == 100_000
    assert rs.code_row(code)['status'] == 'issued'
    assert [(a['outcome'], a['code_id']) for a in rs.attempts(origin.ip)] == [
        ('campaign_not_active', rs.code_row(code)['id'])
    ]


def test_a_paused_campaign_still_shows_a_card_already_redeemed(camp):
    code = camp.issue()[0]
    first = redeem(code, source())
    camp.pause()
    again = redeem(code, source())
    assert again.replayed and again.provisioned.card == first.provisioned.card


def test_no_card_available_is_a_503_and_the_same_code_works_later(owner):
    camp = rs.campaign(owner, cards_in_stock=0)
    code = camp.issue()[0]
    origin = source()
    with pytest.raises(errors.ServiceUnavailable) as caught:
        redeem(code, origin)
    assert caught.value.status == 503
    assert factories.balance_cents(camp.tree.campaign['account_id']) == 100_000
    camp.stock(1)
    assert not redeem(code, origin).replayed
    assert [a['outcome'] for a in rs.attempts(origin.ip)] == ['unavailable', 'redeemed']


# --- the failure limit ---------------------------------------------------------------------------------


def fail(origin: ratelimit.Source, clock: Clock, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(codes.InvalidCode):
            redeem(codes.generate_code(), origin, clock)


def test_the_limit_engages_after_the_configured_failures(camp):
    clock, origin = Clock(), source()
    fail(origin, clock, LIMITS.max_failures)
    clock.advance(10)
    with pytest.raises(errors.RateLimited) as caught:
        redeem(codes.generate_code(), origin, clock)
    assert caught.value.status == 429
    assert caught.value.headers == {'Retry-After': '50'}
    outcomes = [a['outcome'] for a in rs.attempts(origin.ip)]
    assert outcomes == ['invalid_code'] * 3 + ['rate_limited']


def test_past_the_limit_even_a_valid_code_is_refused_unread(camp):
    """Answering valid codes while refusing the rest would make the 429 an oracle for guesses."""
    code = camp.issue()[0]
    clock, origin = Clock(), source()
    fail(origin, clock, LIMITS.max_failures)
    with pytest.raises(errors.RateLimited):
        redeem(code, origin, clock)
    assert rs.code_row(code)['status'] == 'issued'
    last = rs.attempts(origin.ip)[-1]
    assert (last['outcome'], last['code_id']) == ('rate_limited', None)


def test_the_limit_resets_after_the_window(camp):
    code = camp.issue()[0]
    clock, origin = Clock(), source()
    fail(origin, clock, LIMITS.max_failures)
    clock.advance(LIMITS.window.total_seconds() - 1)
    with pytest.raises(errors.RateLimited) as caught:
        redeem(code, origin, clock)
    assert caught.value.headers == {'Retry-After': '1'}
    clock.advance(1)
    assert not redeem(code, origin, clock).replayed
    fail(origin, clock)  # a fresh window: failures are answered as failures again


def test_the_window_slides_with_the_oldest_failure(camp):
    clock, origin = Clock(), source()
    fail(origin, clock)
    clock.advance(30)
    fail(origin, clock, 2)
    clock.advance(31)  # the first failure has left the window; two remain
    fail(origin, clock)
    with pytest.raises(errors.RateLimited) as caught:
        redeem(codes.generate_code(), origin, clock)
    assert caught.value.headers == {'Retry-After': '29'}


def test_refused_attempts_do_not_extend_the_lockout(camp):
    clock, origin = Clock(), source()
    fail(origin, clock, LIMITS.max_failures)
    for _ in range(5):
        clock.advance(10)
        with pytest.raises(errors.RateLimited):
            redeem(codes.generate_code(), origin, clock)
    clock.advance(11)
    fail(origin, clock)


def test_successes_are_not_throttled(camp):
    camp.stock(7)
    clock, origin = Clock(), source()
    for code in camp.issue(4 * LIMITS.max_failures):
        assert not redeem(code, origin, clock).replayed
        assert redeem(code, origin, clock).replayed


def test_other_networks_are_not_affected(camp):
    clock, noisy = Clock(), source()
    fail(noisy, clock, LIMITS.max_failures)
    fail(source(), clock)  # a different address still gets the ordinary answer


def test_an_ipv6_slash_64_counts_as_one_source(camp):
    clock = Clock()
    prefix = rs.unique_ipv6_prefix()
    for host in range(LIMITS.max_failures):
        fail(source(f'{prefix}::{host + 1:x}'), clock)
    with pytest.raises(errors.RateLimited):
        redeem(codes.generate_code(), source(f'{prefix}:ffff:ffff:ffff:ffff'), clock)
    fail(source(f'{rs.unique_ipv6_prefix()}::1'), clock)  # another /64


def test_parallel_guesses_cannot_overshoot_the_limit(camp):
    origin, clock = source(), Clock()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def guess() -> None:
        barrier.wait()
        try:
            redeem(codes.generate_code(), origin, clock)
        except errors.DomainError as error:
            results.append(error.code)
        finally:
            db.reset_connections()

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ['invalid_code'] * 3 + ['rate_limited'] * 5
    outcomes = sorted(a['outcome'] for a in rs.attempts(origin.ip))
    assert outcomes == ['invalid_code'] * 3 + ['rate_limited'] * 5


def test_the_configured_limit_comes_from_the_environment(monkeypatch):
    from giftcards.config import get_settings

    monkeypatch.setenv('REDEEM_MAX_FAILURES', '4')
    monkeypatch.setenv('REDEEM_FAILURE_WINDOW_S', '120')
    get_settings.cache_clear()
    try:
        assert ratelimit.Limits.configured() == ratelimit.Limits(4, timedelta(seconds=120))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert ratelimit.Limits.configured() == ratelimit.Limits(10, timedelta(minutes=15))


def test_attempts_are_an_append_only_record(camp, owner):
    origin = source()
    fail(origin, Clock())
    where = f"WHERE source_ip = '{origin.ip}'"
    for statement in (
        f'UPDATE redemption_attempts SET outcome = outcome {where}',
        f'DELETE FROM redemption_attempts {where}',
    ):

        def change(uow: db.UnitOfWork, sql: str = statement) -> int:
            return uow.execute(sql)

        with pytest.raises(DatabaseError, match='permission denied'):
            db.in_transaction(change)
        with pytest.raises(DatabaseError, match='append_only'):
            owner.run(statement)
    assert len(rs.attempts(origin.ip)) == 1


# --- fraud review --------------------------------------------------------------------------------------


def test_platform_admins_review_attempts_by_address_and_time(camp):
    clock, origin = Clock(), source(user_agent='curl/8')
    fail(origin, clock, 2)
    clock.advance(120)
    fail(origin, clock)
    admin = camp.tree.platform_admin
    everything = ratelimit.list_attempts(admin, origin.ip, None, 50, None).items
    assert [(a.ip, a.network, a.user_agent, a.outcome) for a in everything] == [
        (origin.ip, f'{origin.ip}/32', 'curl/8', 'invalid_code')
    ] * 3
    assert everything[0].at == clock.now  # newest first
    recent = ratelimit.list_attempts(admin, origin.ip, clock.now - timedelta(seconds=60), 50, None).items
    assert len(recent) == 1
    first = ratelimit.list_attempts(admin, origin.ip, None, 2, None)
    rest = ratelimit.list_attempts(admin, origin.ip, None, 2, first.next_cursor)
    assert [a.id for a in first.items + rest.items] == [a.id for a in everything]
    assert rest.next_cursor is None
    block = '.'.join(origin.ip.split('.')[:3]) + '.0/24'
    assert {a.id for a in everything} <= {a.id for a in ratelimit.list_attempts(admin, block, None, 500, None).items}


def test_only_platform_admins_review_attempts(camp):
    for subject in (camp.tree.client_admin, camp.tree.agency_admin, factories.stranger()):
        with pytest.raises(errors.Forbidden):
            ratelimit.list_attempts(subject, None, None, 50, None)
    with pytest.raises(errors.ValidationFailed, match='ip'):
        ratelimit.list_attempts(camp.tree.platform_admin, 'not-an-ip', None, 50, None)
