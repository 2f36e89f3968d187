"""Faults at each step of the vendor path. Whatever breaks, once recovery has run every charged redemption has
exactly one card or a refund, no vendor sold a key twice, and the ledger checks clean."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import pytest
from giftcard_local.fake_vendors import FakeVendor
from giftcards import card_claims, db, errors, ledger, provisioning, recovery
from giftcards.db import UnitOfWork
from giftcards.vendors import VendorOrder, load_vendors

from tests import factories
from tests import provisioning_support as ps

pytestmark = pytest.mark.slow


class ProcessDied(BaseException):
    """Stands for the Lambda being killed: nothing after it runs, no handler sees it."""


def crash(*_: Any, **__: Any) -> Any:
    raise RuntimeError('simulated crash')


def die(*_: Any, **__: Any) -> Any:
    raise ProcessDied


def killing_connection(owner: Any, original: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, but first the server ends the calling transaction's connection (pg_terminate_backend)."""

    def wrapper(uow: UnitOfWork, *args: Any, **kwargs: Any) -> Any:
        pid = uow.value('SELECT pg_backend_pid()')
        owner.run('SELECT pg_terminate_backend(:pid)', pid=pid)
        return original(uow, *args, **kwargs)

    return wrapper


def expire_leases(campaign_id: str) -> None:
    """Time passing: the leases of the campaign's pending redemptions run out."""
    db.in_transaction(
        lambda uow: uow.execute(
            'UPDATE redemptions SET next_attempt_at = now()'
            " WHERE campaign_id = CAST(:c AS uuid) AND status = 'pending'",
            c=campaign_id,
        )
    )


@contextmanager
def patched(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, replacement: Any) -> Iterator[None]:
    """`target.name` replaced for the duration of the block only."""
    with monkeypatch.context() as m:
        m.setattr(target, name, replacement)
        yield


def recover_until_settled(campaign_id: str) -> None:
    recovery.recover_pending(older_than_s=0)
    assert all(r['status'] != 'pending' for r in ps.redemptions_of(campaign_id)), ps.redemptions_of(campaign_id)


# --- one scenario per step: the fault, what the caller is told, then recovery ---------------------------


Fault = Callable[[pytest.MonkeyPatch, Any, FakeVendor], AbstractContextManager[Any]]


def vendor_mode(mode: str) -> Fault:
    def inject(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> AbstractContextManager[Any]:
        vendor.set_mode(mode)
        return nullcontext()

    return inject


def before_the_call(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> Any:
    return patched(monkeypatch, recovery, 'load_vendors', crash)


def process_died_before_the_call(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> Any:
    return patched(monkeypatch, recovery, 'load_vendors', die)


def crash_before_the_card_is_stored(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> Any:
    return patched(monkeypatch, card_claims, 'store_vendor_card', crash)


def process_died_before_the_card_is_stored(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> Any:
    return patched(monkeypatch, card_claims, 'store_vendor_card', die)


def connection_killed_while_storing_the_card(monkeypatch: pytest.MonkeyPatch, owner: Any, vendor: FakeVendor) -> Any:
    return patched(
        monkeypatch, card_claims, 'store_vendor_card', killing_connection(owner, card_claims.store_vendor_card)
    )


# A trigger that ends its own session as a redemption's charge is written, once per sequence: inside
# provisioning's one call of the database, before anything of it is committed.
KILL_AT_THE_CHARGE = """
CREATE OR REPLACE FUNCTION test_kill_at_the_charge() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF NEW.kind = 'redemption' AND nextval(TG_ARGV[0]::regclass) = 1 THEN
    PERFORM pg_terminate_backend(pg_backend_pid());
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_kill_at_the_charge BEFORE INSERT ON credit_transfers
  FOR EACH ROW EXECUTE FUNCTION test_kill_at_the_charge('{sequence}');
"""


@contextmanager
def connection_killed_at_the_charge(owner: Any) -> Iterator[None]:
    """The connection ends after the card was claimed and the redemption written, as the charge is written."""
    sequence = f'test_kill_{uuid.uuid4().hex[:12]}'
    owner.run(f'CREATE SEQUENCE {sequence}')
    owner.run(KILL_AT_THE_CHARGE.format(sequence=sequence))
    try:
        yield
    finally:
        owner.run('DROP TRIGGER test_kill_at_the_charge ON credit_transfers')
        owner.run(f'DROP SEQUENCE {sequence}')


SCENARIOS: dict[str, Fault] = {
    'before the vendor call': before_the_call,
    'process died before the vendor call': process_died_before_the_call,
    'vendor timeout': vendor_mode('timeout'),
    'vendor 5xx': vendor_mode('error'),
    'vendor sold, answer lost': vendor_mode('drop_response'),
    'crash after the vendor answered, before the card was stored': crash_before_the_card_is_stored,
    'process died before the card was stored': process_died_before_the_card_is_stored,
    'connection killed while storing the card': connection_killed_while_storing_the_card,
}


@pytest.mark.parametrize('scenario', list(SCENARIOS))
def test_a_fault_on_the_vendor_path_leaves_a_held_charge_that_recovery_fulfils_once(
    owner: Any, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    code = ps.new_code()
    with ps.fake_vendors(monkeypatch, 'tango-a', timeout_s=0.5) as (vendor,):
        with (
            SCENARIOS[scenario](monkeypatch, owner, vendor),
            pytest.raises((errors.ServiceUnavailable, ProcessDied)) as caught,
        ):
            s.provision(code)
        vendor.set_mode('ok')

        if isinstance(caught.value, errors.ServiceUnavailable):
            assert caught.value.code == 'fulfilment_pending' and caught.value.headers['Retry-After']
        (row,) = ps.redemptions_of(s.campaign_id)
        assert row['status'] == 'pending'
        assert factories.balance_cents(s.paying_account) == 7_500  # the charge is held
        if isinstance(caught.value, ProcessDied):
            expire_leases(s.campaign_id)

        recover_until_settled(s.campaign_id)

        (row,) = ps.redemptions_of(s.campaign_id)
        assert row['status'] == 'fulfilled'
        (sold,) = [o for o in vendor.orders if o.key == row['vendor_key']]
        replay = s.provision(code)
        assert replay.replayed and replay.card.card_code == sold.card_code
        assert factories.balance_cents(s.paying_account) == 7_500
        ps.assert_settled(s.campaign_id, vendor)


def test_a_connection_killed_while_charging_charges_nothing_and_the_code_works_again(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    pool = ps.pool(s.admin, s.brand['id'], 2500, 2350, 1)
    code = ps.new_code()
    with connection_killed_at_the_charge(owner), pytest.raises(errors.ServiceUnavailable):
        s.provision(code)

    assert ps.redemptions_of(s.campaign_id) == []
    assert factories.balance_cents(s.paying_account) == 10_000
    assert ps.query('SELECT count(*) AS n FROM available_cards WHERE pool_id = CAST(:p AS uuid)', p=pool) == [{'n': 1}]

    assert s.provision(code).redemption.status == 'fulfilled'
    ps.assert_settled(s.campaign_id)


def test_a_connection_killed_while_refunding_keeps_the_charge_until_recovery_refunds_it(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('refuse')
        with (
            patched(monkeypatch, ledger, 'reverse_transfer', killing_connection(owner, ledger.reverse_transfer)),
            pytest.raises(errors.ServiceUnavailable),
        ):
            s.provision()
        assert factories.balance_cents(s.paying_account) == 7_500
        vendor.set_mode('ok')
        vendor.set_mode('refuse', count=1)  # refuses again; its lookup shows it never sold under the key

        recover_until_settled(s.campaign_id)

        (row,) = ps.redemptions_of(s.campaign_id)
        assert row['status'] == 'failed' and factories.balance_cents(s.paying_account) == 10_000
        ps.assert_settled(s.campaign_id, vendor)


def test_recovery_refunds_once_every_vendor_definitely_refuses(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    with ps.fake_vendors(monkeypatch, 'tango-a', 'tango-b') as (first, second):
        first.set_mode('error')
        with pytest.raises(errors.ServiceUnavailable):
            s.provision()
        first.set_mode('ok')
        first.set_mode('refuse', count=1)  # refuses the re-order; its lookup shows it never sold under the key
        second.set_mode('refuse')

        report = recovery.recover_pending(older_than_s=0)

        (row,) = ps.redemptions_of(s.campaign_id)
        assert row['id'] in report.failed and row['status'] == 'failed'
        assert factories.balance_cents(s.paying_account) == 10_000
        ps.assert_settled(s.campaign_id, first, second)


def test_recovery_leaves_alone_what_another_worker_holds(owner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = ps.setup(owner)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        with patched(monkeypatch, recovery, 'load_vendors', die), pytest.raises(ProcessDied):
            s.provision()
        (row,) = ps.redemptions_of(s.campaign_id)

        assert row['id'] not in recovery.recover_pending(older_than_s=0).fulfilled
        assert vendor.attempts(row['vendor_key']) == 0
        expire_leases(s.campaign_id)
        assert row['id'] in recovery.recover_pending(older_than_s=0).fulfilled


def test_a_replay_waits_for_the_request_holding_the_order_then_answers_its_card(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner)
    code = ps.new_code()
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        with patched(monkeypatch, recovery, 'load_vendors', die), pytest.raises(ProcessDied):
            s.provision(code)

        with pytest.raises(errors.ServiceUnavailable) as caught:  # the lease is held by a request that died
            s.provision(code)
        assert caught.value.code == 'fulfilment_pending'
        expire_leases(s.campaign_id)

        assert provisioning.provision_gift_card(s.request(code), subject=s.tree.integration).replayed
        ps.assert_settled(s.campaign_id, vendor)


def test_a_late_second_confirmation_of_the_order_finds_the_card_already_stored(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner)
    with ps.fake_vendors(monkeypatch, 'tango-a') as (vendor,):
        vendor.set_mode('drop_response')
        with pytest.raises(errors.ServiceUnavailable):
            s.provision()
        vendor.set_mode('ok')
        (row,) = ps.redemptions_of(s.campaign_id)
        pending = recovery.PendingOrder(
            row['id'], row['vendor_key'], s.brand['id'], s.brand['name'], s.denomination_cents, vendor.name
        )
        (client,) = load_vendors()
        card = client.order(VendorOrder(row['vendor_key'], s.brand['name'], s.denomination_cents))  # the replay

        # Two workers confirmed the same order (one of them after its lease ran out): one card is stored.
        assert recovery.store_card(pending, vendor.name, card) is recovery.Outcome.FULFILLED
        assert recovery.store_card(pending, vendor.name, card) is recovery.Outcome.FULFILLED

        stored = ps.query('SELECT count(*) AS n FROM cards WHERE vendor_reference = :r', r=card.vendor_reference)
        assert stored == [{'n': 1}]
        ps.assert_settled(s.campaign_id, vendor)


def test_a_connection_killed_at_the_charge_leaves_nothing_and_the_same_code_then_buys_once(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = ps.setup(owner, funds_cents=10_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, 2)
    code = ps.new_code()
    with connection_killed_at_the_charge(owner), pytest.raises(errors.OutcomeUnknown):
        s.provision(code)
    assert ps.redemptions_of(s.campaign_id) == [] and factories.balance_cents(s.paying_account) == 10_000

    first, again = s.provision(code), s.provision(code)

    assert again.replayed and again.card.card_code == first.card.card_code
    assert factories.balance_cents(s.paying_account) == 7_500
    ps.assert_settled(s.campaign_id)
