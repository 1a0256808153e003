"""Pytest fixtures for the radio tests: a private system bus and the simulated BlueZ on it.

Fixtures (registered for the whole suite by ``tests/conftest.py``):

``system_bus`` -> str
    Address of a fresh private ``dbus-daemon`` configured like the system bus (default-deny
    policy plus Debian's ``bluetooth.conf``); ``DBUS_SYSTEM_BUS_ADDRESS`` points at it for the
    test and is restored afterwards, so bleak and dbus-fast's ``BusType.SYSTEM`` use it.
    Skips the test with a clear message when ``dbus-daemon`` is not installed.

``bluez`` -> :class:`bluezoned.sim.bluez.SimulatedBluez`
    A running simulated bluetoothd owning ``org.bluez`` on ``system_bus`` with one powered
    adapter ``hci0`` (address ``HCI0_ADDRESS``), experimental mode on (so
    ``AdvertisementMonitorManager1`` exists for passive scans), ``TemporaryTimeout`` 30 s.
    The handle drives it:

    * ``bluez.report("hci0", en_report(address, service_data, rssi))`` -- the controller hears
      an advert (``Report`` for any fields: service/manufacturer data, UUIDs, TX power, name,
      Flags, connectable; a ``dbus_fast.Variant`` as a service-data value goes out unchanged);
      returns whether bluetoothd kept it (discovery/filters/monitors applied as bluetoothd does);
    * ``bluez.fail_next("StartDiscovery", "org.bluez.Error.InProgress")`` -- one-shot fault on
      any method (Adapter1, LEAdvertisingManager1, AdvertisementMonitorManager1);
    * ``bluez.add_adapter(AdapterConfig(name="hci1", address=...))``,
      ``bluez.remove_adapter("hci0")``, ``bluez.set_powered("hci0", False)``,
      ``bluez.set_stalled("hci0")`` (silent stall: still "Discovering", nothing arrives);
    * ``await bluez.restart(downtime=0.1, graceful=False)`` -- bluetoothd crash/restart;
    * inspection: ``bluez.calls`` (recent method calls), ``bluez.devices("hci0")``,
      ``bluez.discovery_clients("hci0")``, ``bluez.advertisements()`` (registered
      LEAdvertisement1s with their on-air bytes and refresh ``history``), ``bluez.stats``;
    * ``bluez.temporary_timeout`` may be lowered in a test to make devices expire quickly;
    * the same operations over D-Bus for a program in another process: object
      ``/org/bluezoned/sim``, interface ``org.bluezoned.Sim1`` on ``org.bluez`` (see
      ``bluezoned.sim.bluez.CONTROL_INTERFACE``).

``bluez_factory`` -> async callable
    ``await bluez_factory(adapters=[...], temporary_timeout=..., ...)`` for a differently
    configured simulator (e.g. experimental off, two adapters); stopped at teardown.

``wait_until(predicate, limit=5.0, what="")`` (a plain async helper, not a fixture)
    Polls a condition on simulator or component state every 10 ms; after ``limit`` seconds
    fails the test with an ``AssertionError`` "timed out waiting for <what>".

A radio world (people carrying GAEN beacons, propagation, adapters hearing each other's
LEAdvertisement1s) is in :mod:`bluezoned.sim.world`: ``World(bluez, ...)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez
from bluezoned.sim.bus import PrivateSystemBus, find_dbus_daemon

HCI0_ADDRESS = "00:1A:7D:DA:71:13"
HCI1_ADDRESS = "00:1A:7D:DA:71:14"


@pytest.fixture
def system_bus() -> Iterator[str]:
    """A private dbus-daemon playing the system bus; DBUS_SYSTEM_BUS_ADDRESS set for the test."""
    if find_dbus_daemon() is None:
        pytest.skip("dbus-daemon is not installed (Debian package 'dbus'); radio tests need it")
    bus = PrivateSystemBus()
    bus.start()
    try:
        yield bus.address
    finally:
        bus.stop()


@pytest.fixture
async def bluez_factory(
    system_bus: str,
) -> AsyncIterator[Callable[..., Awaitable[SimulatedBluez]]]:
    """Start simulated bluetoothds with custom options; all are stopped at teardown."""
    started: list[SimulatedBluez] = []

    async def factory(**kwargs: Any) -> SimulatedBluez:
        sim = SimulatedBluez(system_bus, **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def bluez(bluez_factory: Callable[..., Awaitable[SimulatedBluez]]) -> SimulatedBluez:
    """The simulated BlueZ with one powered adapter hci0 (experimental on), running on system_bus."""
    return await bluez_factory(
        adapters=[AdapterConfig(name="hci0", address=HCI0_ADDRESS, experimental=True)], seed=0
    )


async def wait_until(predicate: Callable[[], object], limit: float = 5.0, what: str = "") -> None:
    """Return once ``predicate()`` is true, polling every 10 ms; fail after ``limit`` seconds.

    The failure is an ``AssertionError`` naming ``what`` (or the predicate when it is empty).
    """
    try:
        async with asyncio.timeout(limit):
            while not predicate():  # noqa: ASYNC110 - simulator state has no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or predicate}") from None
