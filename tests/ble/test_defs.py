"""The BlueZ vocabulary: names spelled once, helpers, and no literal elsewhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bluezoned.ble.bluez import defs
from bluezoned.ble.bluez.adapter import check_adapter_spec, select_adapter
from bluezoned.errors import InvalidInput

PACKAGE = Path(__file__).resolve().parents[2] / "bluezoned"


def test_interface_and_error_names_are_bluez_spellings() -> None:
    assert defs.ADAPTER_INTERFACE == "org.bluez.Adapter1"
    assert defs.ADVERTISEMENT_INTERFACE == "org.bluez.LEAdvertisement1"
    assert defs.ADVERTISING_MANAGER_INTERFACE == "org.bluez.LEAdvertisingManager1"
    assert defs.ADVERTISEMENT_MONITOR_MANAGER_INTERFACE == "org.bluez.AdvertisementMonitorManager1"
    for name in (defs.ERROR_FAILED, defs.ERROR_IN_PROGRESS, defs.ERROR_NOT_READY):
        assert name.startswith("org.bluez.Error.")
    assert defs.ERROR_INVALID_LENGTH in defs.PAYLOAD_REJECTED_ERRORS
    assert defs.ERROR_FAILED in defs.PAYLOAD_REJECTED_ERRORS


def test_no_other_module_spells_a_bluez_name() -> None:
    pattern = re.compile(r"[\"']org\.bluez\.[A-Za-z]")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        # sim/bus.py writes Debian's bluetooth.conf D-Bus policy, a config text, verbatim.
        if path.name != "defs.py"
        and path.relative_to(PACKAGE).as_posix() != "sim/bus.py"
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_only_ble_bluez_imports_dbus_fast() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "ble").rglob("*.py")
        if "bluez" not in path.relative_to(PACKAGE / "ble").parts[:-1]
        and re.search(r"^\s*(from|import) dbus_fast", path.read_text(encoding="utf-8"), re.M)
    ]
    assert offenders == []


def test_adapter_paths() -> None:
    assert defs.adapter_path("hci1") == "/org/bluez/hci1"
    assert defs.adapter_name("/org/bluez/hci1") == "hci1"
    assert defs.is_adapter_path("/org/bluez/hci0")
    assert not defs.is_adapter_path("/org/bluez/hci0/dev_00_11_22_33_44_55")
    assert not defs.is_adapter_path("/org/bluez")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("hci0", "hci0"), ("hci12", "hci12"), ("aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF")],
)
def test_adapter_spec(spec: str, expected: str) -> None:
    assert check_adapter_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "hci", "eth0", "AA:BB:CC:DD:EE", "/org/bluez/hci0"])
def test_adapter_spec_rejects(spec: str) -> None:
    with pytest.raises(InvalidInput):
        check_adapter_spec(spec)


def test_select_adapter_by_name_or_mac() -> None:
    objects: dict[str, dict[str, dict[str, Any]]] = {
        "/org/bluez": {"org.bluez.AgentManager1": {}},
        "/org/bluez/hci0": {
            defs.ADAPTER_INTERFACE: {"Address": "00:00:00:00:00:01", "Powered": True},
            defs.ADVERTISING_MANAGER_INTERFACE: {},
        },
        "/org/bluez/hci1": {
            defs.ADAPTER_INTERFACE: {"Address": "00:00:00:00:00:02", "Powered": False},
            defs.ADVERTISEMENT_MONITOR_MANAGER_INTERFACE: {},
        },
        "/org/bluez/hci0/dev_AA": {defs.DEVICE_INTERFACE: {"Address": "00:00:00:00:00:02"}},
    }
    by_mac = select_adapter(objects, "00:00:00:00:00:02")
    assert by_mac is not None
    assert (by_mac.name, by_mac.powered, by_mac.passive_scan, by_mac.can_advertise) == (
        "hci1",
        False,
        True,
        False,
    )
    by_name = select_adapter(objects, "hci0")
    assert by_name is not None
    assert by_name.address == "00:00:00:00:00:01"
    assert by_name.can_advertise
    assert select_adapter(objects, "hci7") is None
