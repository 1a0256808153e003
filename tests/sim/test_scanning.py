"""bluetoothd's scanning behaviours as seen by unmodified bleak (linux-ble.md §3, §7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from bleak import BleakScanner
from bleak.args.bluez import BlueZDiscoveryFilters, BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from bluezoned.const import EN_SERVICE_UUID
from bluezoned.sim.bluez import AdapterConfig, Report, SimulatedBluez, en_report
from tests.fixtures_bluez import HCI0_ADDRESS, HCI1_ADDRESS, wait_until

ADDR = "12:34:56:78:9A:BC"
SD = bytes(range(20))
RECIPE_A: BlueZDiscoveryFilters = {"DuplicateData": True, "RSSI": -127}
"""linux-ble.md §3 recipe A: every report, fresh RSSI."""

Seen = asyncio.Queue[tuple[BLEDevice, AdvertisementData]]


@asynccontextmanager
async def scanning(**bluez_args: Any) -> AsyncIterator[Seen]:
    seen: Seen = asyncio.Queue()
    scanner = BleakScanner(
        lambda d, a: seen.put_nowait((d, a)),
        service_uuids=[EN_SERVICE_UUID] if bluez_args.pop("uuids", False) else None,
        scanning_mode=bluez_args.pop("mode", "active"),
        bluez=cast(BlueZScannerArgs, {"adapter": "hci0", **bluez_args}),
    )
    await scanner.start()
    try:
        yield seen
    finally:
        await scanner.stop()


async def drain(seen: Seen, wait: float = 0.1) -> list[AdvertisementData]:
    """Everything delivered until ``wait`` s pass with nothing new."""
    out = []
    while True:
        try:
            out.append((await asyncio.wait_for(seen.get(), wait))[1])
        except TimeoutError:
            return out


async def test_default_filters_deduplicate_and_leave_rssi_stale(bluez: SimulatedBluez) -> None:
    async with scanning() as seen:
        for rssi in (-60, -62, -61, -75, -74):
            bluez.report("hci0", en_report(ADDR, SD, rssi))
        got = await drain(seen)
    # -60 (new), -75 (moved >= 8 dBm); -62/-61/-74 are below the threshold and data is unchanged
    assert [a.rssi for a in got] == [-60, -75]


async def test_duplicate_data_and_rssi_filter_deliver_every_report(bluez: SimulatedBluez) -> None:
    async with scanning(filters=RECIPE_A) as seen:
        for rssi in (-60, -62, -61, -75, -74):
            bluez.report("hci0", en_report(ADDR, SD, rssi))
        got = await drain(seen)
    assert [a.rssi for a in got] == [-60, -62, -61, -75, -74]
    assert all(a.service_data == {EN_SERVICE_UUID: SD} for a in got)


async def test_duplicate_data_without_rssi_filter_repeats_with_stale_rssi(
    bluez: SimulatedBluez,
) -> None:
    async with scanning(filters={"DuplicateData": True}) as seen:
        for rssi in (-60, -62, -61):
            bluez.report("hci0", en_report(ADDR, SD, rssi))
        got = await drain(seen)
    assert [a.rssi for a in got] == [-60, -60, -60]


async def test_changed_service_data_is_signalled_without_duplicate_data(
    bluez: SimulatedBluez,
) -> None:
    async with scanning() as seen:
        bluez.report("hci0", en_report(ADDR, SD, -60))
        bluez.report("hci0", en_report(ADDR, SD, -60))
        bluez.report("hci0", en_report(ADDR, bytes(20), -60))
        got = await drain(seen)
    assert [a.service_data[EN_SERVICE_UUID] for a in got] == [SD, bytes(20)]


async def test_broadcast_without_flags_needs_a_filtered_discovery(bluez: SimulatedBluez) -> None:
    no_flags = en_report(ADDR, SD, -60, flags=None)
    async with scanning() as seen:
        assert not bluez.report("hci0", no_flags)
        assert await drain(seen, 0.1) == []
    async with scanning(uuids=True, filters=RECIPE_A) as seen:
        assert bluez.report("hci0", no_flags)
        assert len(await drain(seen)) == 1


async def test_uuid_filter_and_rssi_floor(bluez: SimulatedBluez) -> None:
    other = Report(address="AA:BB:CC:DD:EE:01", rssi=-50, uuids=("180f",), flags=0x06)
    async with scanning(uuids=True, filters={"DuplicateData": True, "RSSI": -80}) as seen:
        assert not bluez.report("hci0", other)
        assert not bluez.report("hci0", en_report(ADDR, SD, -90))
        assert bluez.report("hci0", en_report(ADDR, SD, -70))
        got = await drain(seen)
    assert [a.rssi for a in got] == [-70]


async def test_malformed_service_data_reaches_the_client(bluez: SimulatedBluez) -> None:
    async with scanning(filters=RECIPE_A) as seen:
        bluez.report("hci0", en_report(ADDR, SD[:19], -60))
        bluez.report("hci0", en_report("12:34:56:78:9A:BD", SD + b"\x00", -60))
        odd = Report(
            address="12:34:56:78:9A:BE",
            rssi=-60,
            service_data={EN_SERVICE_UUID: Variant("s", "not bytes")},
            flags=0x1A,
        )
        bluez.report("hci0", odd)
        got = await drain(seen)
    # wrong lengths reach the callback; a non-"ay" value makes bleak's own handler raise and the
    # advert is lost inside bleak (linux-ble.md §7.5), exactly as with a hostile bluetoothd
    assert [a.service_data[EN_SERVICE_UUID] for a in got] == [SD[:19], SD + b"\x00"]


async def test_stopping_discovery_removes_non_connectable_devices(bluez: SimulatedBluez) -> None:
    async with scanning() as seen:
        bluez.report("hci0", en_report(ADDR, SD, -60))
        bluez.report("hci0", Report("AA:BB:CC:DD:EE:02", -50, flags=0x06, connectable=True))
        await drain(seen)
        assert set(bluez.devices("hci0")) == {ADDR, "AA:BB:CC:DD:EE:02"}
    kept = bluez.devices("hci0")
    assert set(kept) == {"AA:BB:CC:DD:EE:02"}
    assert "RSSI" not in kept["AA:BB:CC:DD:EE:02"]
    assert not bluez.report("hci0", en_report(ADDR, SD, -60))  # nobody discovers: dropped


async def test_devices_expire_after_temporary_timeout(bluez: SimulatedBluez) -> None:
    bluez.temporary_timeout = 0.2
    async with scanning(filters=RECIPE_A) as seen:
        bluez.report("hci0", en_report(ADDR, SD, -60))
        await asyncio.wait_for(seen.get(), 5)
        await wait_until(lambda: not bluez.devices("hci0"))
        assert bluez.stats["devices_expired"] == 1


async def test_passive_scan_with_or_patterns(bluez: SimulatedBluez) -> None:
    pattern = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x6f\xfd")
    async with scanning(mode="passive", or_patterns=[pattern]) as seen:
        # bleak exports the monitor after RegisterMonitor returns
        await wait_until(lambda: bluez.is_listening("hci0"))
        assert bluez.report("hci0", en_report(ADDR, SD, -60, flags=None))
        assert not bluez.report("hci0", Report("AA:BB:CC:DD:EE:03", -50, flags=0x06))
        got = await drain(seen)
    assert [a.service_data for a in got] == [{EN_SERVICE_UUID: SD}]
    members = [c.member for c in bluez.calls]
    assert "RegisterMonitor" in members
    assert "UnregisterMonitor" in members


async def test_passive_scan_without_experimental_fails_like_bleak_expects(
    bluez_factory: Any,
) -> None:
    await bluez_factory(adapters=[AdapterConfig(name="hci0", experimental=False)])
    pattern = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x6f\xfd")
    with pytest.raises(BleakError, match="experimental"):
        async with scanning(mode="passive", or_patterns=[pattern]):
            pass


async def call(
    bus: MessageBus, member: str, signature: str = "", body: list[Any] | None = None
) -> Message:
    return await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez/hci0",
            interface="org.bluez.Adapter1",
            member=member,
            signature=signature,
            body=body or [],
        )
    )


async def test_two_clients_hold_separate_sessions(bluez: SimulatedBluez, system_bus: str) -> None:
    a = await MessageBus(bus_address=system_bus).connect()
    b = await MessageBus(bus_address=system_bus).connect()
    try:
        assert (await call(a, "StartDiscovery")).message_type is MessageType.METHOD_RETURN
        again = await call(a, "StartDiscovery")
        assert again.error_name == "org.bluez.Error.InProgress"
        assert (await call(b, "StartDiscovery")).message_type is MessageType.METHOD_RETURN
        assert set(bluez.discovery_clients()) == {a.unique_name, b.unique_name}
        assert (await call(a, "StopDiscovery")).message_type is MessageType.METHOD_RETURN
        stop_again = await call(a, "StopDiscovery")
        assert stop_again.error_name == "org.bluez.Error.Failed"
        assert bluez.is_listening("hci0")  # b still discovers
        b.disconnect()  # a client leaving the bus ends its session
        await wait_until(lambda: not bluez.discovery_clients())
    finally:
        a.disconnect()


async def test_filter_validation(bluez: SimulatedBluez, system_bus: str) -> None:
    bus = await MessageBus(bus_address=system_bus).connect()
    try:
        both = {"RSSI": Variant("n", -80), "Pathloss": Variant("q", 40)}
        reply = await call(bus, "SetDiscoveryFilter", "a{sv}", [both])
        assert reply.error_name == "org.bluez.Error.InvalidArguments"
        reply = await call(bus, "SetDiscoveryFilter", "a{sv}", [{"RSSI": Variant("n", -128)}])
        assert reply.error_name == "org.bluez.Error.InvalidArguments"
        reply = await call(bus, "SetDiscoveryFilter", "a{sv}", [{"Bogus": Variant("b", True)}])
        assert reply.error_name == "org.bluez.Error.InvalidArguments"
    finally:
        bus.disconnect()


async def test_not_ready_when_powered_off(bluez: SimulatedBluez) -> None:
    bluez.set_powered("hci0", False)
    with pytest.raises(BleakDBusError) as err:
        async with scanning():
            pass
    assert err.value.dbus_error == "org.bluez.Error.NotReady"


async def test_power_off_ends_discovery(bluez: SimulatedBluez) -> None:
    async with scanning() as seen:
        bluez.set_powered("hci0", False)
        assert not bluez.report("hci0", en_report(ADDR, SD, -60))
        assert await drain(seen, 0.1) == []
    # bleak tolerates NotReady on stop


async def test_in_progress_on_start_then_retry(bluez: SimulatedBluez) -> None:
    bluez.fail_next("StartDiscovery", "org.bluez.Error.InProgress", "Operation already in progress")
    with pytest.raises(BleakDBusError) as err:
        async with scanning():
            pass
    assert err.value.dbus_error == "org.bluez.Error.InProgress"
    async with scanning() as seen:
        bluez.report("hci0", en_report(ADDR, SD, -60))
        assert len(await drain(seen)) == 1


async def test_in_progress_on_stop_is_recovered_by_bleak(bluez: SimulatedBluez) -> None:
    async with scanning():
        bluez.fail_next(
            "StopDiscovery", "org.bluez.Error.InProgress", "Operation already in progress"
        )
    members = [c.member for c in bluez.calls if c.interface == "org.bluez.Adapter1"]
    assert members[-4:] == [
        "StopDiscovery",
        "StartDiscovery",
        "StopDiscovery",
        "SetDiscoveryFilter",
    ]
    assert bluez.discovery_clients() == {}


async def test_adapter_removed_and_readded(bluez: SimulatedBluez) -> None:
    seen: Seen = asyncio.Queue()
    scanner = BleakScanner(lambda d, a: seen.put_nowait((d, a)), bluez={"adapter": "hci0"})
    await scanner.start()
    config = bluez.remove_adapter("hci0")
    assert not bluez.report("hci0", en_report(ADDR, SD, -60))
    bluez.add_adapter(config)
    assert not bluez.report("hci0", en_report(ADDR, SD, -60))  # bleak does not restart by itself
    with pytest.raises(BleakDBusError, match="No discovery started"):
        await scanner.stop()
    async with scanning() as fresh:
        bluez.report("hci0", en_report(ADDR, SD, -60))
        assert len(await drain(fresh)) == 1
    assert seen.empty()


async def test_bluetoothd_restart(bluez: SimulatedBluez) -> None:
    seen: Seen = asyncio.Queue()
    scanner = BleakScanner(lambda d, a: seen.put_nowait((d, a)), bluez={"adapter": "hci0"})
    await scanner.start()
    bluez.report("hci0", en_report(ADDR, SD, -60))
    assert len(await drain(seen)) == 1
    await bluez.restart(downtime=0.05)
    assert bluez.adapter_names == ["hci0"]
    assert bluez.discovery_clients() == {}
    assert not bluez.report("hci0", en_report(ADDR, SD, -60))
    with pytest.raises(BleakDBusError, match="No discovery started"):
        await scanner.stop()
    async with scanning() as fresh:  # a new scanner after the restart works
        bluez.report("hci0", en_report(ADDR, SD, -60))
        assert len(await drain(fresh)) == 1


async def test_adapter_pinned_by_name_among_two(bluez_factory: Any) -> None:
    bluez = await bluez_factory(
        adapters=[
            AdapterConfig(name="hci0", address=HCI0_ADDRESS),
            AdapterConfig(name="hci1", address=HCI1_ADDRESS),
        ]
    )
    seen: Seen = asyncio.Queue()
    scanner = BleakScanner(lambda d, a: seen.put_nowait((d, a)), bluez={"adapter": "hci1"})
    await scanner.start()
    try:
        assert not bluez.report("hci0", en_report(ADDR, SD, -60))
        assert bluez.report("hci1", en_report(ADDR, SD, -55))
        device, adv = await asyncio.wait_for(seen.get(), 5)
    finally:
        await scanner.stop()
    assert adv.rssi == -55
    assert device.details["path"] == "/org/bluez/hci1/dev_12_34_56_78_9A_BC"


async def test_silent_stall_keeps_discovering_but_delivers_nothing(bluez: SimulatedBluez) -> None:
    async with scanning() as seen:
        bluez.set_stalled("hci0")
        assert not bluez.report("hci0", en_report(ADDR, SD, -60))
        assert bluez.devices("hci0") == {}
        assert bluez.is_listening("hci0")
        bluez.set_stalled("hci0", False)
        assert bluez.report("hci0", en_report(ADDR, SD, -60))
        assert len(await drain(seen)) == 1


async def test_graceful_restart_announces_adapters_again(bluez: SimulatedBluez) -> None:
    async with scanning() as seen:  # bleak's per-loop manager now caches hci0
        bluez.report("hci0", en_report(ADDR, SD, -60))
        assert len(await drain(seen)) == 1
    await bluez.restart(downtime=0.05, graceful=True)  # InterfacesRemoved: bleak forgets hci0
    seen = asyncio.Queue()
    scanner = BleakScanner(lambda d, a: seen.put_nowait((d, a)), bluez={"adapter": "hci0"})
    async with asyncio.timeout(5):
        while True:  # hci0 comes back through InterfacesAdded, as bluetoothd announces it
            try:
                await scanner.start()
                break
            except BleakError:
                await asyncio.sleep(0.01)
    try:
        bluez.report("hci0", en_report(ADDR, SD, -61))
        assert [a.rssi for a in await drain(seen)] == [-61]
    finally:
        await scanner.stop()
