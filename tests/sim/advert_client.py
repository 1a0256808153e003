"""A minimal test-only LEAdvertisement1, exported with dbus-fast as bluezoned's advertiser does.

No ``from __future__ import annotations`` here: dbus-fast reads the annotations at class
creation (linux-ble.md §9.7 item 2).
"""

import asyncio
from typing import Annotated, Any

from dbus_fast import Message, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusSignature, DBusStr, DBusUInt16
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from bluezoned.const import EN_SERVICE_UUID


class TestAdvertisement(ServiceInterface):
    """A GAEN-style broadcast advert; ``released`` is set when BlueZ calls Release()."""

    __test__ = False

    def __init__(
        self,
        service_data: bytes,
        *,
        adv_type: str = "broadcast",
        manufacturer_data: dict[int, bytes] | None = None,
    ) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.service_data = service_data
        self.adv_type = adv_type
        self.manufacturer_data = manufacturer_data or {}
        self.released = asyncio.Event()

    @dbus_method()
    def Release(self) -> None:
        self.released.set()

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return self.adv_type

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> Annotated[list[str], DBusSignature("as")]:
        return [EN_SERVICE_UUID]

    @dbus_property(PropertyAccess.READ)
    def ServiceData(self) -> Annotated[dict[str, Variant], DBusSignature("a{sv}")]:
        return {EN_SERVICE_UUID: Variant("ay", self.service_data)}

    @dbus_property(PropertyAccess.READ)
    def ManufacturerData(self) -> Annotated[dict[int, Variant], DBusSignature("a{qv}")]:
        return {k: Variant("ay", v) for k, v in self.manufacturer_data.items()}

    def rotate(self, service_data: bytes) -> None:
        """Change the payload in place and tell BlueZ (PropertiesChanged)."""
        self.service_data = service_data
        self.emit_properties_changed({"ServiceData": self.ServiceData})


async def register(
    bus: MessageBus, path: str, adapter: str = "hci0", method: str = "RegisterAdvertisement"
) -> Message:
    """Call LEAdvertisingManager1.(Un)RegisterAdvertisement; returns the reply (maybe an error)."""
    body: list[Any] = [path, {}] if method == "RegisterAdvertisement" else [path]
    return await bus.call(
        Message(
            destination="org.bluez",
            path=f"/org/bluez/{adapter}",
            interface="org.bluez.LEAdvertisingManager1",
            member=method,
            signature="oa{sv}" if method == "RegisterAdvertisement" else "o",
            body=body,
        )
    )


async def get_property(bus: MessageBus, interface: str, name: str, adapter: str = "hci0") -> Any:
    """Properties.Get on an adapter object, unpacked."""
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path=f"/org/bluez/{adapter}",
            interface="org.freedesktop.DBus.Properties",
            member="Get",
            signature="ss",
            body=[interface, name],
        )
    )
    return reply.body[0].value


class NamedAdvertisement(TestAdvertisement):
    """The GAEN advert plus a LocalName and Includes, to probe the 31-byte budget."""

    __test__ = False

    def __init__(self, service_data: bytes, *, local_name: str, includes: list[str]) -> None:
        super().__init__(service_data)
        self.local_name = local_name
        self.includes = includes

    @dbus_property(PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return self.local_name

    @dbus_property(PropertyAccess.READ)
    def Includes(self) -> Annotated[list[str], DBusSignature("as")]:
        return self.includes


class IncludesAdvertisement(TestAdvertisement):
    """The GAEN advert plus an Includes list (what bluetoothd/the kernel append)."""

    __test__ = False

    def __init__(self, service_data: bytes, *, includes: list[str]) -> None:
        super().__init__(service_data)
        self.includes = includes

    @dbus_property(PropertyAccess.READ)
    def Includes(self) -> Annotated[list[str], DBusSignature("as")]:
        return self.includes


class AppRoot(ServiceInterface):
    """An empty interface to export at a monitor application's root path."""

    def __init__(self) -> None:
        super().__init__("org.bluezoned.TestRoot")


class TimedAdvertisement(TestAdvertisement):
    """The GAEN advert with a Timeout (seconds) after which BlueZ releases it."""

    __test__ = False

    @dbus_property(PropertyAccess.READ)
    def Timeout(self) -> DBusUInt16:
        return 1


class TestMonitor(ServiceInterface):
    """An org.bluez.AdvertisementMonitor1 that records what BlueZ calls on it."""

    __test__ = False

    def __init__(
        self, patterns: list[tuple[int, int, bytes]], monitor_type: str = "or_patterns"
    ) -> None:
        super().__init__("org.bluez.AdvertisementMonitor1")
        self.patterns = patterns
        self.monitor_type = monitor_type
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    @dbus_method()
    def Release(self) -> None:
        self.events.put_nowait(("Release", ""))

    @dbus_method()
    def Activate(self) -> None:
        self.events.put_nowait(("Activate", ""))

    @dbus_method()
    def DeviceFound(self, device: DBusObjectPath) -> None:
        self.events.put_nowait(("DeviceFound", device))

    @dbus_method()
    def DeviceLost(self, device: DBusObjectPath) -> None:
        self.events.put_nowait(("DeviceLost", device))

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return self.monitor_type

    @dbus_property(PropertyAccess.READ)
    def Patterns(self) -> Annotated[list[tuple[int, int, bytes]], DBusSignature("a(yyay)")]:
        return self.patterns
