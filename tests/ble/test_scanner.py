"""The bleak scanner against the simulated bluetoothd: unmodified bleak through a real dbus-daemon."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast import Variant

from bluezoned.ble.payload import RejectReason
from bluezoned.ble.scanner import BleakSightingScanner, DropReason
from bluezoned.const import EN_SERVICE_UUID
from bluezoned.errors import BluetoothUnavailable, BluetoothUnavailableReason
from bluezoned.models import Sighting
from bluezoned.sim.bluez import AdapterConfig, Report, SimulatedBluez, en_report
from tests.fixtures_bluez import HCI0_ADDRESS, HCI1_ADDRESS, wait_until

T = 1_800_000_000.0
PHONE = "3A:11:22:33:44:55"
RPI = bytes(range(16))
AEM = b"\x40\x08\x00\x00"

Factory = Callable[..., Awaitable[SimulatedBluez]]


def _scanner(adapter: str = "hci0", **kw: object) -> BleakSightingScanner:
    kw.setdefault("clock", lambda: T)
    kw.setdefault("call_timeout", 2.0)
    kw.setdefault("start_timeout", 3.0)
    kw.setdefault("retry_base", 0.02)
    kw.setdefault("retry_cap", 0.2)
    return BleakSightingScanner(adapter, **kw)  # type: ignore[arg-type]


async def _active_bluez(factory: Factory, *names: str, **kw: object) -> SimulatedBluez:
    addresses = {"hci0": HCI0_ADDRESS, "hci1": HCI1_ADDRESS}
    return await factory(
        adapters=[AdapterConfig(name=n, address=addresses[n]) for n in names or ("hci0",)],
        seed=1,
        **kw,
    )


async def test_active_scan_gets_every_report_with_fresh_rssi(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="auto")  # no monitor manager: active
    stop = await scanner.start()
    try:
        assert scanner.stats.mode == "active"
        (session,) = bluez.discovery_clients("hci0").values()
        assert session is not None
        assert session.duplicate_data
        assert session.rssi == -127
        assert session.transport == "le"
        assert EN_SERVICE_UUID in session.uuids
        # bluetoothd alone would signal only the 8 dBm moves and de-duplicated data
        rssis = [-60, -62, -61, -75, -74]
        for rssi in rssis:
            assert bluez.report("hci0", en_report(PHONE, RPI + AEM, rssi, flags=None))
        await wait_until(lambda: scanner.queue.qsize() == 5, what="five sightings")
        got = scanner.drain()
        assert [s.rssi for s in got] == rssis
        assert got[0] == Sighting(T, RPI, AEM, -60, PHONE, "hci0")
        assert scanner.stats.accepted == 5
    finally:
        await stop()
    assert bluez.discovery_clients("hci0") == {}
    await stop()


async def test_passive_scan_where_monitors_exist(bluez: SimulatedBluez) -> None:
    scanner = _scanner(mode="auto")
    stop = await scanner.start()
    try:
        assert scanner.stats.mode == "passive"
        assert bluez.discovery_clients("hci0") == {}
        # bleak exports its monitor after RegisterMonitor returns; bluetoothd then activates it
        await wait_until(lambda: bluez.is_listening("hci0"), what="the monitor to be active")
        bluez.report("hci0", en_report(PHONE, RPI + AEM, -50, flags=None))
        bluez.report("hci0", Report(address="3A:00:00:00:00:09", rssi=-40, name="headphones"))
        sighting = await scanner.get()
        assert (sighting.rpi, sighting.aem, sighting.rssi) == (RPI, AEM, -50)
    finally:
        await stop()
    assert not bluez.is_listening("hci0")


async def test_adapter_chosen_by_mac_among_two(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory, "hci0", "hci1")
    scanner = _scanner(HCI1_ADDRESS, mode="active")
    stop = await scanner.start()
    try:
        assert scanner.stats.adapter == "hci1"
        assert bluez.discovery_clients("hci0") == {}
        assert len(bluez.discovery_clients("hci1")) == 1
        bluez.report("hci1", en_report(PHONE, RPI + AEM, -55))
        assert (await scanner.get()).adapter == "hci1"
    finally:
        await stop()


@pytest.mark.parametrize("length", [0, 16, 19, 21, 31])
async def test_malformed_service_data_is_counted_and_dropped(
    bluez_factory: Factory, length: int
) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    try:
        bluez.report("hci0", en_report(PHONE, bytes(length), -60))
        bluez.report("hci0", en_report("3A:00:00:00:00:02", RPI + AEM, -61))
        good = await scanner.get()  # the good advert after the bad one arrives: nothing broke
        assert good.rssi == -61
        assert scanner.stats.rejected == {RejectReason.EN_WRONG_LENGTH: 1}
        assert scanner.stats.received == 2
    finally:
        await stop()


async def test_mistyped_service_data_does_not_break_the_scanner(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    try:
        hostile = Report(
            address=PHONE,
            rssi=-60,
            service_data={EN_SERVICE_UUID: Variant("s", "not bytes at all")},
            uuids=(EN_SERVICE_UUID,),
        )
        bluez.report("hci0", hostile)
        bluez.report("hci0", en_report("3A:00:00:00:00:02", RPI + AEM, -61))
        assert (await scanner.get()).rssi == -61
    finally:
        await stop()


async def test_flood_of_10000_ids_keeps_the_queue_bounded(bluez_factory: Factory) -> None:
    # bluetoothd's own device cache is bounded too; a small one keeps the removal burst at
    # StopDiscovery short
    bluez = await _active_bluez(bluez_factory, max_devices=300)
    scanner = _scanner(mode="active", queue_size=1_000)
    stop = await scanner.start()
    stats = scanner.stats

    def received_at_least(n: int) -> Callable[[], bool]:
        return lambda: stats.received >= n

    try:
        for i in range(10_000):
            rpi = hashlib.blake2b(i.to_bytes(4, "big"), digest_size=16).digest()
            address = f"3A:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}"
            bluez.report("hci0", en_report(address, rpi + AEM, -70))
            if i % 50 == 49:
                # Paced like a controller: dbus-fast 5.2 drops a connection whose socket
                # fills up (a send retried while a partial write is pending gets EAGAIN).
                await wait_until(received_at_least(i + 1), limit=10)
        await wait_until(lambda: stats.received >= 10_000, limit=20, what="the flood")
        assert scanner.queue.qsize() == 1_000
        assert stats.accepted == 1_000
        assert stats.overflow == 9_000
        assert len({s.rpi for s in scanner.drain()}) == 1_000
    finally:
        await stop()


async def test_in_progress_on_start_is_retried(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    bluez.fail_next("StartDiscovery", "org.bluez.Error.InProgress", "Operation already in progress")
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    try:
        assert scanner.stats.start_failures["org.bluez.Error.InProgress"] == 1
        assert scanner.stats.scanning
        bluez.report("hci0", en_report(PHONE, RPI + AEM, -60))
        await scanner.get()
    finally:
        await stop()


async def test_not_ready_everywhere_fails_start_with_rollback(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    for _ in range(3):
        bluez.fail_next("StartDiscovery", "org.bluez.Error.NotReady", "Resource Not Ready")
    scanner = _scanner(mode="active", start_attempts=3)
    with pytest.raises(BluetoothUnavailable) as info:
        await scanner.start()
    assert info.value.reason is BluetoothUnavailableReason.NOT_POWERED
    assert bluez.discovery_clients("hci0") == {}
    stop = await scanner.start()  # rolled back cleanly: it can start again
    await stop()


async def test_unpowered_or_missing_adapter_is_unavailable(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    bluez.set_powered("hci0", False)
    with pytest.raises(BluetoothUnavailable) as info:
        await _scanner(mode="active", start_attempts=1).start()
    assert info.value.reason is BluetoothUnavailableReason.NOT_POWERED
    with pytest.raises(BluetoothUnavailable) as info:
        await _scanner("hci5", start_attempts=1).start()
    assert info.value.reason is BluetoothUnavailableReason.NO_ADAPTER


async def test_adapter_removed_and_readded(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    try:
        config = bluez.remove_adapter("hci0")
        await wait_until(lambda: not scanner.stats.scanning, what="scanner noticing the loss")
        bluez.add_adapter(config)
        await wait_until(lambda: scanner.stats.scanning, what="scan restarted")
        assert scanner.stats.restarts >= 1
        assert len(bluez.discovery_clients("hci0")) == 1
        bluez.report("hci0", en_report(PHONE, RPI + AEM, -60))
        await scanner.get()
        await wait_until(lambda: scanner.stats.received == 1, what="exactly one callback")
        assert scanner.queue.empty()  # no zombie callback from the old scan
    finally:
        await stop()


@pytest.mark.parametrize("graceful", [False, True])
async def test_survives_bluetoothd_restart(bluez_factory: Factory, graceful: bool) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    try:
        await bluez.restart(downtime=0.05, graceful=graceful)
        await wait_until(
            lambda: len(bluez.discovery_clients("hci0")) == 1, limit=2, what="discovery again"
        )
        await wait_until(lambda: scanner.stats.scanning, what="scanning flag")
        bluez.report("hci0", en_report(PHONE, RPI + AEM, -60))
        assert (await scanner.get()).rssi == -60
    finally:
        await stop()


async def test_watchdog_restarts_a_quiet_scan(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active", watchdog_seconds=0.2)
    stop = await scanner.start()
    try:
        await wait_until(lambda: scanner.stats.watchdog_restarts >= 1, what="a watchdog restart")
        await wait_until(lambda: scanner.stats.restarts >= 1, what="a successful restart")
        await wait_until(lambda: len(bluez.discovery_clients("hci0")) == 1, what="discovery again")
    finally:
        await stop()


async def test_reports_without_rssi_are_not_sightings() -> None:
    scanner = _scanner(mode="active")
    callback = scanner._callback(scanner._generation)  # the function bleak calls
    service_data = {EN_SERVICE_UUID: RPI + AEM}
    for props in ({}, {"Address": PHONE}):  # a cached property change carries no RSSI
        adv = AdvertisementData(
            local_name=None,
            manufacturer_data={},
            service_data=service_data,
            service_uuids=[EN_SERVICE_UUID],
            tx_power=None,
            rssi=-60,
            platform_data=("/org/bluez/hci0/dev_x", props),
        )
        callback(BLEDevice(PHONE, None, {}), adv)
    assert scanner.stats.dropped[DropReason.NO_RSSI] == 2
    assert scanner.queue.empty()


async def test_in_progress_on_stop_is_absorbed(bluez_factory: Factory) -> None:
    bluez = await _active_bluez(bluez_factory)
    scanner = _scanner(mode="active")
    stop = await scanner.start()
    bluez.fail_next("StopDiscovery", "org.bluez.Error.InProgress", "Operation already in progress")
    await stop()  # bleak 3.1 retries Start+Stop (bluez/bluez#807); nothing may leak out
    assert bluez.discovery_clients("hci0") == {}
    stop = await scanner.start()
    await stop()
