"""Every BlueZ D-Bus name bluezoned uses: bus name, interfaces, errors and property TypedDicts.

No other module spells these strings. References: BlueZ ``doc/org.bluez.Adapter.rst``,
``org.bluez.Device.rst``, ``org.bluez.LEAdvertisement.rst``,
``org.bluez.LEAdvertisingManager.rst``, ``org.bluez.AdvertisementMonitorManager.rst``
(linux-ble.md §2, §8, §9.4).
"""

from __future__ import annotations

from typing import Final, TypedDict

# --- Bus, paths and freedesktop interfaces ----------------------------------------------
BLUEZ_SERVICE: Final = "org.bluez"
BLUEZ_ROOT_PATH: Final = "/org/bluez"
OBJECT_MANAGER_PATH: Final = "/"
DBUS_SERVICE: Final = "org.freedesktop.DBus"
DBUS_PATH: Final = "/org/freedesktop/DBus"
DBUS_INTERFACE: Final = "org.freedesktop.DBus"
OBJECT_MANAGER_INTERFACE: Final = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_INTERFACE: Final = "org.freedesktop.DBus.Properties"
INTROSPECTABLE_INTERFACE: Final = "org.freedesktop.DBus.Introspectable"

# --- BlueZ interfaces -------------------------------------------------------------------
ADAPTER_INTERFACE: Final = "org.bluez.Adapter1"
DEVICE_INTERFACE: Final = "org.bluez.Device1"
ADVERTISEMENT_INTERFACE: Final = "org.bluez.LEAdvertisement1"
ADVERTISING_MANAGER_INTERFACE: Final = "org.bluez.LEAdvertisingManager1"
ADVERTISEMENT_MONITOR_INTERFACE: Final = "org.bluez.AdvertisementMonitor1"
ADVERTISEMENT_MONITOR_MANAGER_INTERFACE: Final = "org.bluez.AdvertisementMonitorManager1"
AGENT_MANAGER_INTERFACE: Final = "org.bluez.AgentManager1"
PROFILE_MANAGER_INTERFACE: Final = "org.bluez.ProfileManager1"

# --- Signals and members ----------------------------------------------------------------
NAME_OWNER_CHANGED: Final = "NameOwnerChanged"
INTERFACES_ADDED: Final = "InterfacesAdded"
INTERFACES_REMOVED: Final = "InterfacesRemoved"
PROPERTIES_CHANGED: Final = "PropertiesChanged"
GET_MANAGED_OBJECTS: Final = "GetManagedObjects"
PROPERTIES_GET: Final = "Get"
REGISTER_ADVERTISEMENT: Final = "RegisterAdvertisement"
UNREGISTER_ADVERTISEMENT: Final = "UnregisterAdvertisement"

# --- BlueZ errors (src/error.c) ---------------------------------------------------------
ERROR_FAILED: Final = "org.bluez.Error.Failed"
ERROR_IN_PROGRESS: Final = "org.bluez.Error.InProgress"
ERROR_NOT_READY: Final = "org.bluez.Error.NotReady"
ERROR_NOT_PERMITTED: Final = "org.bluez.Error.NotPermitted"
ERROR_INVALID_LENGTH: Final = "org.bluez.Error.InvalidLength"
ERROR_INVALID_ARGUMENTS: Final = "org.bluez.Error.InvalidArguments"
ERROR_ALREADY_EXISTS: Final = "org.bluez.Error.AlreadyExists"
ERROR_DOES_NOT_EXIST: Final = "org.bluez.Error.DoesNotExist"
ERROR_NOT_SUPPORTED: Final = "org.bluez.Error.NotSupported"
ERROR_NOT_AUTHORIZED: Final = "org.bluez.Error.NotAuthorized"

# --- freedesktop errors met when BlueZ or an adapter is gone, or policy denies -----------
DBUS_ERROR_INVALID_ARGS: Final = "org.freedesktop.DBus.Error.InvalidArgs"
DBUS_ERROR_UNKNOWN_OBJECT: Final = "org.freedesktop.DBus.Error.UnknownObject"
DBUS_ERROR_UNKNOWN_METHOD: Final = "org.freedesktop.DBus.Error.UnknownMethod"
DBUS_ERROR_UNKNOWN_INTERFACE: Final = "org.freedesktop.DBus.Error.UnknownInterface"
DBUS_ERROR_SERVICE_UNKNOWN: Final = "org.freedesktop.DBus.Error.ServiceUnknown"
DBUS_ERROR_NAME_HAS_NO_OWNER: Final = "org.freedesktop.DBus.Error.NameHasNoOwner"
DBUS_ERROR_NO_REPLY: Final = "org.freedesktop.DBus.Error.NoReply"
DBUS_ERROR_ACCESS_DENIED: Final = "org.freedesktop.DBus.Error.AccessDenied"

BLUEZ_GONE_ERRORS: Final = frozenset(
    {
        DBUS_ERROR_UNKNOWN_OBJECT,
        DBUS_ERROR_UNKNOWN_METHOD,
        DBUS_ERROR_UNKNOWN_INTERFACE,
        DBUS_ERROR_SERVICE_UNKNOWN,
        DBUS_ERROR_NAME_HAS_NO_OWNER,
        DBUS_ERROR_NO_REPLY,
    }
)
"""Replies meaning bluetoothd or the adapter object is not (yet) there: wait for it to appear."""
RESET_NEEDED_ERRORS: Final = frozenset(
    {ERROR_FAILED, ERROR_IN_PROGRESS, ERROR_NOT_READY, ERROR_DOES_NOT_EXIST}
)
"""Discovery errors that habluetooth answers with a forced stop and an adapter reset (§7.1)."""
PAYLOAD_REJECTED_ERRORS: Final = frozenset(
    {ERROR_FAILED, ERROR_INVALID_LENGTH, ERROR_INVALID_ARGUMENTS}
)
"""RegisterAdvertisement refusals of the payload; the source raises Failed, the docs InvalidLength."""

# --- Values -----------------------------------------------------------------------------
ADVERTISEMENT_TYPE_BROADCAST: Final = "broadcast"
ROLE_CENTRAL: Final = "central"
ROLE_PERIPHERAL: Final = "peripheral"


class Adapter1(TypedDict, total=False):
    """``org.bluez.Adapter1`` properties bluezoned reads."""

    Address: str
    AddressType: str
    Name: str
    Alias: str
    Powered: bool
    Discovering: bool
    Roles: list[str]
    UUIDs: list[str]


class Device1(TypedDict, total=False):
    """``org.bluez.Device1`` properties of a remote advertiser (bleak requires Adapter, Address, Alias)."""

    Adapter: str
    Address: str
    AddressType: str
    Alias: str
    Name: str
    UUIDs: list[str]
    ManufacturerData: dict[int, bytes]
    ServiceData: dict[str, bytes]
    TxPower: int
    RSSI: int
    Connected: bool


class LEAdvertisement1(TypedDict, total=False):
    """``org.bluez.LEAdvertisement1`` properties bluezoned's advertisement exports."""

    Type: str
    ServiceUUIDs: list[str]
    ServiceData: dict[str, bytes]
    ManufacturerData: dict[int, bytes]
    Includes: list[str]
    MinInterval: int
    MaxInterval: int


class LEAdvertisingManager1(TypedDict, total=False):
    """``org.bluez.LEAdvertisingManager1`` properties; SupportedInstances counts free slots."""

    ActiveInstances: int
    SupportedInstances: int
    SupportedIncludes: list[str]
    SupportedSecondaryChannels: list[str]
    SupportedFeatures: list[str]


def adapter_path(name: str) -> str:
    """Object path of adapter ``hciN``."""
    return f"{BLUEZ_ROOT_PATH}/{name}"


def adapter_name(path: str) -> str:
    """``hciN`` from an adapter object path."""
    return path.rsplit("/", 1)[-1]


def is_adapter_path(path: str) -> bool:
    """Whether ``path`` is an adapter object (``/org/bluez/hciN``), not a device below it."""
    prefix = BLUEZ_ROOT_PATH + "/"
    return path.startswith(prefix) and "/" not in path[len(prefix) :]
