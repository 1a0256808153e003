"""Beacon codec (protocol.md §4.1, §9.2): build and parse EN and legacy Bluezone adverts.

Pure: bytes and plain mappings in, values out. The air is hostile, so no parser here
raises on malformed input: every refusal is a :class:`Rejection` with a specific
:class:`RejectReason`, which :class:`DecodeStats` counts.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bluezoned.const import (
    ADV_FLAGS_EN,
    AEM_LENGTH,
    BLUEZONE_COMPANY_ID,
    BLUEZONE_ID_LENGTH,
    BLUEZONE_SERVICE_UUID,
    BLUEZONE_SERVICE_UUID16,
    EN_SERVICE_DATA_LENGTH,
    EN_SERVICE_UUID,
    EN_SERVICE_UUID16,
    LEGACY_ADV_MAX_LENGTH,
    RPI_LENGTH,
)
from bluezoned.errors import InvalidInput

AD_FLAGS: Final = 0x01
AD_UUID16_INCOMPLETE: Final = 0x02
AD_UUID16_COMPLETE: Final = 0x03
AD_SERVICE_DATA_UUID16: Final = 0x16
AD_MANUFACTURER_DATA: Final = 0xFF
MAX_AD_DATA_LENGTH: Final = 254
"""Largest advertising data BlueZ hands over (extended advertising, one HCI report)."""
_BLUETOOTH_BASE_UUID_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


class RejectReason(enum.Enum):
    """Why an advertisement yielded no beacon; the scanner counts each separately."""

    EMPTY = "empty advertisement"
    TOO_LONG = "advertising data longer than 254 bytes"
    TRUNCATED_STRUCTURE = "an AD structure runs past the end of the data"
    NOT_A_BEACON = "no EN or Bluezone beacon in the advertisement"
    EN_WRONG_LENGTH = "0xFD6F service data is not exactly 20 bytes"
    EN_CONFLICTING = "two different 0xFD6F service data in one advertisement"
    SERVICE_DATA_TOO_SHORT = "service data structure shorter than its 16-bit UUID"
    BLUEZONE_WRONG_LENGTH = "Bluezone manufacturer data is not exactly 12 bytes"
    BLUEZONE_NO_ID = "0x4E56 listed but no Bluezone manufacturer data"
    MANUFACTURER_DATA_TOO_SHORT = "manufacturer data structure shorter than its company id"
    WRONG_TYPE = "advertisement data of the wrong type"


@dataclass(frozen=True, slots=True)
class EnBeacon:
    """An Exposure Notification beacon: 16-byte RPI and 4-byte encrypted metadata."""

    rpi: bytes
    aem: bytes


@dataclass(frozen=True, slots=True)
class BluezoneBeacon:
    """A legacy Bluezone Android beacon carrying its 12-byte rolling id."""

    beacon_id: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused advertisement: why, and a short detail for debug logs."""

    reason: RejectReason
    detail: str = ""


Beacon = EnBeacon | BluezoneBeacon
DecodeResult = EnBeacon | BluezoneBeacon | Rejection


@dataclass(frozen=True, slots=True)
class AdStructure:
    """One AD structure: its type byte and payload."""

    ad_type: int
    data: bytes


@dataclass(slots=True)
class DecodeStats:
    """Counts of accepted beacons and of rejections by reason; memory bounded by the enum."""

    en_beacons: int = 0
    bluezone_beacons: int = 0
    rejected: collections.Counter[RejectReason] = field(default_factory=collections.Counter)

    def record(self, result: DecodeResult) -> Beacon | None:
        """Count one decode result; return the beacon, or None when it was a rejection."""
        if isinstance(result, Rejection):
            self.rejected[result.reason] += 1
            return None
        if isinstance(result, EnBeacon):
            self.en_beacons += 1
        else:
            self.bluezone_beacons += 1
        return result

    @property
    def malformed(self) -> int:
        """Rejections other than 'not a beacon': adverts that claimed to be one and were wrong."""
        return sum(
            n for reason, n in self.rejected.items() if reason is not RejectReason.NOT_A_BEACON
        )


# --- Building -------------------------------------------------------------------------


def build_service_data(rpi: bytes, aem: bytes) -> bytes:
    """The 20 bytes of 0xFD6F service data: RPI then AEM."""
    if len(rpi) != RPI_LENGTH or len(aem) != AEM_LENGTH:
        raise InvalidInput(f"RPI/AEM must be 16/4 bytes, got {len(rpi)}/{len(aem)}")
    return bytes(rpi) + bytes(aem)


def build_advertisement(rpi: bytes, aem: bytes, *, flags: bool = True) -> bytes:
    """The legacy EN advertising data: [Flags] + UUID list 0xFD6F + service data (31 or 28 bytes)."""
    payload = _flags() if flags else b""
    payload += _ad(AD_UUID16_COMPLETE, EN_SERVICE_UUID16.to_bytes(2, "little"))
    payload += _ad(
        AD_SERVICE_DATA_UUID16,
        EN_SERVICE_UUID16.to_bytes(2, "little") + build_service_data(rpi, aem),
    )
    return payload


def check_bluezone_id(beacon_id: bytes) -> bytes:
    """The 12-byte Bluezone id as bytes, or InvalidInput."""
    if len(beacon_id) != BLUEZONE_ID_LENGTH:
        raise InvalidInput(f"Bluezone id must be {BLUEZONE_ID_LENGTH} bytes, got {len(beacon_id)}")
    return bytes(beacon_id)


def build_bluezone_advertisement(beacon_id: bytes, *, flags: bool = True) -> bytes:
    """The Bluezone Android advert: [Flags] + UUID list 0x4E56 + manufacturer 0x22B5 + 12-byte id."""
    beacon_id = check_bluezone_id(beacon_id)
    payload = _flags() if flags else b""
    payload += _ad(AD_UUID16_COMPLETE, BLUEZONE_SERVICE_UUID16.to_bytes(2, "little"))
    payload += _ad(
        AD_MANUFACTURER_DATA, BLUEZONE_COMPANY_ID.to_bytes(2, "little") + bytes(beacon_id)
    )
    return payload


# --- Parsing --------------------------------------------------------------------------


def parse_ad_structures(data: object) -> list[AdStructure] | Rejection:
    """Split advertising data into AD structures; a zero length byte ends the significant part."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return Rejection(RejectReason.WRONG_TYPE, type(data).__name__)
    data = bytes(data)
    if not data:
        return Rejection(RejectReason.EMPTY)
    if len(data) > MAX_AD_DATA_LENGTH:
        return Rejection(RejectReason.TOO_LONG, f"{len(data)} bytes")
    structures: list[AdStructure] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length == 0:
            break  # Core spec Vol 3 Part C §11: the rest is zero padding
        end = offset + 1 + length
        if end > len(data):
            return Rejection(
                RejectReason.TRUNCATED_STRUCTURE,
                f"structure at offset {offset} claims {length} bytes, {len(data) - offset - 1} remain",
            )
        structures.append(AdStructure(data[offset + 1], data[offset + 2 : end]))
        offset = end
    return structures


def decode_advertisement(data: object) -> DecodeResult:
    """Find an EN beacon (preferred) or a Bluezone beacon in raw advertising data.

    Flags are not required (Android and BlueZ broadcast adverts carry none).
    """
    structures = parse_ad_structures(data)
    if isinstance(structures, Rejection):
        return structures
    service_data: dict[str, bytes] = {}
    manufacturer_data: dict[int, bytes] = {}
    uuids: set[int] = set()
    for structure in structures:
        if structure.ad_type == AD_SERVICE_DATA_UUID16:
            if len(structure.data) < 2:
                return Rejection(RejectReason.SERVICE_DATA_TOO_SHORT)
            uuid = uuid16_to_str(int.from_bytes(structure.data[:2], "little"))
            if (
                uuid == EN_SERVICE_UUID
                and service_data.get(uuid, structure.data[2:]) != structure.data[2:]
            ):
                return Rejection(RejectReason.EN_CONFLICTING)
            service_data[uuid] = structure.data[2:]
        elif structure.ad_type == AD_MANUFACTURER_DATA:
            if len(structure.data) < 2:
                return Rejection(RejectReason.MANUFACTURER_DATA_TOO_SHORT)
            manufacturer_data[int.from_bytes(structure.data[:2], "little")] = structure.data[2:]
        elif structure.ad_type in (AD_UUID16_COMPLETE, AD_UUID16_INCOMPLETE):
            uuids.update(
                int.from_bytes(structure.data[i : i + 2], "little")
                for i in range(0, len(structure.data) - 1, 2)
            )
    return decode_beacon(service_data, manufacturer_data, [uuid16_to_str(u) for u in sorted(uuids)])


def decode_beacon(
    service_data: Mapping[str, object],
    manufacturer_data: Mapping[int, object],
    service_uuids: Sequence[str] = (),
) -> DecodeResult:
    """Decode the parts a scanner reports (bleak's shapes, as plain types) into a beacon.

    ``service_data`` maps lowercase 128-bit UUID strings to bytes, ``manufacturer_data``
    company ids to bytes (after the id), ``service_uuids`` the advertised UUID list.
    """
    try:
        en_data = service_data.get(EN_SERVICE_UUID)
        if en_data is None:
            en_data = _lookup_case_insensitive(service_data, EN_SERVICE_UUID)
        if en_data is not None:
            return decode_en_service_data(en_data)
        bluezone_data = manufacturer_data.get(BLUEZONE_COMPANY_ID)
        if bluezone_data is not None:
            if not isinstance(bluezone_data, bytes | bytearray | memoryview):
                return Rejection(RejectReason.WRONG_TYPE, type(bluezone_data).__name__)
            if len(bluezone_data) != BLUEZONE_ID_LENGTH:
                return Rejection(RejectReason.BLUEZONE_WRONG_LENGTH, f"{len(bluezone_data)} bytes")
            return BluezoneBeacon(bytes(bluezone_data))
        if any(str(u).lower() == BLUEZONE_SERVICE_UUID for u in service_uuids):
            return Rejection(RejectReason.BLUEZONE_NO_ID)
    except (AttributeError, TypeError) as exc:  # hostile or mistyped mappings from a scanner
        return Rejection(RejectReason.WRONG_TYPE, str(exc))
    return Rejection(RejectReason.NOT_A_BEACON)


def decode_en_service_data(data: object) -> EnBeacon | Rejection:
    """0xFD6F service data -> EnBeacon; exactly 20 bytes or a rejection (Apple drops the rest)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return Rejection(RejectReason.WRONG_TYPE, type(data).__name__)
    if len(data) != EN_SERVICE_DATA_LENGTH:
        return Rejection(RejectReason.EN_WRONG_LENGTH, f"{len(data)} bytes")
    data = bytes(data)
    return EnBeacon(rpi=data[:RPI_LENGTH], aem=data[RPI_LENGTH:])


def uuid16_to_str(uuid16: int) -> str:
    """A 16-bit SIG UUID as the lowercase 128-bit string bleak and BlueZ report."""
    return f"0000{uuid16:04x}{_BLUETOOTH_BASE_UUID_SUFFIX}"


def advertisement_fits_legacy(data: bytes) -> bool:
    """Whether advertising data fits a legacy (non-extended) advertisement."""
    return len(data) <= LEGACY_ADV_MAX_LENGTH


def _flags() -> bytes:
    return _ad(AD_FLAGS, bytes([ADV_FLAGS_EN]))


def _ad(ad_type: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, ad_type]) + data


def _lookup_case_insensitive(mapping: Mapping[str, object], key: str) -> object | None:
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.lower() == key:
            return value
    return None
