"""Unmodified bleak scanning the simulated BlueZ through a real dbus-daemon."""

from __future__ import annotations

import asyncio

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from bluezoned.const import EN_SERVICE_UUID
from bluezoned.sim.bluez import SimulatedBluez, en_report

SD = bytes(range(20))


async def test_bleak_sees_en_beacon_with_service_data_and_rssi(bluez: SimulatedBluez) -> None:
    got: asyncio.Queue[tuple[BLEDevice, AdvertisementData]] = asyncio.Queue()
    scanner = BleakScanner(lambda d, a: got.put_nowait((d, a)), bluez={"adapter": "hci0"})
    await scanner.start()
    try:
        assert bluez.report("hci0", en_report("12:34:56:78:9A:BC", SD, -61))
        device, adv = await asyncio.wait_for(got.get(), 5)
    finally:
        await scanner.stop()
    assert device.address == "12:34:56:78:9A:BC"
    assert adv.service_data == {EN_SERVICE_UUID: SD}
    assert adv.rssi == -61
    assert EN_SERVICE_UUID in adv.service_uuids
