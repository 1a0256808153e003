"""The exported ``org.bluez.LEAdvertisement1`` objects: the EN beacon and the legacy Bluezone one.

No ``from __future__ import annotations`` here: dbus-fast reads the signatures from the
evaluated annotations (linux-ble.md §9.7). Both are ``broadcast`` adverts: no Flags, no
LocalName, no Includes, so the EN beacon is 28 bytes and the Bluezone one 20 (§8.3).
"""

from collections.abc import Callable
from typing import Annotated

from dbus_fast import Variant
from dbus_fast.annotations import DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from bluezoned.ble.bluez import defs
from bluezoned.ble.payload import build_service_data, check_bluezone_id
from bluezoned.const import (
    BLUEZONE_COMPANY_ID,
    BLUEZONE_SERVICE_UUID,
    EN_SERVICE_UUID,
)

_StrList = Annotated[list[str], DBusSignature("as")]
_ServiceData = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
_ManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]


class _Advertisement(ServiceInterface):
    """Shared part: Type, ServiceUUIDs and Release, which calls :attr:`on_release`."""

    def __init__(self, service_uuid: str) -> None:
        super().__init__(defs.ADVERTISEMENT_INTERFACE)
        self._service_uuid = service_uuid
        self.on_release: Callable[[], None] | None = None
        self.release_count = 0

    @dbus_method()
    def Release(self) -> None:
        """Called by bluetoothd when it dropped the advertisement itself (adapter gone, Timeout)."""
        self.release_count += 1
        if self.on_release is not None:
            self.on_release()

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> DBusStr:
        """Always ``broadcast``: non-connectable, and BlueZ adds no Flags."""
        return defs.ADVERTISEMENT_TYPE_BROADCAST

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> _StrList:
        """The complete list of 16-bit service UUIDs: one UUID."""
        return [self._service_uuid]


class EnAdvertisement(_Advertisement):
    """The GAEN beacon: ServiceUUIDs [FD6F], ServiceData {FD6F: RPI + AEM}."""

    def __init__(self, rpi: bytes, aem: bytes) -> None:
        super().__init__(EN_SERVICE_UUID)
        self._data = build_service_data(rpi, aem)

    @property
    def service_data(self) -> bytes:
        """The 20 bytes currently exported."""
        return self._data

    def set_payload(self, rpi: bytes, aem: bytes) -> None:
        """Replace RPI and AEM; call only while unregistered, so the address rotates with them."""
        self._data = build_service_data(rpi, aem)

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> _ServiceData:
        """``{FD6F: RPI + AEM}``."""
        return {EN_SERVICE_UUID: Variant("ay", self._data)}


class BluezoneAdvertisement(_Advertisement):
    """The legacy Bluezone Android beacon: ServiceUUIDs [4E56], ManufacturerData {0x22B5: id}."""

    def __init__(self, beacon_id: bytes) -> None:
        super().__init__(BLUEZONE_SERVICE_UUID)
        self._id = check_bluezone_id(beacon_id)

    @property
    def beacon_id(self) -> bytes:
        """The 12-byte id currently exported."""
        return self._id

    def set_payload(self, beacon_id: bytes) -> None:
        """Replace the id; call only while unregistered."""
        self._id = check_bluezone_id(beacon_id)

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> _ManufacturerData:
        """``{0x22B5: id}``."""
        return {BLUEZONE_COMPANY_ID: Variant("ay", self._id)}
