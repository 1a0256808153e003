"""Real-adapter checks (``-m hardware``): skipped unless a real BlueZ adapter is present.

Set ``BLUEZONED_HW_ADAPTER`` (hciN or MAC; default ``hci0``). See
docs/raspberry-pi-manual-check.md for what to look for in ``btmon`` meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import pytest

from bluezoned.ble.bluez.adapter import BluezConnection
from bluezoned.ble.bluez.advertiser import BluezAdvertiser
from bluezoned.ble.scanner import BleakSightingScanner
from bluezoned.errors import BluetoothUnavailable

ADAPTER = os.environ.get("BLUEZONED_HW_ADAPTER", "hci0")
HAS_CONTROLLER = any(Path("/sys/class/bluetooth").glob("hci*"))

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(
        not HAS_CONTROLLER,
        reason="no Bluetooth controller in /sys/class/bluetooth: needs a real BlueZ adapter",
    ),
]


async def _require_real_adapter() -> None:
    if "DBUS_SYSTEM_BUS_ADDRESS" in os.environ:
        pytest.skip("DBUS_SYSTEM_BUS_ADDRESS is set: not talking to the real system bus")
    try:
        conn = await BluezConnection.connect(call_timeout=5)
    except BluetoothUnavailable as exc:
        pytest.skip(f"no system bus: {exc}")
    try:
        info = await conn.find_adapter(ADAPTER)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable BlueZ"
        pytest.skip(f"bluetoothd not reachable: {exc}")
    finally:
        conn.disconnect()
    if info is None or not info.powered:
        pytest.skip(f"adapter {ADAPTER} absent or powered off in BlueZ")


async def test_real_adapter_scans_and_advertises() -> None:
    await _require_real_adapter()
    advertiser = BluezAdvertiser(ADAPTER, lambda now: (secrets.token_bytes(16), bytes(4)))
    scanner = BleakSightingScanner(ADAPTER)
    stop_adv = await advertiser.start()
    stop_scan = await scanner.start()
    try:
        assert advertiser.stats.registered
        assert scanner.stats.scanning
        await asyncio.sleep(5)  # phones nearby show up in scanner.stats; none are required
    finally:
        await stop_scan()
        await stop_adv()
    assert not advertiser.stats.registered
