"""A simulated ``bluetoothd``: owns ``org.bluez`` on a (private) system bus and speaks BlueZ's D-Bus API.

The contract is BlueZ's real interfaces (linux-ble.md §9.4, §9.5): ObjectManager at ``/``,
``Adapter1`` with per-client discovery sessions, ``Device1`` objects appearing, updating and
expiring with bluetoothd's de-duplication and RSSI threshold, ``LEAdvertisingManager1`` that
reads the client's ``LEAdvertisement1`` before replying, and (in "experimental" mode)
``AdvertisementMonitorManager1``. Test or world code feeds received adverts with
:meth:`SimulatedBluez.report`.

Methods are served by one raw message handler instead of dbus-fast ``ServiceInterface``s: it
sees the caller's unique name (per-client sessions), can leave optional properties such as
``RSSI`` out (linux-ble.md §9.7 items 3-4) and emits ``InterfacesAdded`` from ``/`` as
bluetoothd does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from xml.sax.saxutils import quoteattr

from dbus_fast import (
    BusType,
    Message,
    MessageFlag,
    MessageType,
    NameFlag,
    RequestNameReply,
    Variant,
)
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from bluezoned.ble.bluez import defs
from bluezoned.ble.payload import uuid16_to_str
from bluezoned.ble.tasks import cancel_and_wait
from bluezoned.const import ADV_FLAGS_EN, EN_SERVICE_UUID, LEGACY_ADV_MAX_LENGTH
from bluezoned.errors import SimulatorError

_LOGGER = logging.getLogger(__name__)

# --- BlueZ vocabulary (BlueZ doc/org.bluez.*.rst) -------------------------------------------
# The simulator serves the same names the client side speaks, spelled once in ble.bluez.defs.
BLUEZ_SERVICE: Final = defs.BLUEZ_SERVICE
ADAPTER_INTERFACE: Final = defs.ADAPTER_INTERFACE
DEVICE_INTERFACE: Final = defs.DEVICE_INTERFACE
ADV_MANAGER_INTERFACE: Final = defs.ADVERTISING_MANAGER_INTERFACE
ADVERTISEMENT_INTERFACE: Final = defs.ADVERTISEMENT_INTERFACE
MONITOR_MANAGER_INTERFACE: Final = defs.ADVERTISEMENT_MONITOR_MANAGER_INTERFACE
MONITOR_INTERFACE: Final = defs.ADVERTISEMENT_MONITOR_INTERFACE
AGENT_MANAGER_INTERFACE: Final = defs.AGENT_MANAGER_INTERFACE
PROPERTIES_INTERFACE: Final = defs.PROPERTIES_INTERFACE
OBJECT_MANAGER_INTERFACE: Final = defs.OBJECT_MANAGER_INTERFACE
INTROSPECTABLE_INTERFACE: Final = defs.INTROSPECTABLE_INTERFACE
BLUEZ_ROOT: Final = defs.BLUEZ_ROOT_PATH
CONTROL_PATH: Final = "/org/bluezoned/sim"
CONTROL_INTERFACE: Final = "org.bluezoned.Sim1"
"""The simulator's own control object, beside org.bluez (linux-ble.md §9.5): Inject(s adapter,
s address, n rssi, a{sv} fields), FailNext(sss), AddAdapter(s name, s address, b experimental),
RemoveAdapter(s), SetPowered(sb), SetStalled(sb), Restart(d downtime, b graceful), GetState() -> s (JSON)."""
CONTROL_ERROR: Final = "org.bluezoned.Sim1.Error"

ERROR_IN_PROGRESS: Final = defs.ERROR_IN_PROGRESS
ERROR_NOT_READY: Final = defs.ERROR_NOT_READY
ERROR_FAILED: Final = defs.ERROR_FAILED
ERROR_INVALID_ARGUMENTS: Final = defs.ERROR_INVALID_ARGUMENTS
ERROR_INVALID_LENGTH: Final = defs.ERROR_INVALID_LENGTH
ERROR_ALREADY_EXISTS: Final = defs.ERROR_ALREADY_EXISTS
ERROR_DOES_NOT_EXIST: Final = defs.ERROR_DOES_NOT_EXIST
ERROR_NOT_PERMITTED: Final = defs.ERROR_NOT_PERMITTED
ERROR_NOT_SUPPORTED: Final = defs.ERROR_NOT_SUPPORTED
DBUS_INVALID_ARGS: Final = defs.DBUS_ERROR_INVALID_ARGS
DBUS_UNKNOWN_METHOD: Final = defs.DBUS_ERROR_UNKNOWN_METHOD
DBUS_UNKNOWN_OBJECT: Final = defs.DBUS_ERROR_UNKNOWN_OBJECT

# --- bluetoothd behaviour numbers -----------------------------------------------------------
RSSI_THRESHOLD: Final = 8
"""dBm an RSSI must move before bluetoothd signals it, without an RSSI/Pathloss/UUID filter
(``src/device.c`` RSSI_THRESHOLD)."""
DEFAULT_TEMPORARY_TIMEOUT_S: Final = 30.0
"""main.conf ``TemporaryTimeout`` default: a temporary device goes this long after its last report."""
DEFAULT_MAX_ADVERTISEMENTS: Final = 5
"""Kernel ``HCI_MAX_ADV_INSTANCES`` for software-rotated instances (Pi controllers, linux-ble.md §8.7)."""
DEFAULT_MAX_DEVICES: Final = 5_000
"""Not a bluetoothd limit: the simulator's own memory bound, so a flood test or a week-long demo
cannot grow it; the least recently heard device is evicted as if it had expired."""
RSSI_FILTER_MIN: Final = -127
RSSI_FILTER_MAX: Final = 20
"""SetDiscoveryFilter accepts RSSI in -127..20 (``src/adapter.c`` parse_rssi)."""
PATHLOSS_FILTER_MAX: Final = 137
ADV_INTERVAL_MIN_MS: Final = 20
ADV_INTERVAL_MAX_MS: Final = 10_485_759
"""LEAdvertisement1 Min/MaxInterval range (0x0020..0xFFFFFF units of 0.625 ms, in ms)."""
NAME_RETRIES: Final = 20
NAME_RETRY_S: Final = 0.05
"""After a restart the bus may take a moment to notice the old connection closed: retry for ~1 s."""
CALL_LOG_LENGTH: Final = 2_000
"""Recent D-Bus calls kept for tests to assert on; bounded so a long run stays small."""
ADVERT_HISTORY_LENGTH: Final = 64
"""In-place refreshes remembered per registered advertisement."""
DISCOVERY_FILTER_KEYS: Final = (
    "UUIDs",
    "RSSI",
    "Pathloss",
    "Transport",
    "DuplicateData",
    "Discoverable",
    "Pattern",
)
AD_FLAGS_DISCOVERABLE_MASK: Final = 0x03
"""LE Limited | LE General Discoverable: bluetoothd drops new LE devices without them unless a
filter, a monitor or connectability says otherwise (``btd_adapter_device_found``)."""
AD_FLAGS_GENERAL_DISCOVERABLE: Final = 0x02
SUPPORTED_INCLUDES: Final = ("tx-power", "appearance", "local-name")

_ADDRESS_RE: Final = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_ADVERT_TYPES: Final = ("broadcast", "peripheral")


# --- Pure helpers --------------------------------------------------------------------------


def normalize_uuid(uuid: str | int) -> str:
    """A UUID as BlueZ reports it: lowercase 128-bit; accepts ints and 16/32-bit hex strings."""
    if isinstance(uuid, int):
        return uuid16_to_str(uuid)
    text = uuid.strip().lower()
    if len(text) == 4:
        return uuid16_to_str(int(text, 16))
    if len(text) == 8:
        return f"{text}-0000-1000-8000-00805f9b34fb"
    return text


_K = TypeVar("_K")
_V = TypeVar("_V")


def _merge_ad_data(
    current: dict[_K, _V], incoming: dict[_K, _V], duplicate_data: bool
) -> tuple[dict[_K, _V], bool]:
    """A device's data after a report, and whether it changed: with DuplicateData every report
    replaces it and counts as a change; without, new entries merge in and only a different
    value is a change (BlueZ's de-duplication)."""
    if duplicate_data:
        return dict(incoming), True
    changed = any(current.get(k) != v for k, v in incoming.items())
    return {**current, **incoming}, changed


def device_path(adapter_path: str, address: str) -> str:
    """``/org/bluez/hciN/dev_AA_BB_CC_DD_EE_FF`` for a device address."""
    return f"{adapter_path}/dev_{address.upper().replace(':', '_')}"


def nrpa(random_bytes: bytes) -> str:
    """The non-resolvable private address (two top bits 00) made of 6 random bytes, as the kernel
    makes for broadcast adverts; never the forbidden all-zero or all-one random part."""
    octets = list(random_bytes[:6])
    octets[0] &= 0x3F
    if all(o == 0 for o in octets) or all(o == 0xFF for o in octets[1:]):
        octets[-1] = 0x01
    return ":".join(f"{o:02X}" for o in octets)


def random_nrpa(rng: random.Random) -> str:
    """A fresh non-resolvable private address from ``rng``."""
    return nrpa(rng.randbytes(6))


def random_static_address(rng: random.Random) -> str:
    """A random static address (two top bits 11), the kind a simulated adapter or phone uses."""
    octets = [rng.randrange(256) for _ in range(6)]
    octets[0] |= 0xC0
    return ":".join(f"{o:02X}" for o in octets)


def _uuid_short_bytes(uuid: str) -> bytes:
    if uuid.endswith("-0000-1000-8000-00805f9b34fb"):
        value = int(uuid[:8], 16)
        return value.to_bytes(2 if value <= 0xFFFF else 4, "little")
    return bytes.fromhex(uuid.replace("-", ""))[::-1]


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


@dataclass(frozen=True, slots=True)
class Report:
    """One advertising report as the controller hands it to bluetoothd."""

    address: str
    rssi: int
    service_data: Mapping[str, bytes | Variant] = field(default_factory=dict)
    """128-bit UUID string -> bytes; a ``Variant`` is passed through unchanged (hostile tests)."""
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    uuids: tuple[str, ...] = ()
    tx_power: int | None = None
    name: str | None = None
    flags: int | None = None
    """The Flags AD byte, or None when the advert carries none (BlueZ broadcast adverts)."""
    connectable: bool = False
    address_type: str = "random"

    def service_uuids(self) -> list[str]:
        """UUIDs as bluetoothd adds them to Device1.UUIDs: listed ones, then service-data ones."""
        out = [normalize_uuid(u) for u in self.uuids]
        out.extend(normalize_uuid(u) for u in self.service_data if normalize_uuid(u) not in out)
        return out

    def ad_bytes(self) -> bytes:
        """The advertising data rebuilt from the fields, for monitor pattern matching and sizes."""
        return build_ad_bytes(
            flags=self.flags,
            uuids=[normalize_uuid(u) for u in self.uuids],
            manufacturer_data=self.manufacturer_data,
            service_data={
                normalize_uuid(k): v.value if isinstance(v, Variant) else v
                for k, v in self.service_data.items()
            },
            name=self.name,
            tx_power=self.tx_power,
        )


def build_ad_bytes(
    *,
    flags: int | None = None,
    uuids: Sequence[str] = (),
    solicit_uuids: Sequence[str] = (),
    manufacturer_data: Mapping[int, bytes] | None = None,
    service_data: Mapping[str, Any] | None = None,
    name: str | None = None,
    appearance: int | None = None,
    tx_power: int | None = None,
    raw: Mapping[int, bytes] | None = None,
) -> bytes:
    """Advertising data in the order ``bt_ad_generate`` (BlueZ ``src/shared/ad.c``) writes it."""
    out = b"" if flags is None else _ad(0x01, bytes([flags & 0xFF]))
    for list_types, items in (((0x03, 0x05, 0x07), uuids), ((0x14, 0x1F, 0x15), solicit_uuids)):
        by_size: dict[int, bytes] = {2: b"", 4: b"", 16: b""}
        for uuid in items:
            short = _uuid_short_bytes(normalize_uuid(uuid))
            by_size[len(short)] += short
        for data, ad_type in zip(by_size.values(), list_types, strict=True):
            if data:
                out += _ad(ad_type, data)
    for company, data in (manufacturer_data or {}).items():
        out += _ad(0xFF, int(company).to_bytes(2, "little") + bytes(data))
    for uuid, data in (service_data or {}).items():
        short = _uuid_short_bytes(normalize_uuid(uuid))
        ad_type = {2: 0x16, 4: 0x20, 16: 0x21}[len(short)]
        out += _ad(ad_type, short + bytes(data))
    if name is not None:
        out += _ad(0x09, name.encode())
    if appearance is not None:
        out += _ad(0x19, appearance.to_bytes(2, "little"))
    if tx_power is not None:
        out += _ad(0x0A, (tx_power & 0xFF).to_bytes(1, "little"))
    for ad_type, data in (raw or {}).items():
        out += _ad(ad_type, bytes(data))
    return out


def ad_structures(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each AD structure; stops at a zero length or a truncated structure."""
    out = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0 or offset + 1 + length > len(data):
            break
        out.append((data[offset + 1], data[offset + 2 : offset + 1 + length]))
        offset += 1 + length
    return out


def or_patterns_match(patterns: Iterable[tuple[int, int, bytes]], ad: bytes) -> bool:
    """BlueZ ``or_patterns``: any (start, AD type, content) found at ``start`` in a structure of that type."""
    structures = ad_structures(ad)
    for start, ad_type, content in patterns:
        for s_type, payload in structures:
            if s_type == ad_type and payload[start : start + len(content)] == bytes(content):
                return True
    return False


@dataclass(frozen=True, slots=True)
class DiscoveryFilter:
    """One client's ``SetDiscoveryFilter`` arguments after validation (``src/adapter.c``)."""

    uuids: tuple[str, ...] = ()
    rssi: int | None = None
    pathloss: int | None = None
    transport: str = "auto"
    duplicate_data: bool = False
    discoverable: bool = False
    pattern: str = ""


def parse_discovery_filter(args: Mapping[str, Variant]) -> DiscoveryFilter | None:
    """Validate a SetDiscoveryFilter dict; None for ``{}`` (no filter). Raises DBusError InvalidArguments."""
    if not args:
        return None
    values: dict[str, Any] = {}
    expected = {
        "UUIDs": "as",
        "RSSI": "n",
        "Pathloss": "q",
        "Transport": "s",
        "DuplicateData": "b",
        "Discoverable": "b",
        "Pattern": "s",
    }
    for key, variant in args.items():
        signature = expected.get(key)
        if signature is None or not isinstance(variant, Variant) or variant.signature != signature:
            raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
        values[key] = variant.value
    rssi = values.get("RSSI")
    pathloss = values.get("Pathloss")
    if rssi is not None and pathloss is not None:
        raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
    if rssi is not None and not RSSI_FILTER_MIN <= rssi <= RSSI_FILTER_MAX:
        raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
    if pathloss is not None and pathloss > PATHLOSS_FILTER_MAX:
        raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
    transport = values.get("Transport", "auto")
    if transport not in ("auto", "bredr", "le"):
        raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
    try:
        uuids = tuple(normalize_uuid(u) for u in values.get("UUIDs", []))
    except ValueError as exc:
        raise DBusError(ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call") from exc
    return DiscoveryFilter(
        uuids=uuids,
        rssi=rssi,
        pathloss=pathloss,
        transport=transport,
        duplicate_data=bool(values.get("DuplicateData", False)),
        discoverable=bool(values.get("Discoverable", False)),
        pattern=values.get("Pattern", ""),
    )


@dataclass(frozen=True, slots=True)
class MergedDiscovery:
    """What the kernel is asked for when several clients discover (``merge_discovery_filters``)."""

    filtered: bool
    """bluetoothd's ``filtered_discovery``: an RSSI floor or a UUID list reached the kernel."""
    rssi_floor: int | None
    uuids: tuple[str, ...]
    le: bool
    duplicate_data: bool


def merge_filters(filters: Sequence[DiscoveryFilter | None]) -> MergedDiscovery:
    """Merge the running sessions' filters as bluetoothd does; a filterless session wins everything."""
    duplicate = any(f is not None and f.duplicate_data for f in filters)
    le = any(f is None or f.transport in ("auto", "le") for f in filters)
    if not filters or any(f is None for f in filters):
        return MergedDiscovery(False, None, (), le, duplicate)
    rssi: int | None = None
    pathloss_seen = False
    uuids: list[str] = []
    empty_uuid = False
    for f in filters:
        if f is None:
            continue
        if f.rssi is not None:
            rssi = f.rssi if rssi is None else min(rssi, f.rssi)
        if f.pathloss is not None:
            pathloss_seen = True  # the kernel takes no pathloss: bluetoothd drops the floor
        if not f.uuids:
            empty_uuid = True
        uuids.extend(u for u in f.uuids if u not in uuids)
    if pathloss_seen:
        rssi = None
    merged_uuids = () if empty_uuid else tuple(uuids)
    return MergedDiscovery(
        rssi is not None or bool(merged_uuids), rssi, merged_uuids, le, duplicate
    )


def filter_match(
    filters: Sequence[DiscoveryFilter | None], uuids: Sequence[str], rssi: int, tx_power: int | None
) -> bool:
    """bluetoothd's ``is_filter_match``, including its quirk that an RSSI-only filter never rejects."""
    for f in filters:
        if f is None:
            return True
        if f.uuids and not any(u in uuids for u in f.uuids):
            continue
        if (
            f.rssi is None
            or f.rssi <= rssi
            or f.pathloss is None
            or (tx_power is not None and tx_power - rssi <= f.pathloss)
        ):
            return True
    return False


# --- State ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """What survives a simulated bluetoothd restart: the controller's identity and capabilities."""

    name: str = "hci0"
    address: str = "00:1A:7D:DA:71:13"
    alias: str | None = None
    powered: bool = True
    experimental: bool = False
    """Whether AdvertisementMonitorManager1 exists (bluetoothd -E)."""
    max_advertisements: int = DEFAULT_MAX_ADVERTISEMENTS


@dataclass(frozen=True, slots=True)
class Call:
    """One method call the simulator served, for tests to assert on."""

    sender: str
    path: str
    interface: str
    member: str
    body: tuple[Any, ...]


@dataclass(slots=True)
class Fault:
    """A one-shot injected failure: the next call of ``method`` (on ``adapter``, if set) fails."""

    method: str
    error: str
    text: str
    adapter: str | None = None


@dataclass(slots=True)
class _Device:
    path: str
    address: str
    address_type: str
    adapter: _Adapter
    last_seen: float
    rssi: int | None = None
    tx_power: int | None = None
    name: str | None = None
    flags: int | None = None
    connectable: bool = False
    uuids: list[str] = field(default_factory=list)
    service_data: dict[str, Variant] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    reported_to: set[str] = field(default_factory=set)
    """Monitor keys this device was announced to with DeviceFound."""

    def properties(self) -> dict[str, Variant]:
        props: dict[str, Variant] = {
            "Address": Variant("s", self.address),
            "AddressType": Variant("s", self.address_type),
            "Alias": Variant("s", self.name or self.address.replace(":", "-")),
            "Paired": Variant("b", False),
            "Bonded": Variant("b", False),
            "Trusted": Variant("b", False),
            "Blocked": Variant("b", False),
            "LegacyPairing": Variant("b", False),
            "Connected": Variant("b", False),
            "UUIDs": Variant("as", list(self.uuids)),
            "Adapter": Variant("o", self.adapter.path),
            "ServicesResolved": Variant("b", False),
        }
        if self.name is not None:
            props["Name"] = Variant("s", self.name)
        if self.rssi is not None:
            props["RSSI"] = Variant("n", self.rssi)
        if self.tx_power is not None:
            props["TxPower"] = Variant("n", self.tx_power)
        if self.manufacturer_data:
            props["ManufacturerData"] = Variant(
                "a{qv}", {k: Variant("ay", v) for k, v in self.manufacturer_data.items()}
            )
        if self.service_data:
            props["ServiceData"] = Variant("a{sv}", dict(self.service_data))
        if self.flags is not None:
            props["AdvertisingFlags"] = Variant("ay", bytes([self.flags]))
        return props


@dataclass(slots=True)
class RegisteredAdvertisement:
    """A client's LEAdvertisement1 that the simulated controller is sending."""

    adapter: str
    owner: str
    path: str
    properties: dict[str, Any]
    """The client's properties, unpacked from ``GetAll``."""
    address: str
    """The NRPA (broadcast) or the adapter address (peripheral) the advert goes out from."""
    ad: bytes
    """On-air advertising data, including what the kernel adds (Flags, TX power)."""
    instance: int
    registered_at: float
    history: collections.deque[bytes] = field(
        default_factory=lambda: collections.deque(maxlen=ADVERT_HISTORY_LENGTH)
    )
    """Every payload the advert carried, oldest first (refreshes by PropertiesChanged)."""

    def as_report(self, rssi: int) -> Report:
        """What a receiver hears when this advert arrives at ``rssi``."""
        props = self.properties
        ad_structs = ad_structures(self.ad)
        flags = next((p[0] for t, p in ad_structs if t == 0x01 and p), None)
        tx_power = next(
            (
                int.from_bytes(p[:1], "little", signed=True)
                for t, p in ad_structs
                if t == 0x0A and p
            ),
            None,
        )
        name = next((p.decode(errors="replace") for t, p in ad_structs if t in (0x08, 0x09)), None)
        return Report(
            address=self.address,
            rssi=rssi,
            service_data={
                normalize_uuid(k): bytes(v) for k, v in props.get("ServiceData", {}).items()
            },
            manufacturer_data={
                int(k): bytes(v) for k, v in props.get("ManufacturerData", {}).items()
            },
            uuids=tuple(normalize_uuid(u) for u in props.get("ServiceUUIDs", [])),
            tx_power=tx_power,
            name=name,
            flags=flags,
            connectable=props.get("Type") == "peripheral",
            address_type="random" if props.get("Type") == "broadcast" else "public",
        )


@dataclass(slots=True)
class _Monitor:
    owner: str
    root: str
    path: str
    patterns: list[tuple[int, int, bytes]]
    active: bool = False


@dataclass(slots=True)
class _MonitorApp:
    owner: str
    root: str
    monitors: dict[str, _Monitor] = field(default_factory=dict)


class _Adapter:
    """One controller: discovery sessions, devices, advertisements and monitors."""

    def __init__(self, config: AdapterConfig, index: int) -> None:
        self.config = config
        self.name = config.name
        self.path = f"{BLUEZ_ROOT}/{config.name}"
        self.index = index
        self.powered = config.powered
        self.alias = config.alias or f"bluezoned-sim #{index}"
        self.discoverable = False
        self.filters: dict[str, DiscoveryFilter | None] = {}
        """Filters set by clients (SetDiscoveryFilter), whether or not they discover yet."""
        self.sessions: dict[str, DiscoveryFilter | None] = {}
        """Clients currently discovering, with the filter they started with."""
        self.merged = merge_filters([])
        self.devices: collections.OrderedDict[str, _Device] = collections.OrderedDict()
        """Address -> device, least recently heard first (expiry order)."""
        self.advertisements: dict[tuple[str, str], RegisteredAdvertisement] = {}
        self.monitor_apps: dict[tuple[str, str], _MonitorApp] = {}
        self.stalled = False
        """A silent stall (bluez/bluez#1554): Discovering stays true but nothing arrives."""

    @property
    def discovering(self) -> bool:
        return bool(self.sessions)

    @property
    def monitoring(self) -> bool:
        return any(m.active for app in self.monitor_apps.values() for m in app.monitors.values())

    def adapter_properties(self) -> dict[str, Variant]:
        uuids = [
            "00001800-0000-1000-8000-00805f9b34fb",
            "00001801-0000-1000-8000-00805f9b34fb",
        ]
        props = {
            "Address": Variant("s", self.config.address),
            "AddressType": Variant("s", "public"),
            "Name": Variant("s", f"bluezoned-sim-{self.name}"),
            "Alias": Variant("s", self.alias),
            "Class": Variant("u", 0),
            "Powered": Variant("b", self.powered),
            "PowerState": Variant("s", "on" if self.powered else "off"),
            "Discoverable": Variant("b", self.discoverable),
            "DiscoverableTimeout": Variant("u", 180),
            "Pairable": Variant("b", False),
            "PairableTimeout": Variant("u", 0),
            "Discovering": Variant("b", self.discovering),
            "UUIDs": Variant("as", uuids),
            "Modalias": Variant("s", "usb:v1D6Bp0246d0542"),
            "Roles": Variant("as", ["central", "peripheral"]),
        }
        if self.config.experimental:
            props["ExperimentalFeatures"] = Variant("as", [])
        return props

    def adv_manager_properties(self) -> dict[str, Variant]:
        active = len(self.advertisements)
        return {
            "ActiveInstances": Variant("y", active),
            "SupportedInstances": Variant("y", max(0, self.config.max_advertisements - active)),
            "SupportedIncludes": Variant("as", list(SUPPORTED_INCLUDES)),
            "SupportedSecondaryChannels": Variant("as", []),
            "SupportedCapabilities": Variant(
                "a{sv}",
                {
                    "MaxAdvLen": Variant("y", LEGACY_ADV_MAX_LENGTH),
                    "MaxScnRspLen": Variant("y", LEGACY_ADV_MAX_LENGTH),
                },
            ),
            "SupportedFeatures": Variant("as", []),
        }

    def monitor_manager_properties(self) -> dict[str, Variant]:
        return {
            "SupportedMonitorTypes": Variant("as", ["or_patterns"]),
            "SupportedFeatures": Variant("as", []),
        }

    def interfaces(self) -> dict[str, dict[str, Variant]]:
        out = {
            INTROSPECTABLE_INTERFACE: {},
            ADAPTER_INTERFACE: self.adapter_properties(),
            PROPERTIES_INTERFACE: {},
            ADV_MANAGER_INTERFACE: self.adv_manager_properties(),
        }
        if self.config.experimental:
            out[MONITOR_MANAGER_INTERFACE] = self.monitor_manager_properties()
        return out


# --- The service ---------------------------------------------------------------------------


class SimulatedBluez:
    """bluetoothd's D-Bus face on a bus: ``await start()``, feed :meth:`report`, ``await stop()``."""

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        adapters: Sequence[AdapterConfig] = (AdapterConfig(),),
        temporary_timeout: float = DEFAULT_TEMPORARY_TIMEOUT_S,
        max_devices: int = DEFAULT_MAX_DEVICES,
        oversize_error: str = ERROR_FAILED,
        seed: int | None = None,
    ) -> None:
        self.bus_address = bus_address
        """None: the system bus named by ``DBUS_SYSTEM_BUS_ADDRESS``."""
        self._temporary_timeout = temporary_timeout
        self.max_devices = max_devices
        self.oversize_error = oversize_error
        """bluetoothd answers an oversize advert with ``Failed``; the documentation says ``InvalidLength``."""
        self.calls: collections.deque[Call] = collections.deque(maxlen=CALL_LOG_LENGTH)
        self.stats: collections.Counter[str] = collections.Counter()
        """Counters: reports received, dropped (by reason), signals emitted, devices expired."""
        self._configs: dict[str, AdapterConfig] = {c.name: c for c in adapters}
        self._adapters: dict[str, _Adapter] = {}
        self._faults: list[Fault] = []
        self._bus: MessageBus | None = None
        self._rng = random.Random(seed)  # noqa: S311 - simulated addresses, not secrets
        self._index = itertools.count()
        self._instances = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._match_rules: set[str] = set()

    # -- lifecycle --

    @property
    def running(self) -> bool:
        """Whether the simulated bluetoothd owns ``org.bluez`` right now."""
        return self._bus is not None

    @property
    def temporary_timeout(self) -> float:
        """main.conf ``TemporaryTimeout``: seconds a device lives after its last report."""
        return self._temporary_timeout

    @temporary_timeout.setter
    def temporary_timeout(self, seconds: float) -> None:
        self._temporary_timeout = seconds
        if self._sweeper is not None:  # re-arm so a shorter timeout takes effect at once
            self._sweeper.cancel()
            self._sweeper = asyncio.create_task(self._sweep_loop())

    @property
    def unique_name(self) -> str:
        """The simulator's unique bus name (the owner of ``org.bluez``)."""
        if self._bus is None or self._bus.unique_name is None:
            raise SimulatorError("the simulated BlueZ is not running")
        return self._bus.unique_name

    async def start(self) -> None:
        """Connect, export the adapters and own ``org.bluez``."""
        if self._bus is not None:
            raise SimulatorError("the simulated BlueZ is already running")
        if self.bus_address is None:
            bus = MessageBus(bus_type=BusType.SYSTEM)
        else:
            bus = MessageBus(bus_address=self.bus_address)
        await bus.connect()
        _tolerate_full_socket(bus)
        bus.add_message_handler(self._on_message)
        self._bus = bus
        self._match_rules.clear()
        await self._add_match(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            "member='NameOwnerChanged'"
        )
        for _ in range(NAME_RETRIES):
            reply = await bus.request_name(BLUEZ_SERVICE, NameFlag.DO_NOT_QUEUE)
            if reply is not RequestNameReply.EXISTS:
                break
            await asyncio.sleep(NAME_RETRY_S)  # our previous connection may not be reaped yet
        if reply is not RequestNameReply.PRIMARY_OWNER:
            bus.disconnect()
            self._bus = None
            raise SimulatorError(f"could not own {BLUEZ_SERVICE}: {reply.name}")
        # as bluetoothd: own the name first, then announce each controller as mgmt reports it
        self._emit_interfaces_added(BLUEZ_ROOT, self._managed_objects()[BLUEZ_ROOT])
        for config in self._configs.values():
            adapter = self._adapters[config.name] = _Adapter(config, next(self._index))
            self._emit_interfaces_added(adapter.path, adapter.interfaces())
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        """Drop everything and leave the bus, as a bluetoothd that exits."""
        await self._shutdown(graceful=False)

    async def restart(self, downtime: float = 0.0, *, graceful: bool = False) -> None:
        """Restart "bluetoothd": objects and registrations vanish, then the adapters come back empty.

        ``graceful`` emits InterfacesRemoved first (``systemctl restart``); otherwise the name
        simply disappears as in a crash. Clients are told nothing else (linux-ble.md §8.2 item 6).
        """
        await self._shutdown(graceful=graceful)
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self.start()

    async def __aenter__(self) -> SimulatedBluez:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- adapters --

    @property
    def adapter_names(self) -> list[str]:
        """Names of the adapters present now, e.g. ``["hci0"]``."""
        return list(self._adapters)

    def adapter_address(self, name: str = "hci0") -> str:
        """The controller address of an adapter."""
        return self._adapter(name).config.address

    def add_adapter(self, config: AdapterConfig) -> str:
        """Plug in a controller (InterfacesAdded); returns its object path."""
        if config.name in self._adapters:
            raise SimulatorError(f"adapter {config.name} already exists")
        self._configs[config.name] = config
        adapter = _Adapter(config, next(self._index))
        self._adapters[config.name] = adapter
        self._emit_interfaces_added(adapter.path, adapter.interfaces())
        return adapter.path

    def remove_adapter(self, name: str) -> AdapterConfig:
        """Unplug a controller: Release() to its advertisements and monitors, InterfacesRemoved for all."""
        adapter = self._adapter(name)
        self._teardown_adapter(adapter, signal=True)
        del self._adapters[name]
        return self._configs.pop(name)

    def set_powered(self, name: str, powered: bool) -> None:
        """Power an adapter on or off, as ``Adapter1.Powered = b`` or rfkill would."""
        adapter = self._adapter(name)
        if adapter.powered == powered:
            return
        adapter.powered = powered
        changed = {
            "Powered": Variant("b", powered),
            "PowerState": Variant("s", "on" if powered else "off"),
        }
        if not powered and adapter.sessions:
            adapter.sessions.clear()
            adapter.filters.clear()
            self._discovery_changed(adapter, was_discovering=True, extra=changed)
            return
        self._emit_properties_changed(adapter.path, ADAPTER_INTERFACE, changed)

    # -- faults and inspection --

    def fail_next(
        self,
        method: str,
        error: str = ERROR_FAILED,
        text: str = "Simulated failure",
        *,
        adapter: str | None = None,
    ) -> None:
        """Make the next call of ``method`` (e.g. ``"StartDiscovery"``) fail once with ``error``."""
        self._faults.append(Fault(method, error, text, adapter))

    def set_stalled(self, name: str, stalled: bool = True) -> None:
        """Make an adapter silently stop hearing adverts (or recover), with no error or signal."""
        self._adapter(name).stalled = stalled

    def discovery_clients(self, name: str = "hci0") -> dict[str, DiscoveryFilter | None]:
        """Unique bus names discovering on an adapter, with their filters."""
        return dict(self._adapter(name).sessions)

    def devices(self, name: str = "hci0") -> dict[str, dict[str, Any]]:
        """Address -> current Device1 properties (unpacked) of the devices an adapter knows."""
        return {
            addr: {k: v.value for k, v in dev.properties().items()}
            for addr, dev in self._adapter(name).devices.items()
        }

    def advertisements(self, name: str | None = None) -> list[RegisteredAdvertisement]:
        """Registered advertisements, on one adapter or on all."""
        adapters = [self._adapter(name)] if name else list(self._adapters.values())
        return [adv for a in adapters for adv in a.advertisements.values()]

    def state(self) -> dict[str, Any]:
        """A JSON-able summary: adapters, discovering clients, devices, advertisements, counters."""
        return {
            "adapters": {
                a.name: {
                    "address": a.config.address,
                    "powered": a.powered,
                    "discovering": sorted(a.sessions),
                    "devices": len(a.devices),
                    "advertisements": [
                        {"owner": v.owner, "path": v.path, "address": v.address, "ad": v.ad.hex()}
                        for v in a.advertisements.values()
                    ],
                    "monitors": [f"{o}{r}" for o, r in a.monitor_apps],
                }
                for a in self._adapters.values()
            },
            "stats": dict(self.stats),
        }

    def on_air(self) -> list[RegisteredAdvertisement]:
        """Advertisements being transmitted now: registered on a powered adapter.

        Powering off does not Release() them: bluetoothd keeps registrations and re-adds them on
        power-on (``btd_adv_manager_refresh``).
        """
        return [
            adv for a in self._adapters.values() if a.powered for adv in a.advertisements.values()
        ]

    def is_listening(self, name: str) -> bool:
        """Whether an adapter would hear anything now (powered, and discovering or monitoring)."""
        adapter = self._adapters.get(name)
        return (
            adapter is not None and adapter.powered and (adapter.discovering or adapter.monitoring)
        )

    # -- the radio side --

    def report(self, adapter_name: str, report: Report) -> bool:
        """The controller of ``adapter_name`` received ``report``; True if bluetoothd kept it."""
        self.stats["reports"] += 1
        adapter = self._adapters.get(adapter_name)
        if self._bus is None or adapter is None or not adapter.powered or adapter.stalled:
            self.stats["dropped_not_listening"] += 1
            return False
        discovering = adapter.discovering
        uuids = report.service_uuids()
        merged = adapter.merged
        in_discovery = discovering and merged.le
        if in_discovery and merged.rssi_floor is not None and report.rssi < merged.rssi_floor:
            in_discovery = False  # the kernel's service-discovery RSSI threshold
        if in_discovery and merged.uuids and not any(u in uuids for u in merged.uuids):
            in_discovery = False
        matched = self._matching_monitors(adapter, report) if adapter.monitor_apps else []
        if not in_discovery and not matched:
            self.stats["dropped_not_listening"] += 1
            return False
        # bluetoothd since 2024 also lets connectable adverts create devices (not only discoverable)
        discoverable = (
            merged.filtered
            or report.connectable
            or bool((report.flags or 0) & AD_FLAGS_DISCOVERABLE_MASK)
        )
        device = adapter.devices.get(report.address.upper())
        if not matched and not discoverable:
            self.stats["dropped_not_discoverable"] += 1
            return False
        if not matched and (
            merged.filtered
            and not filter_match(
                list(adapter.sessions.values()), uuids, report.rssi, report.tx_power
            )
        ):
            self.stats["dropped_filter"] += 1
            return False
        now = self._now()
        if device is None:
            self._evict_if_full(adapter)
            device = self._create_device(adapter, report, now)
        else:
            adapter.devices.move_to_end(device.address)
            device.last_seen = now
            self._update_device(adapter, device, report, merged)
        for monitor in matched:
            key = f"{monitor.owner}{monitor.path}"
            if key not in device.reported_to:
                device.reported_to.add(key)
                self._send_call(
                    monitor.owner,
                    monitor.path,
                    MONITOR_INTERFACE,
                    "DeviceFound",
                    "o",
                    [device.path],
                )
        self.stats["reports_kept"] += 1
        return True

    def remove_device(self, adapter_name: str, address: str) -> bool:
        """Forget a device (InterfacesRemoved); False if the adapter did not know it."""
        adapter = self._adapter(adapter_name)
        device = adapter.devices.get(address.upper())
        if device is None:
            return False
        self._drop_device(adapter, device)
        return True

    def expire_devices(self, now: float | None = None) -> int:
        """Remove devices unheard for ``temporary_timeout`` (runs by itself every second); returns how many."""
        now = self._now() if now is None else now
        removed = 0
        for adapter in list(self._adapters.values()):
            while adapter.devices:
                device = next(iter(adapter.devices.values()))
                if now - device.last_seen < self.temporary_timeout:
                    break
                self._drop_device(adapter, device)
                removed += 1
        self.stats["devices_expired"] += removed
        return removed

    # -- internals: lifecycle --

    def _adapter(self, name: str) -> _Adapter:
        try:
            return self._adapters[name]
        except KeyError:
            raise SimulatorError(f"no adapter {name!r}") from None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _shutdown(self, *, graceful: bool) -> None:
        sweeper, self._sweeper = self._sweeper, None
        await cancel_and_wait(sweeper)
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        bus = self._bus
        if bus is None:
            return
        for adapter in list(self._adapters.values()):
            if graceful:
                self._teardown_adapter(adapter, signal=True, release=False)
        self._adapters.clear()
        self._faults.clear()
        with contextlib.suppress(Exception):
            if graceful:
                await bus.release_name(BLUEZ_SERVICE)
        bus.disconnect()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bus.wait_for_disconnect(), 2.0)  # type: ignore[no-untyped-call]
        self._bus = None

    def _teardown_adapter(self, adapter: _Adapter, *, signal: bool, release: bool = True) -> None:
        for adv in list(adapter.advertisements.values()):
            if release:
                self._send_call(adv.owner, adv.path, ADVERTISEMENT_INTERFACE, "Release")
        adapter.advertisements.clear()
        for app in list(adapter.monitor_apps.values()):
            for monitor in app.monitors.values():
                if release:
                    self._send_call(monitor.owner, monitor.path, MONITOR_INTERFACE, "Release")
        adapter.monitor_apps.clear()
        adapter.sessions.clear()
        for device in list(adapter.devices.values()):
            self._drop_device(adapter, device, signal=signal)
        if signal:
            self._emit_interfaces_removed(adapter.path, list(adapter.interfaces()))

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(1.0, self.temporary_timeout / 4)))
            self.expire_devices()

    # -- internals: devices --

    def _create_device(self, adapter: _Adapter, report: Report, now: float) -> _Device:
        address = report.address.upper()
        device = _Device(
            path=device_path(adapter.path, address),
            address=address,
            address_type=report.address_type,
            adapter=adapter,
            last_seen=now,
            rssi=report.rssi,
            tx_power=report.tx_power,
            name=report.name,
            flags=report.flags,
            connectable=report.connectable,
            uuids=report.service_uuids(),
            service_data={normalize_uuid(k): _ay(v) for k, v in report.service_data.items()},
            manufacturer_data={int(k): bytes(v) for k, v in report.manufacturer_data.items()},
        )
        adapter.devices[address] = device
        self._emit_interfaces_added(
            device.path, _object_interfaces(DEVICE_INTERFACE, device.properties())
        )
        return device

    def _update_device(
        self, adapter: _Adapter, device: _Device, report: Report, merged: MergedDiscovery
    ) -> None:
        changed: dict[str, Variant] = {}
        delta = 0 if merged.filtered else RSSI_THRESHOLD
        if device.rssi is None or delta == 0 or abs(device.rssi - report.rssi) >= delta:
            device.rssi = report.rssi
            changed["RSSI"] = Variant("n", report.rssi)
        if report.tx_power is not None and report.tx_power != device.tx_power:
            device.tx_power = report.tx_power
            changed["TxPower"] = Variant("n", report.tx_power)
        if report.name is not None and report.name != device.name:
            device.name = report.name
            changed["Name"] = Variant("s", report.name)
            changed["Alias"] = Variant("s", report.name)
        if report.flags is not None and report.flags != device.flags:
            device.flags = report.flags
            changed["AdvertisingFlags"] = Variant("ay", bytes([report.flags]))
        new_uuids = [u for u in report.service_uuids() if u not in device.uuids]
        if new_uuids:
            device.uuids.extend(new_uuids)
            changed["UUIDs"] = Variant("as", list(device.uuids))
        duplicate = merged.duplicate_data
        if report.manufacturer_data:
            device.manufacturer_data, mfr_changed = _merge_ad_data(
                device.manufacturer_data,
                {int(k): bytes(v) for k, v in report.manufacturer_data.items()},
                duplicate,
            )
            if mfr_changed:
                changed["ManufacturerData"] = Variant(
                    "a{qv}", {k: Variant("ay", v) for k, v in device.manufacturer_data.items()}
                )
        if report.service_data:
            device.service_data, sd_changed = _merge_ad_data(
                device.service_data,
                {normalize_uuid(k): _ay(v) for k, v in report.service_data.items()},
                duplicate,
            )
            if sd_changed:
                changed["ServiceData"] = Variant("a{sv}", dict(device.service_data))
        if changed:
            self._emit_properties_changed(device.path, DEVICE_INTERFACE, changed)
        else:
            self.stats["reports_deduplicated"] += 1

    def _drop_device(self, adapter: _Adapter, device: _Device, *, signal: bool = True) -> None:
        adapter.devices.pop(device.address, None)
        for key in device.reported_to:
            for app in adapter.monitor_apps.values():
                for monitor in app.monitors.values():
                    if f"{monitor.owner}{monitor.path}" == key:
                        self._send_call(
                            monitor.owner,
                            monitor.path,
                            MONITOR_INTERFACE,
                            "DeviceLost",
                            "o",
                            [device.path],
                        )
        if signal:
            self._emit_interfaces_removed(
                device.path, [INTROSPECTABLE_INTERFACE, DEVICE_INTERFACE, PROPERTIES_INTERFACE]
            )

    def _evict_if_full(self, adapter: _Adapter) -> None:
        while len(adapter.devices) >= self.max_devices:
            oldest = next(iter(adapter.devices.values()))
            self._drop_device(adapter, oldest)
            self.stats["devices_evicted"] += 1

    def _discovery_changed(
        self, adapter: _Adapter, *, was_discovering: bool, extra: dict[str, Variant] | None = None
    ) -> None:
        adapter.merged = merge_filters(list(adapter.sessions.values()))
        changed = dict(extra or {})
        if was_discovering != adapter.discovering:
            changed["Discovering"] = Variant("b", adapter.discovering)
        if changed:
            self._emit_properties_changed(adapter.path, ADAPTER_INTERFACE, changed)
        if was_discovering and not adapter.discovering:
            # bluetoothd invalidates RSSI/TxPower and drops non-connectable temporary devices
            for device in list(adapter.devices.values()):
                if not device.connectable:
                    self._drop_device(adapter, device)
                    continue
                invalidated = [
                    n
                    for n, v in (("RSSI", device.rssi), ("TxPower", device.tx_power))
                    if v is not None
                ]
                device.rssi = device.tx_power = None
                if invalidated:
                    self._emit_properties_changed(device.path, DEVICE_INTERFACE, {}, invalidated)

    def _matching_monitors(self, adapter: _Adapter, report: Report) -> list[_Monitor]:
        ad = report.ad_bytes()
        return [
            m
            for app in adapter.monitor_apps.values()
            for m in app.monitors.values()
            if m.active and or_patterns_match(m.patterns, ad)
        ]

    # -- internals: D-Bus output --

    def _send(self, message: Message) -> None:
        if self._bus is None:
            return
        future = self._bus.send(message)
        future.add_done_callback(_ignore_send_result)

    def _emit_interfaces_added(self, path: str, interfaces: dict[str, dict[str, Variant]]) -> None:
        self.stats["signals"] += 1
        self._send(
            Message.new_signal(
                "/", OBJECT_MANAGER_INTERFACE, "InterfacesAdded", "oa{sa{sv}}", [path, interfaces]
            )
        )

    def _emit_interfaces_removed(self, path: str, interfaces: list[str]) -> None:
        self.stats["signals"] += 1
        self._send(
            Message.new_signal(
                "/", OBJECT_MANAGER_INTERFACE, "InterfacesRemoved", "oas", [path, interfaces]
            )
        )

    def _emit_properties_changed(
        self,
        path: str,
        interface: str,
        changed: dict[str, Variant],
        invalidated: Sequence[str] = (),
    ) -> None:
        self.stats["signals"] += 1
        self._send(
            Message.new_signal(
                path,
                PROPERTIES_INTERFACE,
                "PropertiesChanged",
                "sa{sv}as",
                [interface, changed, list(invalidated)],
            )
        )

    def _send_call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> None:
        """A fire-and-forget call into a client (Release, DeviceFound...), as bluetoothd makes them."""
        self._send(
            Message(
                destination=destination,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=body or [],
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    async def _add_match(self, rule: str) -> None:
        if self._bus is None or rule in self._match_rules:
            return
        self._match_rules.add(rule)
        await self._bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- internals: D-Bus input --

    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type is MessageType.SIGNAL:
            self._on_signal(msg)
            return None
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        path = msg.path or ""
        if path == CONTROL_PATH:
            return self._on_control(msg)
        if not (path == "/" or path == BLUEZ_ROOT or path.startswith(BLUEZ_ROOT + "/")):
            return None
        member = msg.member or ""
        interface = msg.interface or ""
        self.calls.append(Call(msg.sender or "", path, interface, member, tuple(msg.body)))
        if interface == INTROSPECTABLE_INTERFACE and member == "Introspect":
            return Message.new_method_return(msg, "s", [self._introspect(path)])
        if path == "/":
            if interface in (OBJECT_MANAGER_INTERFACE, "") and member == "GetManagedObjects":
                return Message.new_method_return(msg, "a{oa{sa{sv}}}", [self._managed_objects()])
            return Message.new_error(msg, DBUS_UNKNOWN_METHOD, f"Unknown method {member}")
        target = self._resolve(path)
        if target is None:
            return Message.new_error(msg, DBUS_UNKNOWN_OBJECT, f"Unknown object {path}")
        adapter, device = target
        if interface == PROPERTIES_INTERFACE:
            return self._on_properties(msg, adapter, device)
        if device is not None or adapter is None:
            return Message.new_error(
                msg, DBUS_UNKNOWN_METHOD, f"Unknown method {interface}.{member}"
            )
        fault = self._take_fault(member, adapter.name)
        if interface == ADAPTER_INTERFACE:
            return self._on_adapter_call(msg, adapter, member, fault)
        if interface == ADV_MANAGER_INTERFACE and member in (
            "RegisterAdvertisement",
            "UnregisterAdvertisement",
        ):
            if fault is not None:
                return Message.new_error(msg, fault.error, fault.text)
            if member == "RegisterAdvertisement":
                self._spawn(self._register_advertisement(msg, adapter))
                return True
            return self._unregister_advertisement(msg, adapter)
        if (
            interface == MONITOR_MANAGER_INTERFACE
            and adapter.config.experimental
            and member in ("RegisterMonitor", "UnregisterMonitor")
        ):
            if fault is not None:
                return Message.new_error(msg, fault.error, fault.text)
            return self._on_monitor_call(msg, adapter, member)
        return Message.new_error(msg, DBUS_UNKNOWN_METHOD, f"Unknown method {interface}.{member}")

    def _resolve(self, path: str) -> tuple[_Adapter | None, _Device | None] | None:
        if path == BLUEZ_ROOT:
            return None, None
        parts = path[len(BLUEZ_ROOT) + 1 :].split("/")
        adapter = self._adapters.get(parts[0])
        if adapter is None:
            return None
        if len(parts) == 1:
            return adapter, None
        if len(parts) == 2 and parts[1].startswith("dev_"):
            device = adapter.devices.get(parts[1][4:].replace("_", ":"))
            return (adapter, device) if device is not None else None
        return None

    def _take_fault(self, member: str, adapter: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.method == member and fault.adapter in (None, adapter):
                del self._faults[i]
                return fault
        return None

    def _on_adapter_call(
        self, msg: Message, adapter: _Adapter, member: str, fault: Fault | None
    ) -> Message:
        sender = msg.sender or ""
        if member == "StopDiscovery":
            # an injected StopDiscovery failure comes after the session was dropped (bluetoothd)
            if not adapter.powered:
                return Message.new_error(msg, ERROR_NOT_READY, "Resource Not Ready")
            if sender not in adapter.sessions:
                return Message.new_error(msg, ERROR_FAILED, "No discovery started")
            was = adapter.discovering
            del adapter.sessions[sender]
            adapter.filters.pop(sender, None)
            self._discovery_changed(adapter, was_discovering=was)
            if fault is not None:
                return Message.new_error(msg, fault.error, fault.text)
            return Message.new_method_return(msg)
        if fault is not None:
            return Message.new_error(msg, fault.error, fault.text)
        if member == "GetDiscoveryFilters":
            return Message.new_method_return(msg, "as", [list(DISCOVERY_FILTER_KEYS)])
        if member == "RemoveDevice":
            if msg.signature != "o":
                return Message.new_error(
                    msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call"
                )
            target = self._resolve(msg.body[0])
            if target is None or target[1] is None or target[0] is not adapter:
                return Message.new_error(msg, ERROR_DOES_NOT_EXIST, "Does Not Exist")
            self._drop_device(adapter, target[1])
            return Message.new_method_return(msg)
        if member not in ("StartDiscovery", "SetDiscoveryFilter"):
            return Message.new_error(msg, DBUS_UNKNOWN_METHOD, f"Unknown method {member}")
        if not adapter.powered:
            return Message.new_error(msg, ERROR_NOT_READY, "Resource Not Ready")
        if member == "SetDiscoveryFilter":
            if msg.signature != "a{sv}":
                return Message.new_error(
                    msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call"
                )
            try:
                parsed = parse_discovery_filter(msg.body[0])
            except DBusError as exc:
                return Message.new_error(msg, exc.type, exc.text)
            adapter.filters[sender] = parsed
            if sender in adapter.sessions:
                adapter.sessions[sender] = parsed
                self._discovery_changed(adapter, was_discovering=True)
            return Message.new_method_return(msg)
        if sender in adapter.sessions:
            return Message.new_error(msg, ERROR_IN_PROGRESS, "Operation already in progress")
        was = adapter.discovering
        adapter.sessions[sender] = adapter.filters.get(sender)
        self._discovery_changed(adapter, was_discovering=was)
        return Message.new_method_return(msg)

    def _on_properties(
        self, msg: Message, adapter: _Adapter | None, device: _Device | None
    ) -> Message:
        member = msg.member
        if device is not None:
            objects = {DEVICE_INTERFACE: device.properties()}
        elif adapter is not None:
            objects = adapter.interfaces()
        else:
            objects = {AGENT_MANAGER_INTERFACE: {}}
        if member == "GetAll" and msg.signature == "s":
            return Message.new_method_return(msg, "a{sv}", [objects.get(msg.body[0], {})])
        if member == "Get" and msg.signature == "ss":
            value = objects.get(msg.body[0], {}).get(msg.body[1])
            if value is None:
                return Message.new_error(
                    msg, DBUS_INVALID_ARGS, f"No such property '{msg.body[1]}'"
                )
            return Message.new_method_return(msg, "v", [value])
        if member == "Set" and msg.signature == "ssv" and adapter is not None and device is None:
            interface, name, value = msg.body
            if interface == ADAPTER_INTERFACE and name == "Powered" and value.signature == "b":
                self.set_powered(adapter.name, bool(value.value))
                return Message.new_method_return(msg)
            if interface == ADAPTER_INTERFACE and name == "Alias" and value.signature == "s":
                adapter.alias = value.value or f"bluezoned-sim #{adapter.index}"
                self._emit_properties_changed(
                    adapter.path, ADAPTER_INTERFACE, {"Alias": Variant("s", adapter.alias)}
                )
                return Message.new_method_return(msg)
            if interface == ADAPTER_INTERFACE and name == "Discoverable" and value.signature == "b":
                adapter.discoverable = bool(value.value)
                self._emit_properties_changed(
                    adapter.path, ADAPTER_INTERFACE, {"Discoverable": value}
                )
                return Message.new_method_return(msg)
            return Message.new_error(
                msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call"
            )
        return Message.new_error(msg, DBUS_INVALID_ARGS, "Invalid arguments")

    def _on_signal(self, msg: Message) -> None:
        if (
            msg.member == "NameOwnerChanged"
            and msg.sender == "org.freedesktop.DBus"
            and msg.signature == "sss"
        ):
            name, _old, new = msg.body
            if not new and name.startswith(":"):
                self._client_gone(name)
            return
        sender = msg.sender or ""
        if msg.member == "PropertiesChanged" and msg.interface == PROPERTIES_INTERFACE and msg.body:
            if msg.body[0] == ADVERTISEMENT_INTERFACE:
                self._advertisement_changed(sender, msg.path or "", msg.body[1], msg.body[2])
            return
        if msg.interface == OBJECT_MANAGER_INTERFACE and msg.member in (
            "InterfacesAdded",
            "InterfacesRemoved",
        ):
            self._monitor_objects_changed(sender, msg)

    def _client_gone(self, name: str) -> None:
        for adapter in self._adapters.values():
            if name in adapter.sessions:
                was = adapter.discovering
                del adapter.sessions[name]
                self._discovery_changed(adapter, was_discovering=was)
            adapter.filters.pop(name, None)
            gone = [key for key in adapter.advertisements if key[0] == name]
            for key in gone:
                del adapter.advertisements[key]
            if gone:
                self._emit_adv_manager_changed(adapter)
            for key in [k for k in adapter.monitor_apps if k[0] == name]:
                del adapter.monitor_apps[key]

    # -- internals: advertising --

    async def _register_advertisement(self, msg: Message, adapter: _Adapter) -> None:
        sender = msg.sender or ""
        if msg.signature != "oa{sv}":
            self._send(
                Message.new_error(msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call")
            )
            return
        path = msg.body[0]
        key = (sender, path)
        if key in adapter.advertisements:
            self._send(Message.new_error(msg, ERROR_ALREADY_EXISTS, "Already Exists"))
            return
        if len(adapter.advertisements) >= adapter.config.max_advertisements:
            self._send(
                Message.new_error(msg, ERROR_NOT_PERMITTED, "Maximum advertisements reached")
            )
            return
        bus = self._bus
        if bus is None:
            return
        reply = await bus.call(
            Message(
                destination=sender,
                path=path,
                interface=PROPERTIES_INTERFACE,
                member="GetAll",
                signature="s",
                body=[ADVERTISEMENT_INTERFACE],
            )
        )
        if reply.message_type is MessageType.ERROR or reply.signature != "a{sv}":
            self._send(Message.new_error(msg, ERROR_FAILED, "Failed to parse advertisement."))
            return
        props = {k: _unpack(v) for k, v in reply.body[0].items()}
        error = self._validate_advertisement(adapter, props)
        if error is not None:
            self._send(Message.new_error(msg, *error))
            return
        if (
            key in adapter.advertisements
            or len(adapter.advertisements) >= adapter.config.max_advertisements
        ):
            self._send(
                Message.new_error(msg, ERROR_NOT_PERMITTED, "Maximum advertisements reached")
            )
            return
        if self._bus is not bus or adapter.name not in self._adapters:
            return
        adv = RegisteredAdvertisement(
            adapter=adapter.name,
            owner=sender,
            path=path,
            properties=props,
            address=random_nrpa(self._rng)
            if props.get("Type") == "broadcast"
            else adapter.config.address,
            ad=self._advertisement_ad(adapter, props),
            instance=next(self._instances),
            registered_at=self._now(),
        )
        adv.history.append(adv.ad)
        adapter.advertisements[key] = adv
        await self._add_match(
            f"type='signal',sender='{sender}',path='{path}',interface='{PROPERTIES_INTERFACE}',"
            "member='PropertiesChanged'"
        )
        self._send(Message.new_method_return(msg))
        self._emit_adv_manager_changed(adapter)
        timeout = props.get("Timeout")
        if timeout:
            self._spawn(self._expire_advertisement(adapter, key, adv, float(timeout)))

    def _unregister_advertisement(self, msg: Message, adapter: _Adapter) -> Message:
        if msg.signature != "o":
            return Message.new_error(
                msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call"
            )
        adv = adapter.advertisements.pop((msg.sender or "", msg.body[0]), None)
        if adv is None:
            return Message.new_error(msg, ERROR_DOES_NOT_EXIST, "Does Not Exist")
        self._emit_adv_manager_changed(adapter)
        return Message.new_method_return(msg)

    async def _expire_advertisement(
        self, adapter: _Adapter, key: tuple[str, str], adv: RegisteredAdvertisement, lifetime: float
    ) -> None:
        await asyncio.sleep(lifetime)
        if adapter.advertisements.get(key) is adv:
            del adapter.advertisements[key]
            self._send_call(adv.owner, adv.path, ADVERTISEMENT_INTERFACE, "Release")
            self._emit_adv_manager_changed(adapter)

    def _emit_adv_manager_changed(self, adapter: _Adapter) -> None:
        props = adapter.adv_manager_properties()
        self._emit_properties_changed(
            adapter.path,
            ADV_MANAGER_INTERFACE,
            {k: props[k] for k in ("ActiveInstances", "SupportedInstances")},
        )

    def _validate_advertisement(
        self, adapter: _Adapter, props: dict[str, Any]
    ) -> tuple[str, str] | None:
        failed = (ERROR_FAILED, "Failed to parse advertisement.")
        adv_type = props.get("Type")
        if adv_type not in _ADVERT_TYPES:
            return failed
        if adv_type == "broadcast" and props.get("Discoverable"):
            return failed
        low, high = props.get("MinInterval"), props.get("MaxInterval")
        for value in (low, high):
            if value is not None and not ADV_INTERVAL_MIN_MS <= value <= ADV_INTERVAL_MAX_MS:
                return failed
        if low is not None and high is not None and low > high:
            return failed
        includes = props.get("Includes", [])
        if any(i not in SUPPORTED_INCLUDES for i in includes):
            return failed
        data = props.get("Data", {})
        if any(int(t) in (0x01, 0x0A) for t in data):
            return failed  # Flags and TX power belong to the kernel
        try:
            ad = self._advertisement_ad(adapter, props)
        except (ValueError, TypeError, KeyError):
            return failed
        if len(ad) > LEGACY_ADV_MAX_LENGTH:
            text = (
                "Failed to parse advertisement."
                if self.oversize_error == ERROR_FAILED
                else "Invalid Length"
            )
            return (self.oversize_error, text)
        return None

    def _advertisement_ad(self, adapter: _Adapter, props: Mapping[str, Any]) -> bytes:
        includes = props.get("Includes", [])
        flags = None
        if props.get("Type") == "peripheral" and (
            props.get("Discoverable") or adapter.discoverable
        ):
            flags = 0x06 if not props.get("Discoverable") else AD_FLAGS_GENERAL_DISCOVERABLE | 0x04
        name = props.get("LocalName")
        if name is None and "local-name" in includes:
            name = adapter.alias
        return build_ad_bytes(
            flags=flags,
            uuids=[str(u) for u in props.get("ServiceUUIDs", [])],
            solicit_uuids=[str(u) for u in props.get("SolicitUUIDs", [])],
            manufacturer_data={
                int(k): bytes(v) for k, v in props.get("ManufacturerData", {}).items()
            },
            service_data={str(k): bytes(v) for k, v in props.get("ServiceData", {}).items()},
            name=name,
            appearance=props.get("Appearance"),
            tx_power=props.get("TxPower", 0) if "tx-power" in includes else None,
            raw={int(k): bytes(v) for k, v in props.get("Data", {}).items()},
        )

    def _advertisement_changed(
        self, sender: str, path: str, changed: dict[str, Variant], invalidated: list[str]
    ) -> None:
        for adapter in self._adapters.values():
            adv = adapter.advertisements.get((sender, path))
            if adv is None:
                continue
            props = dict(adv.properties)
            props.update({k: _unpack(v) for k, v in changed.items()})
            for name in invalidated:
                props.pop(name, None)
            if self._validate_advertisement(adapter, props) is not None:
                self.stats["advertisement_refresh_rejected"] += 1
                continue
            adv.properties = props
            adv.ad = self._advertisement_ad(adapter, props)
            adv.history.append(adv.ad)

    # -- internals: monitors --

    def _on_monitor_call(self, msg: Message, adapter: _Adapter, member: str) -> Message:
        if msg.signature != "o":
            return Message.new_error(
                msg, ERROR_INVALID_ARGUMENTS, "Invalid arguments in method call"
            )
        key = (msg.sender or "", msg.body[0])
        if member == "UnregisterMonitor":
            app = adapter.monitor_apps.pop(key, None)
            if app is None:
                return Message.new_error(msg, ERROR_DOES_NOT_EXIST, "Does Not Exist")
            return Message.new_method_return(msg)
        if key in adapter.monitor_apps:
            return Message.new_error(msg, ERROR_ALREADY_EXISTS, "Already Exists")
        adapter.monitor_apps[key] = _MonitorApp(owner=key[0], root=key[1])
        self._spawn(self._load_monitor_app(adapter, key))
        return Message.new_method_return(msg)

    async def _load_monitor_app(self, adapter: _Adapter, key: tuple[str, str]) -> None:
        sender, root = key
        await self._add_match(
            f"type='signal',sender='{sender}',interface='{OBJECT_MANAGER_INTERFACE}'"
        )
        if self._bus is None:
            return
        reply = await self._bus.call(
            Message(
                destination=sender,
                path=root,
                interface=OBJECT_MANAGER_INTERFACE,
                member="GetManagedObjects",
            )
        )
        if reply.message_type is MessageType.METHOD_RETURN and reply.signature == "a{oa{sa{sv}}}":
            for path, interfaces in reply.body[0].items():
                if MONITOR_INTERFACE in interfaces:
                    self._add_monitor(adapter, key, path, interfaces[MONITOR_INTERFACE])

    def _monitor_objects_changed(self, sender: str, msg: Message) -> None:
        path = msg.body[0]
        for adapter in self._adapters.values():
            for (owner, root), app in adapter.monitor_apps.items():
                if owner != sender or not (path == root or path.startswith(root.rstrip("/") + "/")):
                    continue
                if msg.member == "InterfacesAdded" and MONITOR_INTERFACE in msg.body[1]:
                    self._add_monitor(adapter, (owner, root), path, msg.body[1][MONITOR_INTERFACE])
                elif msg.member == "InterfacesRemoved" and MONITOR_INTERFACE in msg.body[1]:
                    app.monitors.pop(path, None)

    def _add_monitor(
        self, adapter: _Adapter, key: tuple[str, str], path: str, props: dict[str, Variant]
    ) -> None:
        app = adapter.monitor_apps.get(key)
        if app is None or path in app.monitors:
            return
        values = {k: _unpack(v) for k, v in props.items()}
        patterns: list[tuple[int, int, bytes]] = []
        valid = values.get("Type") == "or_patterns" and isinstance(values.get("Patterns"), list)
        if valid:
            for pattern in values["Patterns"]:
                if not (isinstance(pattern, list | tuple) and len(pattern) == 3):
                    valid = False
                    break
                patterns.append((int(pattern[0]), int(pattern[1]), bytes(pattern[2])))
        if not valid or not patterns:
            self._send_call(key[0], path, MONITOR_INTERFACE, "Release")
            return
        app.monitors[path] = _Monitor(
            owner=key[0], root=key[1], path=path, patterns=patterns, active=True
        )
        self._send_call(key[0], path, MONITOR_INTERFACE, "Activate")

    # -- internals: control interface (for programs under test in another process) --

    def _on_control(self, msg: Message) -> Message | bool:
        member, sig, body = msg.member, msg.signature, msg.body
        if msg.interface == INTROSPECTABLE_INTERFACE:
            return Message.new_method_return(
                msg, "s", [f"<node><interface name={quoteattr(CONTROL_INTERFACE)}/></node>"]
            )
        if msg.interface != CONTROL_INTERFACE:
            return Message.new_error(
                msg, DBUS_UNKNOWN_METHOD, f"Unknown method {msg.interface}.{member}"
            )
        try:
            if member == "Inject" and sig == "ssna{sv}":
                return Message.new_method_return(
                    msg, "b", [self.report(body[0], report_from_fields(*body[1:]))]
                )
            if member == "FailNext" and sig == "sss":
                self.fail_next(body[0], body[1], body[2])
            elif member == "AddAdapter" and sig == "ssb":
                self.add_adapter(
                    AdapterConfig(name=body[0], address=body[1].upper(), experimental=body[2])
                )
            elif member == "RemoveAdapter" and sig == "s":
                self.remove_adapter(body[0])
            elif member == "SetPowered" and sig == "sb":
                self.set_powered(body[0], body[1])
            elif member == "SetStalled" and sig == "sb":
                self.set_stalled(body[0], body[1])
            elif member == "Restart" and sig == "db":
                self._send(Message.new_method_return(msg))
                self._spawn(self.restart(body[0], graceful=body[1]))
                return True
            elif member == "GetState" and sig == "":
                return Message.new_method_return(msg, "s", [json.dumps(self.state())])
            else:
                return Message.new_error(msg, DBUS_INVALID_ARGS, f"bad call {member}({sig})")
        except (SimulatorError, ValueError, TypeError) as exc:
            return Message.new_error(msg, CONTROL_ERROR, str(exc))
        return Message.new_method_return(msg)

    # -- internals: object tree --

    def _managed_objects(self) -> dict[str, dict[str, dict[str, Variant]]]:
        objects: dict[str, dict[str, dict[str, Variant]]] = {
            BLUEZ_ROOT: {
                INTROSPECTABLE_INTERFACE: {},
                AGENT_MANAGER_INTERFACE: {},
                defs.PROFILE_MANAGER_INTERFACE: {},
            }
        }
        for adapter in self._adapters.values():
            objects[adapter.path] = adapter.interfaces()
            for device in adapter.devices.values():
                objects[device.path] = _object_interfaces(DEVICE_INTERFACE, device.properties())
        return objects

    def _introspect(self, path: str) -> str:
        objects = self._managed_objects()
        interfaces = list(objects.get(path, {}))
        if path == "/":
            interfaces = [OBJECT_MANAGER_INTERFACE]
        prefix = path.rstrip("/") + "/"
        children = sorted({p[len(prefix) :].split("/")[0] for p in objects if p.startswith(prefix)})
        body = "".join(f"<interface name={quoteattr(i)}/>" for i in interfaces)
        body += "".join(f"<node name={quoteattr(c)}/>" for c in children)
        return f"<node>{body}</node>"


# --- module helpers --------------------------------------------------------------------------


def _object_interfaces(interface: str, props: dict[str, Variant]) -> dict[str, dict[str, Variant]]:
    return {INTROSPECTABLE_INTERFACE: {}, interface: props, PROPERTIES_INTERFACE: {}}


def _ay(value: bytes | Variant) -> Variant:
    return value if isinstance(value, Variant) else Variant("ay", bytes(value))


def _unpack(value: Any) -> Any:
    if isinstance(value, Variant):
        return _unpack(value.value)
    if isinstance(value, dict):
        return {k: _unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v) for v in value]
    return value


class _EagainAsZeroSocket:
    """A socket proxy whose ``send``/``sendmsg`` report 0 bytes instead of raising BlockingIOError."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def send(self, data: Any) -> int:
        try:
            return int(self._sock.send(data))
        except BlockingIOError:
            return 0

    def sendmsg(self, *args: Any) -> int:
        try:
            return int(self._sock.sendmsg(*args))
        except BlockingIOError:
            return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _tolerate_full_socket(bus: MessageBus) -> None:
    # dbus-fast 5.2's _MessageWriter treats EAGAIN from a full socket buffer as a dead
    # connection and finalizes the bus; bluetoothd (libdbus) just waits. A burst of
    # thousands of signals hits this, so make the writer see "0 bytes sent, wait for POLLOUT".
    writer = getattr(bus, "_writer", None)
    if writer is not None and hasattr(writer, "sock"):
        writer.sock = _EagainAsZeroSocket(writer.sock)


def _ignore_send_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _LOGGER.debug("send failed: %s", future.exception())


def addresses_valid(addresses: Iterable[str]) -> bool:
    """Whether every string is a colon-separated uppercase MAC address."""
    return all(_ADDRESS_RE.match(a) for a in addresses)


def report_from_fields(address: str, rssi: int, fields: Mapping[str, Variant]) -> Report:
    """A Report from the control interface's ``a{sv}``: ServiceData, ManufacturerData, UUIDs,
    TxPower, Name, Flags, Connectable, AddressType."""
    values = {k: _unpack(v) for k, v in fields.items()}
    return Report(
        address=address.upper(),
        rssi=int(rssi),
        service_data={
            normalize_uuid(k): bytes(v) for k, v in values.get("ServiceData", {}).items()
        },
        manufacturer_data={int(k): bytes(v) for k, v in values.get("ManufacturerData", {}).items()},
        uuids=tuple(values.get("UUIDs", ())),
        tx_power=values.get("TxPower"),
        name=values.get("Name"),
        flags=values.get("Flags"),
        connectable=bool(values.get("Connectable", False)),
        address_type=str(values.get("AddressType", "random")),
    )


def en_report(
    address: str,
    service_data: bytes,
    rssi: int,
    *,
    flags: int | None = ADV_FLAGS_EN,
    tx_power: int | None = None,
) -> Report:
    """A report of an Exposure Notification beacon (UUID list FD6F + FD6F service data), as phones send it."""
    return Report(
        address=address,
        rssi=rssi,
        service_data={EN_SERVICE_UUID: service_data},
        uuids=(EN_SERVICE_UUID,),
        tx_power=tx_power,
        flags=flags,
    )


ReportSink = Callable[[str, Report], bool]
"""Where the world delivers a report: ``SimulatedBluez.report``."""
