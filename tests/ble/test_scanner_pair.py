"""Two simulated adapters hearing each other: our advertiser on hci0, our scanner on hci1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from bluezoned.ble.aggregator import Aggregator
from bluezoned.ble.bluez.advertiser import BluezAdvertiser
from bluezoned.ble.scanner import BleakSightingScanner
from bluezoned.ble.supervision import RotationPolicy
from bluezoned.models import SightingBucket
from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez
from bluezoned.sim.world import World
from tests.ble._helpers import CountingPayload
from tests.fixtures_bluez import HCI0_ADDRESS, HCI1_ADDRESS, wait_until


@contextlib.asynccontextmanager
async def air(bluez: SimulatedBluez, src: str, dst: str, rssi: int = -58) -> AsyncIterator[None]:
    """Carry what ``src`` advertises to ``dst`` every 50 ms, as a shared radio channel would."""

    async def carry() -> None:
        while True:
            if src in bluez.adapter_names and dst in bluez.adapter_names:
                for adv in bluez.advertisements(src):
                    bluez.report(dst, adv.as_report(rssi))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(carry())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_advertiser_on_hci0_is_heard_by_scanner_on_hci1(
    bluez_factory: Callable[..., Awaitable[SimulatedBluez]],
) -> None:
    bluez = await bluez_factory(
        adapters=[
            AdapterConfig(name="hci0", address=HCI0_ADDRESS),
            AdapterConfig(name="hci1", address=HCI1_ADDRESS, experimental=True),
        ],
        seed=3,
    )
    payload = CountingPayload()
    advertiser = BluezAdvertiser(HCI0_ADDRESS, payload, rotation=RotationPolicy(0.3, 0.4))
    scanner = BleakSightingScanner(HCI1_ADDRESS, mode="auto")
    rows: list[SightingBucket] = []
    aggregator = Aggregator(rows.extend)
    stop_adv = await advertiser.start()
    stop_scan = await scanner.start()
    try:
        assert scanner.stats.mode == "passive"  # hci1 offers monitors; hci0 does not
        async with air(bluez, "hci0", "hci1"):
            first = await asyncio.wait_for(scanner.get(), 5)
            assert first.rpi + first.aem == advertiser.service_data
            assert first.rssi == -58
            assert first.adapter == "hci1"
            first_address = first.address
            await wait_until(lambda: advertiser.stats.rotations >= 1, what="a rotation")
            rotated = advertiser.service_data
            assert rotated is not None

            async def heard_rotated() -> None:
                while True:
                    s = await scanner.get()
                    aggregator.add(s)
                    if s.rpi + s.aem == rotated:
                        assert s.address != first_address
                        return

            await asyncio.wait_for(heard_rotated(), 5)
    finally:
        await stop_scan()
        await stop_adv()
    aggregator.flush()
    assert rows
    assert bluez.advertisements() == []


async def test_world_phones_and_our_beacon_heard_through_the_radio_world(
    bluez_factory: Callable[..., Awaitable[SimulatedBluez]],
) -> None:
    bluez = await bluez_factory(
        adapters=[
            AdapterConfig(name="hci0", address=HCI0_ADDRESS),
            AdapterConfig(name="hci1", address=HCI1_ADDRESS),
        ],
        seed=4,
    )
    advertiser = BluezAdvertiser("hci0", CountingPayload(), rotation=RotationPolicy(3600, 3600))
    scanner = BleakSightingScanner("hci1", mode="auto")
    stop_adv = await advertiser.start()
    stop_scan = await scanner.start()
    heard: set[bytes] = set()
    try:
        async with World(bluez, devices=3, seed=4, static=True):

            async def collect() -> None:
                while advertiser.service_data not in heard or len(heard) < 4:
                    s = await scanner.get()
                    heard.add(s.rpi + s.aem)

            await asyncio.wait_for(collect(), 10)
    finally:
        await stop_scan()
        await stop_adv()
    assert scanner.stats.mode == "active"
    assert scanner.stats.rejected == {}
