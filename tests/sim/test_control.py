"""The simulator's D-Bus control object, for programs under test that run in another process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from bluezoned.const import EN_SERVICE_UUID
from bluezoned.sim.bluez import CONTROL_INTERFACE, CONTROL_PATH, SimulatedBluez
from tests.fixtures_bluez import wait_until


@pytest.fixture
async def client(system_bus: str) -> AsyncIterator[MessageBus]:
    bus = await MessageBus(bus_address=system_bus).connect()
    yield bus
    bus.disconnect()


async def control(bus: MessageBus, member: str, signature: str = "", *body: Any) -> Message:
    return await bus.call(
        Message(
            destination="org.bluez",
            path=CONTROL_PATH,
            interface=CONTROL_INTERFACE,
            member=member,
            signature=signature,
            body=list(body),
        )
    )


async def adapter_call(bus: MessageBus, member: str) -> Message:
    return await bus.call(
        Message(
            destination="org.bluez",
            path="/org/bluez/hci0",
            interface="org.bluez.Adapter1",
            member=member,
        )
    )


async def test_inject_and_state(bluez: SimulatedBluez, client: MessageBus) -> None:
    fields = {
        "ServiceData": Variant("a{sv}", {EN_SERVICE_UUID: Variant("ay", bytes(20))}),
        "Flags": Variant("y", 0x1A),
    }
    reply = await control(client, "Inject", "ssna{sv}", "hci0", "12:34:56:78:9a:bc", -60, fields)
    assert reply.body == [False]  # nobody discovers yet
    await adapter_call(client, "StartDiscovery")
    reply = await control(client, "Inject", "ssna{sv}", "hci0", "12:34:56:78:9a:bc", -60, fields)
    assert reply.body == [True]
    state = json.loads((await control(client, "GetState")).body[0])
    assert state["adapters"]["hci0"]["devices"] == 1
    assert state["adapters"]["hci0"]["discovering"] == [client.unique_name]


async def test_fail_next_and_power(bluez: SimulatedBluez, client: MessageBus) -> None:
    await control(client, "FailNext", "sss", "StartDiscovery", "org.bluez.Error.Failed", "boom")
    assert (await adapter_call(client, "StartDiscovery")).body == ["boom"]
    await control(client, "SetPowered", "sb", "hci0", False)
    reply = await adapter_call(client, "StartDiscovery")
    assert reply.error_name == "org.bluez.Error.NotReady"


async def test_adapters_and_restart(bluez: SimulatedBluez, client: MessageBus) -> None:
    reply = await control(client, "AddAdapter", "ssb", "hci1", "00:1a:7d:da:71:20", False)
    assert reply.message_type is MessageType.METHOD_RETURN
    assert bluez.adapter_names == ["hci0", "hci1"]
    bad = await control(client, "RemoveAdapter", "s", "hci7")
    assert bad.error_name == "org.bluezoned.Sim1.Error"
    await control(client, "RemoveAdapter", "s", "hci1")
    await adapter_call(client, "StartDiscovery")
    first_owner = bluez.unique_name
    await control(client, "Restart", "db", 0.0, True)
    await wait_until(lambda: bluez.running and bluez.unique_name != first_owner)
    assert bluez.discovery_clients() == {}
