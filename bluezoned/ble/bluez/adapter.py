"""One system-bus connection to BlueZ: bounded calls, adapter lookup by name or MAC, and events.

Adapters are configured by MAC because ``hciN`` numbers move across reboots and USB resets
(linux-ble.md §6); :meth:`BluezConnection.resolve` maps either form to the current ``hciN``.
Events come from ``NameOwnerChanged(org.bluez)``, ``InterfacesAdded``/``InterfacesRemoved`` of
adapters and their ``Powered`` changes (§7.3, §13 item 5).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from bluezoned.ble.bluez import defs
from bluezoned.const import DBUS_CALL_TIMEOUT
from bluezoned.errors import BluetoothUnavailable, BluetoothUnavailableReason, InvalidInput

_log = logging.getLogger(__name__)

_MAC: Final = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_ADAPTER_NAME: Final = re.compile(r"^hci[0-9]+$")


class BluezEvent(enum.Enum):
    """Something happened to bluetoothd or an adapter."""

    BLUEZ_GONE = "bluetoothd left the bus"
    BLUEZ_BACK = "bluetoothd (re)appeared on the bus"
    ADAPTER_ADDED = "an adapter appeared"
    ADAPTER_REMOVED = "an adapter disappeared"
    ADAPTER_POWERED = "an adapter was powered on"
    ADAPTER_UNPOWERED = "an adapter was powered off"
    ADVERTISING_ADDED = "an adapter gained LEAdvertisingManager1"


EventCallback = Callable[[BluezEvent, str], None]
"""Receives an event and the adapter name it concerns ("" for bluetoothd itself)."""


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """A BlueZ adapter as found on the bus."""

    name: str
    address: str
    powered: bool
    passive_scan: bool
    can_advertise: bool

    @property
    def path(self) -> str:
        """Its object path."""
        return defs.adapter_path(self.name)


class DBusCallError(Exception):
    """A D-Bus call failed; ``error_name`` is the D-Bus error name (``...Timeout`` on our timeout)."""

    def __init__(self, error_name: str, text: str = "") -> None:
        self.error_name = error_name
        self.text = text
        super().__init__(f"{error_name}: {text}" if text else error_name)


CALL_TIMEOUT_ERROR: Final = "bluezoned.Error.Timeout"
"""Pseudo error name for a call that hit our own timeout."""


def check_adapter_spec(spec: str) -> str:
    """Validate an adapter given as ``hciN`` or a MAC; MACs are returned upper-case."""
    if _ADAPTER_NAME.match(spec):
        return spec
    if _MAC.match(spec):
        return spec.upper()
    raise InvalidInput(f"adapter {spec!r} is neither hciN nor a MAC address")


def select_adapter(
    managed_objects: dict[str, dict[str, dict[str, Any]]], spec: str
) -> AdapterInfo | None:
    """Find adapter ``spec`` (hciN or MAC) in a GetManagedObjects reply (values unwrapped)."""
    spec = check_adapter_spec(spec)
    for path, interfaces in managed_objects.items():
        props = interfaces.get(defs.ADAPTER_INTERFACE)
        if props is None or not defs.is_adapter_path(path):
            continue
        name = defs.adapter_name(path)
        address = str(props.get("Address", "")).upper()
        if spec in (name, address):
            return AdapterInfo(
                name=name,
                address=address,
                powered=bool(props.get("Powered", False)),
                passive_scan=defs.ADVERTISEMENT_MONITOR_MANAGER_INTERFACE in interfaces,
                can_advertise=defs.ADVERTISING_MANAGER_INTERFACE in interfaces,
            )
    return None


class BluezConnection:
    """A dedicated system-bus connection used for BlueZ calls and presence events."""

    def __init__(self, bus: MessageBus, *, call_timeout: float = DBUS_CALL_TIMEOUT) -> None:
        self._bus = bus
        self._timeout = call_timeout
        self._callbacks: list[EventCallback] = []
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, *, call_timeout: float = DBUS_CALL_TIMEOUT) -> BluezConnection:
        """Connect to the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` honoured) and subscribe to events."""
        try:
            async with asyncio.timeout(call_timeout):
                bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except TimeoutError as exc:
            raise BluetoothUnavailable(BluetoothUnavailableReason.TIMEOUT, "system bus") from exc
        except (OSError, DBusError, ValueError) as exc:
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_BUS, str(exc)) from exc
        conn = cls(bus, call_timeout=call_timeout)
        try:
            for rule in _match_rules():
                await conn.call(
                    defs.DBUS_SERVICE, defs.DBUS_PATH, defs.DBUS_INTERFACE, "AddMatch", "s", [rule]
                )
        except DBusCallError as exc:
            bus.disconnect()
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_BUS, str(exc)) from exc
        return conn

    @property
    def bus(self) -> MessageBus:
        """The underlying connection (for exporting objects inside ``ble.bluez``)."""
        return self._bus

    @property
    def connected(self) -> bool:
        """Whether the bus connection is still up."""
        return bool(self._bus.connected)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback`` on every event; returns the unsubscribe function."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def disconnect(self) -> None:
        """Close the connection; idempotent."""
        self._callbacks.clear()
        if self._bus.connected:
            self._bus.disconnect()

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> list[Any]:
        """Call a method under the timeout; return the reply body or raise DBusCallError."""
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._bus.call(msg)
        except TimeoutError as exc:
            raise DBusCallError(CALL_TIMEOUT_ERROR, f"{interface}.{member} on {path}") from exc
        except (OSError, EOFError) as exc:
            raise DBusCallError(defs.DBUS_ERROR_NO_REPLY, str(exc)) from exc
        if reply is None:
            raise DBusCallError(defs.DBUS_ERROR_NO_REPLY, f"{interface}.{member}")
        if reply.message_type == MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DBusCallError(reply.error_name or "", text)
        return list(reply.body)

    async def bluez_call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> list[Any]:
        """:meth:`call` on ``org.bluez``."""
        return await self.call(defs.BLUEZ_SERVICE, path, interface, member, signature, body)

    async def managed_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """BlueZ's objects with their properties, Variants unwrapped."""
        (objects,) = await self.bluez_call(
            defs.OBJECT_MANAGER_PATH, defs.OBJECT_MANAGER_INTERFACE, defs.GET_MANAGED_OBJECTS
        )
        return {
            path: {
                iface: {k: getattr(v, "value", v) for k, v in props.items()}
                for iface, props in interfaces.items()
            }
            for path, interfaces in objects.items()
        }

    async def find_adapter(self, spec: str) -> AdapterInfo | None:
        """The adapter named ``spec`` (hciN or MAC), or None; raises DBusCallError if BlueZ is gone."""
        return select_adapter(await self.managed_objects(), spec)

    async def resolve(self, spec: str) -> AdapterInfo:
        """The adapter named ``spec``; raise BluetoothUnavailable when BlueZ or it is missing."""
        try:
            info = await self.find_adapter(spec)
        except DBusCallError as exc:
            raise unavailable_from(exc) from exc
        if info is None:
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_ADAPTER, spec)
        return info

    def _on_message(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL or not self._callbacks:
            return
        try:
            event = _event_of(msg)
        except (TypeError, ValueError, IndexError, AttributeError):  # hostile or odd signal
            return
        if event is None:
            return
        for callback in list(self._callbacks):
            try:
                callback(*event)
            except Exception:  # noqa: BLE001 - a subscriber bug must not break dispatch
                _log.exception("BlueZ event callback failed")


def unavailable_from(exc: DBusCallError) -> BluetoothUnavailable:
    """Translate a failed BlueZ call into the public error."""
    name = exc.error_name
    if name == CALL_TIMEOUT_ERROR:
        reason = BluetoothUnavailableReason.TIMEOUT
    elif name == defs.DBUS_ERROR_ACCESS_DENIED:
        reason = BluetoothUnavailableReason.ACCESS_DENIED
    elif name in (defs.DBUS_ERROR_SERVICE_UNKNOWN, defs.DBUS_ERROR_NAME_HAS_NO_OWNER):
        reason = BluetoothUnavailableReason.NO_BLUEZ
    elif name in defs.BLUEZ_GONE_ERRORS:
        reason = BluetoothUnavailableReason.NO_ADAPTER
    elif name == defs.ERROR_NOT_READY:
        reason = BluetoothUnavailableReason.NOT_POWERED
    else:
        reason = BluetoothUnavailableReason.BLUEZ_ERROR
    return BluetoothUnavailable(reason, str(exc))


def _match_rules() -> list[str]:
    return [
        f"type='signal',sender='{defs.DBUS_SERVICE}',interface='{defs.DBUS_INTERFACE}',"
        f"member='{defs.NAME_OWNER_CHANGED}',arg0='{defs.BLUEZ_SERVICE}'",
        # arg0path, not arg0: arg0 never matches object-path arguments (linux-ble.md §9.7).
        f"type='signal',interface='{defs.OBJECT_MANAGER_INTERFACE}',"
        f"member='{defs.INTERFACES_ADDED}',arg0path='{defs.BLUEZ_ROOT_PATH}/'",
        f"type='signal',interface='{defs.OBJECT_MANAGER_INTERFACE}',"
        f"member='{defs.INTERFACES_REMOVED}',arg0path='{defs.BLUEZ_ROOT_PATH}/'",
        f"type='signal',interface='{defs.PROPERTIES_INTERFACE}',member='{defs.PROPERTIES_CHANGED}',"
        f"path_namespace='{defs.BLUEZ_ROOT_PATH}',arg0='{defs.ADAPTER_INTERFACE}'",
    ]


def _event_of(msg: Message) -> tuple[BluezEvent, str] | None:
    member = msg.member
    if member == defs.NAME_OWNER_CHANGED and msg.interface == defs.DBUS_INTERFACE:
        name, _old, new = msg.body
        if name != defs.BLUEZ_SERVICE:
            return None
        return (BluezEvent.BLUEZ_BACK if new else BluezEvent.BLUEZ_GONE), ""
    if member == defs.INTERFACES_ADDED and msg.interface == defs.OBJECT_MANAGER_INTERFACE:
        path, interfaces = msg.body
        if not defs.is_adapter_path(path):
            return None
        if defs.ADAPTER_INTERFACE in interfaces:
            return BluezEvent.ADAPTER_ADDED, defs.adapter_name(path)
        if defs.ADVERTISING_MANAGER_INTERFACE in interfaces:
            return BluezEvent.ADVERTISING_ADDED, defs.adapter_name(path)
        return None
    if member == defs.INTERFACES_REMOVED and msg.interface == defs.OBJECT_MANAGER_INTERFACE:
        path, interfaces = msg.body
        if defs.is_adapter_path(path) and defs.ADAPTER_INTERFACE in interfaces:
            return BluezEvent.ADAPTER_REMOVED, defs.adapter_name(path)
        return None
    if member == defs.PROPERTIES_CHANGED and msg.interface == defs.PROPERTIES_INTERFACE:
        iface, changed, _invalidated = msg.body
        path = msg.path or ""
        if iface != defs.ADAPTER_INTERFACE or not defs.is_adapter_path(path):
            return None
        powered = changed.get("Powered")
        if powered is None:
            return None
        on = bool(getattr(powered, "value", powered))
        return (
            BluezEvent.ADAPTER_POWERED if on else BluezEvent.ADAPTER_UNPOWERED
        ), defs.adapter_name(path)
    return None
