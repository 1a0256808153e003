"""LEAdvertisingManager1 of the simulated BlueZ against a dbus-fast LEAdvertisement1 (linux-ble.md §8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dbus_fast import MessageType
from dbus_fast.aio import MessageBus

from bluezoned.ble.payload import build_advertisement
from bluezoned.sim.bluez import (
    ERROR_INVALID_LENGTH,
    AdapterConfig,
    SimulatedBluez,
)
from tests.fixtures_bluez import wait_until
from tests.sim.advert_client import (
    IncludesAdvertisement,
    NamedAdvertisement,
    TestAdvertisement,
    TimedAdvertisement,
    get_property,
    register,
)

RPI = bytes(range(16))
AEM = b"\xaa\xbb\xcc\xdd"
PATH = "/org/bluezoned/advert0"
MANAGER = "org.bluez.LEAdvertisingManager1"


@pytest.fixture
async def client(system_bus: str) -> AsyncIterator[MessageBus]:
    bus = await MessageBus(bus_address=system_bus).connect()
    yield bus
    bus.disconnect()


async def test_register_reads_properties_and_goes_on_air(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    client.export(PATH, TestAdvertisement(RPI + AEM))
    reply = await register(client, PATH)
    assert reply.message_type is MessageType.METHOD_RETURN, reply.body
    (adv,) = bluez.advertisements("hci0")
    assert adv.owner == client.unique_name
    assert adv.ad == build_advertisement(RPI, AEM, flags=False)  # 28 bytes, no Flags
    assert len(adv.ad) == 28
    assert adv.address[0] in "0123"  # a non-resolvable private address
    assert await get_property(client, MANAGER, "ActiveInstances") == 1
    assert await get_property(client, MANAGER, "SupportedInstances") == 4
    assert (await register(client, PATH)).error_name == "org.bluez.Error.AlreadyExists"
    assert (await register(client, PATH, method="UnregisterAdvertisement")).message_type is (
        MessageType.METHOD_RETURN
    )
    assert bluez.advertisements() == []
    again = await register(client, PATH, method="UnregisterAdvertisement")
    assert again.error_name == "org.bluez.Error.DoesNotExist"


async def test_reregistering_changes_the_address(bluez: SimulatedBluez, client: MessageBus) -> None:
    client.export(PATH, TestAdvertisement(RPI + AEM))
    addresses = set()
    for _ in range(3):
        await register(client, PATH)
        addresses.add(bluez.advertisements()[0].address)
        await register(client, PATH, method="UnregisterAdvertisement")
    assert len(addresses) == 3


async def test_unexported_object_fails(bluez: SimulatedBluez, client: MessageBus) -> None:
    reply = await register(client, "/org/bluezoned/nothing")
    assert reply.error_name == "org.bluez.Error.Failed"
    assert reply.body == ["Failed to parse advertisement."]


async def test_oversize_advert_rejected_as_bluetoothd_does(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    client.export(PATH, TestAdvertisement(RPI + AEM, manufacturer_data={0x22B5: b"x"}))
    reply = await register(client, PATH)
    assert reply.error_name == "org.bluez.Error.Failed"  # src/advertising.c
    assert bluez.advertisements() == []


async def test_oversize_advert_invalid_length_variant(
    bluez_factory: Any, client: MessageBus
) -> None:
    await bluez_factory(oversize_error=ERROR_INVALID_LENGTH)
    client.export(PATH, TestAdvertisement(RPI + AEM, manufacturer_data={0x22B5: b"x"}))
    assert (await register(client, PATH)).error_name == ERROR_INVALID_LENGTH


async def test_bad_type_rejected(bluez: SimulatedBluez, client: MessageBus) -> None:
    client.export(PATH, TestAdvertisement(RPI + AEM, adv_type="bogus"))
    assert (await register(client, PATH)).error_name == "org.bluez.Error.Failed"


async def test_instances_exhausted(bluez_factory: Any, client: MessageBus) -> None:
    await bluez_factory(adapters=[AdapterConfig(max_advertisements=2)])
    for i in range(3):
        client.export(f"{PATH}_{i}", TestAdvertisement(RPI + AEM))
    assert (await register(client, f"{PATH}_0")).message_type is MessageType.METHOD_RETURN
    assert (await register(client, f"{PATH}_1")).message_type is MessageType.METHOD_RETURN
    assert await get_property(client, MANAGER, "SupportedInstances") == 0
    third = await register(client, f"{PATH}_2")
    assert third.error_name == "org.bluez.Error.NotPermitted"


async def test_release_on_adapter_removal(bluez: SimulatedBluez, client: MessageBus) -> None:
    advert = TestAdvertisement(RPI + AEM)
    client.export(PATH, advert)
    await register(client, PATH)
    bluez.remove_adapter("hci0")
    await asyncio.wait_for(advert.released.wait(), 5)


async def test_unregister_does_not_release(bluez: SimulatedBluez, client: MessageBus) -> None:
    advert = TestAdvertisement(RPI + AEM)
    client.export(PATH, advert)
    await register(client, PATH)
    await register(client, PATH, method="UnregisterAdvertisement")
    # A second call on the same connection: D-Bus ordering guarantees that a Release sent
    # before its reply has already been handled.
    again = await register(client, PATH, method="UnregisterAdvertisement")
    assert again.error_name == "org.bluez.Error.DoesNotExist"
    assert not advert.released.is_set()


async def test_client_leaving_drops_its_advertisement(
    bluez: SimulatedBluez, system_bus: str
) -> None:
    other = await MessageBus(bus_address=system_bus).connect()
    other.export(PATH, TestAdvertisement(RPI + AEM))
    await register(other, PATH)
    assert len(bluez.advertisements()) == 1
    other.disconnect()
    await wait_until(lambda: bluez.advertisements() == [])


async def test_in_place_rotation_refreshes_payload(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    advert = TestAdvertisement(RPI + AEM)
    client.export(PATH, advert)
    await register(client, PATH)
    address = bluez.advertisements()[0].address
    advert.rotate(bytes(16) + AEM)
    await wait_until(lambda: len(bluez.advertisements()[0].history) == 2)
    adv = bluez.advertisements()[0]
    assert adv.ad == build_advertisement(bytes(16), AEM, flags=False)
    assert adv.address == address  # in place: the address does not change (§8.5)


async def test_injected_failure(bluez: SimulatedBluez, client: MessageBus) -> None:
    client.export(PATH, TestAdvertisement(RPI + AEM))
    bluez.fail_next(
        "RegisterAdvertisement", "org.bluez.Error.Failed", "Failed to add advertisement"
    )
    assert (await register(client, PATH)).error_name == "org.bluez.Error.Failed"
    assert (await register(client, PATH)).message_type is MessageType.METHOD_RETURN


async def test_restart_forgets_advertisements_silently(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    advert = TestAdvertisement(RPI + AEM)
    client.export(PATH, advert)
    await register(client, PATH)
    await bluez.restart()
    assert bluez.advertisements() == []
    # The round trip orders any Release sent during the restart before its reply.
    assert (await register(client, PATH)).message_type is MessageType.METHOD_RETURN
    assert not advert.released.is_set()


async def test_tx_power_include_fills_exactly_31_bytes(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    client.export(PATH, IncludesAdvertisement(RPI + AEM, includes=["tx-power"]))
    assert (await register(client, PATH)).message_type is MessageType.METHOD_RETURN
    assert len(bluez.advertisements()[0].ad) == 31  # linux-ble.md §8.3


async def test_local_name_overflows_the_budget(bluez: SimulatedBluez, client: MessageBus) -> None:
    client.export(PATH, NamedAdvertisement(RPI + AEM, local_name="bz", includes=[]))
    assert (await register(client, PATH)).error_name == "org.bluez.Error.Failed"
    client.export(
        f"{PATH}_2", IncludesAdvertisement(RPI + AEM, includes=["tx-power", "local-name"])
    )
    assert (await register(client, f"{PATH}_2")).error_name == "org.bluez.Error.Failed"


async def test_timeout_releases_the_advertisement(
    bluez: SimulatedBluez, client: MessageBus
) -> None:
    advert = TimedAdvertisement(RPI + AEM)
    client.export(PATH, advert)
    assert (await register(client, PATH)).message_type is MessageType.METHOD_RETURN
    await asyncio.wait_for(advert.released.wait(), 5)
    assert bluez.advertisements() == []
