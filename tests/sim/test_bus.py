"""The private system bus: environment handling, clean shutdown, default-deny policy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from bluezoned.errors import SimulatorError
from bluezoned.sim import bus as bus_module
from bluezoned.sim.bus import SYSTEM_BUS_ENV, PrivateSystemBus, async_private_system_bus


def test_env_is_set_and_restored(system_bus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ[SYSTEM_BUS_ENV] == system_bus
    monkeypatch.setenv(SYSTEM_BUS_ENV, "unix:path=/nonexistent")
    with PrivateSystemBus() as inner:
        assert os.environ[SYSTEM_BUS_ENV] == inner.address
        socket_path = Path(inner.address.split("path=", 1)[1].split(",", 1)[0])
        assert socket_path.exists()
        assert inner.running
    assert os.environ[SYSTEM_BUS_ENV] == "unix:path=/nonexistent"
    assert not socket_path.parent.exists()  # temporary config and socket removed
    assert not inner.running


def test_double_start_and_missing_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = PrivateSystemBus(set_env=False)
    bus.start()
    try:
        with pytest.raises(SimulatorError, match="already started"):
            bus.start()
    finally:
        bus.stop()
    monkeypatch.setattr(bus_module, "find_dbus_daemon", lambda: None)
    with pytest.raises(SimulatorError, match="dbus-daemon not found"):
        PrivateSystemBus().start()


async def test_policy_denies_method_calls_between_clients_like_a_system_bus() -> None:
    async with async_private_system_bus() as address:
        a = await MessageBus(bus_address=address).connect()
        b = await MessageBus(bus_address=address).connect()
        try:
            reply = await a.call(
                Message(
                    destination=b.unique_name,
                    path="/",
                    interface="org.freedesktop.DBus.Peer",
                    member="Ping",
                )
            )
            assert reply.error_name == "org.freedesktop.DBus.Error.AccessDenied"
            owned = await a.call(
                Message(
                    destination="org.freedesktop.DBus",
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="RequestName",
                    signature="su",
                    body=["org.example.Nope", 4],
                )
            )
            assert owned.error_name == "org.freedesktop.DBus.Error.AccessDenied"
        finally:
            a.disconnect()
            b.disconnect()
