"""AdvertisementMonitorManager1: or_patterns monitors learnt from the client's InterfacesAdded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from bluezoned.sim.bluez import Report, SimulatedBluez, en_report
from tests.fixtures_bluez import wait_until
from tests.sim.advert_client import AppRoot, TestMonitor

ROOT = "/org/bluezoned/monitor0"
EN_PATTERN = (0, 0x16, b"\x6f\xfd")


@pytest.fixture
async def client(system_bus: str) -> AsyncIterator[MessageBus]:
    bus = await MessageBus(bus_address=system_bus).connect()
    yield bus
    bus.disconnect()


async def register_monitor(bus: MessageBus, member: str = "RegisterMonitor") -> Message:
    return await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez/hci0",
            interface="org.bluez.AdvertisementMonitorManager1",
            member=member,
            signature="o",
            body=[ROOT],
        )
    )


async def next_event(monitor: TestMonitor) -> tuple[str, str]:
    return await asyncio.wait_for(monitor.events.get(), 5)


async def test_monitor_activated_and_told_of_matching_devices(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    monitor = TestMonitor([EN_PATTERN])
    assert (await register_monitor(client)).message_type is MessageType.METHOD_RETURN
    client.export(ROOT, monitor)  # after registering, as bleak does (linux-ble.md §9.7 item 5)
    assert await next_event(monitor) == ("Activate", "")
    bluez.temporary_timeout = 0.2
    assert bluez.report("hci0", en_report("12:34:56:78:9A:BC", bytes(20), -60, flags=None))
    assert bluez.report("hci0", en_report("12:34:56:78:9A:BC", bytes(20), -61, flags=None))
    assert not bluez.report("hci0", Report("AA:BB:CC:DD:EE:FF", -50, flags=0x06))
    path = "/org/bluez/hci0/dev_12_34_56_78_9A_BC"
    assert await next_event(monitor) == ("DeviceFound", path)
    assert await next_event(monitor) == ("DeviceLost", path)  # expired after TemporaryTimeout
    assert (await register_monitor(client, "UnregisterMonitor")).message_type is (
        MessageType.METHOD_RETURN
    )
    assert not bluez.is_listening("hci0")


async def test_monitor_of_unknown_type_is_released(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    monitor = TestMonitor([EN_PATTERN], monitor_type="rssi_only")
    await register_monitor(client)
    client.export(ROOT, monitor)
    assert await next_event(monitor) == ("Release", "")
    assert not bluez.is_listening("hci0")


async def test_monitor_exported_before_registering_is_found(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    client.export(f"{ROOT}/m0", TestMonitor([EN_PATTERN]))
    client.export(ROOT, AppRoot())
    await register_monitor(client)
    await wait_until(lambda: bluez.is_listening("hci0"))


async def test_duplicate_registration(bluez: SimulatedBluez, client: MessageBus) -> None:
    await register_monitor(client)
    assert (await register_monitor(client)).error_name == "org.bluez.Error.AlreadyExists"
