"""The real vendor clients against the fake vendor over HTTP on 127.0.0.1: sales, replays, every fault mode, and
`giftcard vendor-fault` switching the fakes of a local server through vendors.json."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from giftcard_local.fake_vendors import FakeVendor, start_fake_vendor
from giftcards.vendors import Vendor, VendorOrder, VendorOutcomeUnknown, VendorRefused, load_vendors
from giftcards.vendors.transport import HttpRequest, send

CLIENT_TIMEOUT_S = 0.5


@pytest.fixture
def fake() -> Iterator[FakeVendor]:
    vendor = start_fake_vendor('fake', client_timeout_s=CLIENT_TIMEOUT_S)
    yield vendor
    vendor.stop()


@pytest.fixture
def tango(fake: FakeVendor) -> Vendor:
    [client] = load_vendors({'VENDORS': json.dumps([fake.tango_config('tango')])})
    return client


@pytest.fixture
def tillo(fake: FakeVendor) -> Vendor:
    [client] = load_vendors({'VENDORS': json.dumps([fake.tillo_config('tillo')])})
    return client


def order(key: str = 'gc-0001', cents: int = 2500) -> VendorOrder:
    return VendorOrder(key, 'Amazon', cents)


def test_order_returns_the_card_the_vendor_sold(fake: FakeVendor, tango: Vendor) -> None:
    card = tango.order(order())

    [sold] = fake.orders
    assert (card.card_code, card.card_number, card.vendor_reference) == (
        sold.card_code,
        sold.card_number,
        sold.reference,
    )
    assert card.cost_cents == sold.cost_cents == 2450
    assert card.replayed is False


def test_same_key_replays_the_same_card_and_sells_once(fake: FakeVendor, tango: Vendor) -> None:
    first = tango.order(order())
    second = tango.order(order())

    assert second.card_code == first.card_code
    assert second.replayed is True
    assert fake.sold_count('gc-0001') == 1
    assert fake.attempts('gc-0001') == 2


def test_same_key_for_another_amount_is_refused_and_sells_nothing_more(fake: FakeVendor, tango: Vendor) -> None:
    tango.order(order(cents=2500))

    with pytest.raises(VendorRefused, match='amount'):
        tango.order(order(cents=5000))

    assert fake.sold_count('gc-0001') == 1


def test_concurrent_orders_with_one_key_sell_once(fake: FakeVendor, tango: Vendor) -> None:
    codes: list[str] = []

    def buy() -> None:
        codes.append(tango.order(order()).card_code)

    threads = [threading.Thread(target=buy) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(codes) == 6
    assert len(set(codes)) == 1
    assert fake.sold_count('gc-0001') == 1


def test_refuse_is_a_definite_refusal_and_sells_nothing(fake: FakeVendor, tango: Vendor) -> None:
    fake.set_mode('refuse')

    with pytest.raises(VendorRefused) as raised:
        tango.order(order())

    assert raised.value.retryable is False
    assert fake.sold_count('gc-0001') == 0


def test_error_is_unknown_sells_nothing_and_a_retry_sells_once(fake: FakeVendor, tango: Vendor) -> None:
    fake.set_mode('error', count=1)

    with pytest.raises(VendorOutcomeUnknown):
        tango.order(order())
    assert fake.sold_count('gc-0001') == 0

    tango.order(order())
    assert fake.sold_count('gc-0001') == 1


def test_timeout_is_unknown_within_the_client_timeout_and_sells_nothing(fake: FakeVendor, tango: Vendor) -> None:
    fake.set_mode('timeout')
    started = time.monotonic()

    with pytest.raises(VendorOutcomeUnknown, match='timed out'):
        tango.order(order())

    assert CLIENT_TIMEOUT_S <= time.monotonic() - started < CLIENT_TIMEOUT_S + 1
    assert fake.sold_count('gc-0001') == 0
    fake.set_mode('ok')
    assert tango.lookup(order()) is None
    assert tango.order(order()).replayed is False
    assert fake.sold_count('gc-0001') == 1


def test_slow_answers_within_the_timeout(fake: FakeVendor, tango: Vendor) -> None:
    fake.set_mode('slow')
    started = time.monotonic()

    card = tango.order(order())

    assert time.monotonic() - started >= fake.slow_s
    assert card.card_code == fake.orders[0].card_code


def test_dropped_response_is_unknown_but_sold_and_recovered_once(fake: FakeVendor, tango: Vendor) -> None:
    fake.set_mode('drop_response', count=1)

    with pytest.raises(VendorOutcomeUnknown):
        tango.order(order())
    [sold] = fake.orders
    assert sold.key == 'gc-0001'

    found = tango.lookup(order())
    again = tango.order(order())

    assert found is not None
    assert found.card_code == again.card_code == sold.card_code
    assert again.replayed is True
    assert fake.sold_count('gc-0001') == 1


def test_lookup_fails_as_unknown_while_the_vendor_errs(fake: FakeVendor, tango: Vendor) -> None:
    tango.order(order())
    fake.set_mode('error')

    with pytest.raises(VendorOutcomeUnknown):
        tango.lookup(order())


def test_wrong_credentials_are_refused(fake: FakeVendor) -> None:
    config = fake.tango_config('tango') | {'credentials': {'platform_name': 'fake-platform', 'platform_key': 'wrong'}}
    [client] = load_vendors({'VENDORS': json.dumps([config])})

    with pytest.raises(VendorRefused, match='401'):
        client.order(order())

    assert fake.orders == []


def test_unreachable_vendor_is_a_retryable_refusal(fake: FakeVendor, tango: Vendor) -> None:
    fake.stop()

    with pytest.raises(VendorRefused) as raised:
        tango.order(order())

    assert raised.value.retryable is True


def test_tillo_client_orders_replays_and_recovers_a_dropped_answer(fake: FakeVendor, tillo: Vendor) -> None:
    first = tillo.order(order('gc-tillo-1'))
    assert tillo.order(order('gc-tillo-1')).card_code == first.card_code
    assert first.pin == fake.orders[0].pin

    fake.set_mode('drop_response', count=1)
    with pytest.raises(VendorOutcomeUnknown):
        tillo.order(order('gc-tillo-2'))
    recovered = tillo.lookup(order('gc-tillo-2'))

    assert recovered is not None
    assert recovered.card_code == fake.orders[1].card_code
    assert tillo.lookup(order('gc-tillo-3')) is None
    assert [fake.sold_count(k) for k in ('gc-tillo-1', 'gc-tillo-2', 'gc-tillo-3')] == [1, 1, 0]


def test_tillo_faults_are_classified(fake: FakeVendor, tillo: Vendor) -> None:
    fake.set_mode('refuse', count=1)
    with pytest.raises(VendorRefused):
        tillo.order(order('gc-tillo-1'))
    fake.set_mode('timeout', count=1)
    with pytest.raises(VendorOutcomeUnknown):
        tillo.order(order('gc-tillo-1'))

    assert fake.sold_count('gc-tillo-1') == 0


def test_mode_switches_over_http_for_the_next_n_requests(fake: FakeVendor, tango: Vendor) -> None:
    body = json.dumps({'mode': 'error', 'count': 2}).encode()
    switched = send(
        HttpRequest('POST', fake.control_url + '/mode', {'Content-Type': 'application/json'}, body),
        connect_timeout_s=1,
        read_timeout_s=1,
    )
    assert switched.status == 200

    for _ in range(2):
        with pytest.raises(VendorOutcomeUnknown):
            tango.order(order())
    tango.order(order())

    assert fake.mode == 'ok'
    assert fake.sold_count('gc-0001') == 1


def test_state_over_http_lists_every_sale_once_with_its_key(fake: FakeVendor, tango: Vendor, tillo: Vendor) -> None:
    tango.order(order('gc-0001'))
    tango.order(order('gc-0001'))  # a replay sells nothing more
    fake.set_mode('drop_response', count=1)
    with pytest.raises(VendorOutcomeUnknown):
        tillo.order(order('gc-0002'))  # sold, answer lost

    answer = send(HttpRequest('GET', fake.control_url + '/state', {}, None), connect_timeout_s=1, read_timeout_s=1)

    assert answer.status == 200
    sales = json.loads(answer.body)['sales']
    assert sorted(sale['key'] for sale in sales) == ['gc-0001', 'gc-0002']
    assert {sale['reference'] for sale in sales} == {o.reference for o in fake.orders}


def test_unknown_mode_is_rejected_over_http(fake: FakeVendor) -> None:
    answer = send(
        HttpRequest('POST', fake.control_url + '/mode', {}, b'{"mode": "explode"}'),
        connect_timeout_s=1,
        read_timeout_s=1,
    )

    assert answer.status == 400
    assert fake.mode == 'ok'


# --- the local server's vendors and `giftcard vendor-fault` --------------------------------------------------------


@pytest.fixture
def local_vendors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Vendor]]:
    from giftcard_local import local_vendors as module

    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))
    env = module.start(tmp_path)
    yield load_vendors(env)
    module.stop()


def _fault(*args: str) -> int:
    from giftcard_local import cli

    return cli.main(['vendor-fault', *args])


def test_local_vendors_are_recorded_and_sell_any_brand(tmp_path: Path, local_vendors: list[Vendor]) -> None:
    record = json.loads((tmp_path / 'vendors.json').read_text())

    assert sorted(record['vendors']) == ['tango', 'tillo']
    assert [v.name for v in local_vendors] == ['tango', 'tillo']
    for vendor in local_vendors:
        assert vendor.order(VendorOrder(f'gc-{vendor.name}-1', 'Any Demo Brand', 1000)).card_code


def test_vendor_fault_switches_one_named_vendor(
    local_vendors: list[Vendor], capsys: pytest.CaptureFixture[str]
) -> None:
    tango, tillo = local_vendors

    assert _fault('refuse', '--vendor', 'tango') == 0

    assert 'tango: refuse' in capsys.readouterr().out
    with pytest.raises(VendorRefused):
        tango.order(order())
    assert tillo.order(order()).card_code


def test_vendor_fault_switches_all_vendors_and_back(local_vendors: list[Vendor]) -> None:
    assert _fault('error') == 0
    for vendor in local_vendors:
        with pytest.raises(VendorOutcomeUnknown):
            vendor.order(order())

    assert _fault('ok') == 0
    for vendor in local_vendors:
        assert vendor.order(order()).card_code


def test_vendor_fault_for_the_next_request_only(local_vendors: list[Vendor]) -> None:
    tango, _ = local_vendors

    assert _fault('error', '--vendor', 'tango', '--count', '1') == 0

    with pytest.raises(VendorOutcomeUnknown):
        tango.order(order())
    assert tango.order(order()).card_code


def test_vendor_fault_unknown_vendor_name_fails(
    local_vendors: list[Vendor], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fault('error', '--vendor', 'acme') == 1
    assert "no fake vendor named 'acme'" in capsys.readouterr().err


def test_vendor_fault_without_a_running_server_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))

    assert _fault('error') == 1
    assert 'no running `giftcard serve`' in capsys.readouterr().err


def test_vendor_fault_after_the_server_stopped_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from giftcard_local import local_vendors as module

    monkeypatch.setenv('GIFTCARD_HOME', str(tmp_path))
    module.start(tmp_path)
    stale = (tmp_path / 'vendors.json').read_text()
    module.stop()
    (tmp_path / 'vendors.json').write_text(stale)  # a server that died without cleaning up

    assert _fault('error') == 1
    assert 'no running `giftcard serve`' in capsys.readouterr().err


def test_stopping_the_local_vendors_removes_their_record(tmp_path: Path) -> None:
    from giftcard_local import local_vendors as module

    module.start(tmp_path)
    module.stop()

    assert not (tmp_path / 'vendors.json').exists()
