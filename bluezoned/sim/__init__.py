"""The simulated radio: a private system bus, a simulated bluetoothd on it, and a world of beacons.

Product code (the ``bluezoned sim`` command and the demo use it) as well as the test stand-in for
BlueZ; see linux-ble.md §9. Nothing here needs a Bluetooth controller.
"""

from __future__ import annotations

from bluezoned.sim.bluez import (
    AdapterConfig,
    RegisteredAdvertisement,
    Report,
    SimulatedBluez,
    en_report,
)
from bluezoned.sim.bus import PrivateSystemBus, async_private_system_bus, private_system_bus
from bluezoned.sim.world import PropagationParams, World

__all__ = [
    "AdapterConfig",
    "PrivateSystemBus",
    "PropagationParams",
    "RegisteredAdvertisement",
    "Report",
    "SimulatedBluez",
    "World",
    "async_private_system_bus",
    "en_report",
    "private_system_bus",
]
