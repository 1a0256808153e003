"""The radio world driving the simulated BlueZ, seen through unmodified bleak."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bleak import BleakScanner
from bleak.args.bluez import BlueZDiscoveryFilters
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast.aio import MessageBus

from bluezoned.const import EN_SERVICE_UUID
from bluezoned.exposure.keys import derive_rpik, rpi_interval
from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez, en_report
from bluezoned.sim.world import World
from tests.fixtures_bluez import HCI0_ADDRESS, HCI1_ADDRESS, wait_until
from tests.sim.advert_client import TestAdvertisement, register

RECIPE_A: BlueZDiscoveryFilters = {"DuplicateData": True, "RSSI": -127}
T0 = 1_700_000_000.0
Seen = asyncio.Queue[tuple[BLEDevice, AdvertisementData]]


def scanner_on(adapter: str, seen: Seen) -> BleakScanner:
    return BleakScanner(
        lambda d, a: seen.put_nowait((d, a)),
        service_uuids=[EN_SERVICE_UUID],
        bluez={"adapter": adapter, "filters": RECIPE_A},
    )


async def two_adapters_and_a_client(
    bluez_factory: Any, system_bus: str
) -> tuple[SimulatedBluez, MessageBus]:
    """A simulated BlueZ with hci0 and hci1, and a bus connection to register adverts from."""
    bluez = await bluez_factory(
        adapters=[
            AdapterConfig(name="hci0", address=HCI0_ADDRESS),
            AdapterConfig(name="hci1", address=HCI1_ADDRESS),
        ]
    )
    return bluez, await MessageBus(bus_address=system_bus).connect()


async def test_bleak_hears_the_people_of_the_world(bluez: SimulatedBluez) -> None:
    world = World(bluez, devices=5, seed=1, start_time=T0, static=True, room_m=(3.0, 3.0))
    seen: Seen = asyncio.Queue()
    scanner = scanner_on("hci0", seen)
    await scanner.start()
    try:
        world.advance(2.0)  # ~8 adverts per person, some lost to the channel
        await wait_until(lambda: seen.qsize() >= 10)
    finally:
        await scanner.stop()
    rpiks = [derive_rpik(p.schedule.teks[-1].key_data) for p in world.people]
    heard = set()
    while not seen.empty():
        device, adv = seen.get_nowait()
        rpi = adv.service_data[EN_SERVICE_UUID][:16]
        owners = [i for i, k in enumerate(rpiks) if rpi_interval(k, rpi) is not None]
        assert len(owners) == 1
        heard.add(owners[0])
        assert -100 <= adv.rssi <= -20
        assert device.address == world.people[owners[0]].schedule.at(T0 + 2.0).address
    assert len(heard) >= 3
    assert world.stats.kept >= 10


async def test_running_world_with_speed_up(bluez: SimulatedBluez) -> None:
    world = World(bluez, devices=3, seed=2, speed=10.0, static=True, room_m=(2.0, 2.0))
    seen: Seen = asyncio.Queue()
    scanner = scanner_on("hci0", seen)
    await scanner.start()
    try:
        async with world:
            await wait_until(lambda: seen.qsize() >= 20)
    finally:
        await scanner.stop()
    assert world.now >= 20 * 0.2 / 3  # ten simulated seconds per real second


async def test_two_adapters_hear_each_others_advertisement(
    bluez_factory: Any, system_bus: str
) -> None:
    bluez, advertiser = await two_adapters_and_a_client(bluez_factory, system_bus)
    payload = bytes(range(20))
    advertiser.export("/org/bluezoned/adv", TestAdvertisement(payload))
    assert (await register(advertiser, "/org/bluezoned/adv", adapter="hci0")).body == []
    world = World(bluez, devices=0, seed=3)
    seen0: Seen = asyncio.Queue()
    seen1: Seen = asyncio.Queue()
    scanner0, scanner1 = scanner_on("hci0", seen0), scanner_on("hci1", seen1)
    await scanner0.start()
    await scanner1.start()
    try:
        world.advance(3.0)
        device, adv = await asyncio.wait_for(seen1.get(), 5)
    finally:
        await scanner0.stop()
        await scanner1.stop()
        advertiser.disconnect()
    assert adv.service_data == {EN_SERVICE_UUID: payload}
    assert device.address == bluez.advertisements("hci0")[0].address
    assert seen0.empty()  # a controller does not hear itself


async def test_flood_of_distinct_ids_keeps_memory_bounded(bluez_factory: Any) -> None:
    bluez = await bluez_factory(max_devices=1_000)
    count = 0

    def callback(_d: BLEDevice, _a: AdvertisementData) -> None:
        nonlocal count
        count += 1

    scanner = BleakScanner(callback, bluez={"adapter": "hci0", "filters": RECIPE_A})
    await scanner.start()
    try:
        for i in range(10_000):
            address = f"4A:{i >> 16 & 0xFF:02X}:{i >> 8 & 0xFF:02X}:{i & 0xFF:02X}:00:01"
            bluez.report("hci0", en_report(address, i.to_bytes(20, "big"), -60))
        await wait_until(lambda: count >= 10_000, limit=20)
    finally:
        await scanner.stop()
    assert len(bluez.devices("hci0")) == 0  # stopping discovery drops non-connectable devices
    assert bluez.stats["devices_evicted"] == 9_000
    assert len(bluez.calls) <= 2_000


async def test_powered_off_adapter_keeps_but_does_not_send_its_advertisement(
    bluez_factory: Any, system_bus: str
) -> None:
    bluez, advertiser = await two_adapters_and_a_client(bluez_factory, system_bus)
    advert = TestAdvertisement(bytes(20))
    advertiser.export("/org/bluezoned/adv", advert)
    await register(advertiser, "/org/bluezoned/adv", adapter="hci0")
    world = World(bluez, devices=0, seed=4)
    seen: Seen = asyncio.Queue()
    scanner = scanner_on("hci1", seen)
    await scanner.start()
    try:
        bluez.set_powered("hci0", False)
        assert world.advance(2.0) == 0  # a powered-off adapter puts nothing on the air
        bluez.set_powered("hci0", True)
        world.advance(2.0)
        await asyncio.wait_for(seen.get(), 5)
    finally:
        await scanner.stop()
        advertiser.disconnect()
    assert not advert.released.is_set()  # bluetoothd re-adds it on power-on


async def test_static_people_at_known_distances(bluez: SimulatedBluez) -> None:
    world = World(bluez, seed=11, start_time=T0, positions=[(5.3, 4.0), (0.0, 0.0)])
    assert world.distance(0, "hci0") == pytest.approx(0.3)
    assert world.distance(1, "hci0") == pytest.approx(6.4, abs=0.01)
    rssi: dict[str, list[int]] = {}

    def record(device: BLEDevice, adv: AdvertisementData) -> None:
        rssi.setdefault(device.address, []).append(adv.rssi)

    scanner = BleakScanner(record, bluez={"adapter": "hci0", "filters": RECIPE_A})
    await scanner.start()
    try:
        world.advance(30.0)
        await wait_until(lambda: sum(map(len, rssi.values())) >= world.stats.kept)
    finally:
        await scanner.stop()
    near = rssi[world.people[0].schedule.at(T0 + 30).address]
    far = rssi.get(world.people[1].schedule.at(T0 + 30).address, [])
    assert len(near) > 60  # ~130 adverts in 30 s, minus the channel's losses
    assert not far or sum(near) / len(near) > sum(far) / len(far) + 6
