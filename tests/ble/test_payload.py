"""Beacon codec: exact bytes on the air, round trips, and hostile input that never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluezoned.ble import payload as p
from bluezoned.errors import InvalidInput
from tests.exposure.test_keys import VECTORS

RPI0, AEM0 = VECTORS[0][2], VECTORS[0][3]
EN_UUID = "0000fd6f-0000-1000-8000-00805f9b34fb"

rpis = st.binary(min_size=16, max_size=16)
aems = st.binary(min_size=4, max_size=4)


def test_full_advertisement_is_byte_exact() -> None:
    adv = p.build_advertisement(RPI0, AEM0)
    assert len(adv) == 31
    assert adv == bytes.fromhex("02011a03036ffd17166ffd") + RPI0 + AEM0
    assert p.advertisement_fits_legacy(adv)


def test_advertisement_without_flags_is_28_bytes() -> None:
    adv = p.build_advertisement(RPI0, AEM0, flags=False)
    assert adv == bytes.fromhex("03036ffd17166ffd") + RPI0 + AEM0


def test_service_data_is_rpi_then_aem() -> None:
    assert p.build_service_data(RPI0, AEM0) == RPI0 + AEM0
    with pytest.raises(InvalidInput):
        p.build_service_data(RPI0[:15], AEM0)
    with pytest.raises(InvalidInput):
        p.build_advertisement(RPI0, AEM0 + b"\x00")


def test_bluezone_advertisement_layout() -> None:
    beacon_id = bytes(range(1, 13))
    adv = p.build_bluezone_advertisement(beacon_id)
    assert adv == bytes.fromhex("02011a0303564e0fffb522") + beacon_id
    assert p.decode_advertisement(adv) == p.BluezoneBeacon(beacon_id)
    assert p.decode_advertisement(
        p.build_bluezone_advertisement(beacon_id, flags=False)
    ) == p.BluezoneBeacon(beacon_id)
    with pytest.raises(InvalidInput):
        p.build_bluezone_advertisement(bytes(11))


@given(rpi=rpis, aem=aems, flags=st.booleans())
def test_build_then_parse_round_trip(rpi: bytes, aem: bytes, flags: bool) -> None:
    adv = p.build_advertisement(rpi, aem, flags=flags)
    assert p.decode_advertisement(adv) == p.EnBeacon(rpi, aem)
    assert p.decode_beacon({EN_UUID: p.build_service_data(rpi, aem)}, {}) == p.EnBeacon(rpi, aem)


@given(rpi=rpis, aem=aems, padding=st.integers(0, 10))
def test_zero_padding_after_data_is_ignored(rpi: bytes, aem: bytes, padding: int) -> None:
    adv = p.build_advertisement(rpi, aem, flags=False) + bytes(padding)
    assert p.decode_advertisement(adv) == p.EnBeacon(rpi, aem)


def test_other_structures_around_the_beacon_are_tolerated() -> None:
    name = bytes([5, 0x09]) + b"pi-0"
    tx = bytes([2, 0x0A, 0xF4])
    adv = name + p.build_advertisement(RPI0, AEM0, flags=False) + tx
    assert p.decode_advertisement(adv) == p.EnBeacon(RPI0, AEM0)


def test_en_wins_when_both_beacons_are_present() -> None:
    adv = p.build_advertisement(RPI0, AEM0, flags=False) + bytes.fromhex("0fffb522") + bytes(12)
    assert p.decode_advertisement(adv) == p.EnBeacon(RPI0, AEM0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", p.RejectReason.EMPTY),
        (bytes(255), p.RejectReason.TOO_LONG),
        (bytes.fromhex("02011a17166ffd") + RPI0, p.RejectReason.TRUNCATED_STRUCTURE),
        (bytes.fromhex("ff"), p.RejectReason.TRUNCATED_STRUCTURE),
        (bytes.fromhex("02011a"), p.RejectReason.NOT_A_BEACON),
        (bytes.fromhex("03036ffd"), p.RejectReason.NOT_A_BEACON),
        (bytes.fromhex("16166ffd") + RPI0 + AEM0[:3], p.RejectReason.EN_WRONG_LENGTH),
        (bytes.fromhex("18166ffd") + RPI0 + AEM0 + b"\x00", p.RejectReason.EN_WRONG_LENGTH),
        (bytes.fromhex("02166f"), p.RejectReason.SERVICE_DATA_TOO_SHORT),
        (bytes.fromhex("17166ffe") + RPI0 + AEM0, p.RejectReason.NOT_A_BEACON),
        (
            bytes.fromhex("17166ffd") + RPI0 + AEM0 + bytes.fromhex("17166ffd") + RPI0 + b"zzzz",
            p.RejectReason.EN_CONFLICTING,
        ),
        (bytes.fromhex("0effb522") + bytes(11), p.RejectReason.BLUEZONE_WRONG_LENGTH),
        (bytes.fromhex("10ffb522") + bytes(13), p.RejectReason.BLUEZONE_WRONG_LENGTH),
        (bytes.fromhex("0303564e"), p.RejectReason.BLUEZONE_NO_ID),
        (bytes.fromhex("02ffb5"), p.RejectReason.MANUFACTURER_DATA_TOO_SHORT),
        # A UUID with no data is not too short: it is an EN beacon of the wrong length.
        (bytes.fromhex("03166ffd"), p.RejectReason.EN_WRONG_LENGTH),
        # A company id with no data is Bluezone's, of the wrong length.
        (bytes.fromhex("03ffb522"), p.RejectReason.BLUEZONE_WRONG_LENGTH),
        # 0x4E56 in a list of two UUIDs, and before a stray odd byte.
        (bytes.fromhex("0503564e0f18"), p.RejectReason.BLUEZONE_NO_ID),
        (bytes.fromhex("0603aaaa564e01"), p.RejectReason.BLUEZONE_NO_ID),
        ("02011a", p.RejectReason.WRONG_TYPE),
    ],
)
def test_malformed_advertisements_are_rejected_with_their_reason(
    data: bytes, reason: p.RejectReason
) -> None:
    result = p.decode_advertisement(data)
    assert isinstance(result, p.Rejection)
    assert result.reason is reason


def test_duplicate_identical_en_service_data_is_accepted() -> None:
    sd = bytes.fromhex("17166ffd") + RPI0 + AEM0
    assert p.decode_advertisement(sd + sd) == p.EnBeacon(RPI0, AEM0)


@pytest.mark.parametrize(
    ("service_data", "manufacturer_data", "reason"),
    [
        ({EN_UUID: RPI0}, {}, p.RejectReason.EN_WRONG_LENGTH),
        ({EN_UUID: "not bytes"}, {}, p.RejectReason.WRONG_TYPE),
        ({}, {0x22B5: 12}, p.RejectReason.WRONG_TYPE),
        ({}, {0x22B5: bytes(5)}, p.RejectReason.BLUEZONE_WRONG_LENGTH),
        (
            {"0000180f-0000-1000-8000-00805f9b34fb": b"\x64"},
            {0x004C: bytes(20)},
            p.RejectReason.NOT_A_BEACON,
        ),
    ],
)
def test_scanner_shaped_input_is_rejected_not_raised(
    service_data: dict[str, object], manufacturer_data: dict[int, object], reason: p.RejectReason
) -> None:
    result = p.decode_beacon(service_data, manufacturer_data)
    assert isinstance(result, p.Rejection)
    assert result.reason is reason


def test_uppercase_uuid_from_a_scanner_is_accepted() -> None:
    assert p.decode_beacon({EN_UUID.upper(): RPI0 + AEM0}, {}) == p.EnBeacon(RPI0, AEM0)


def test_decode_stats_count_each_reason() -> None:
    stats = p.DecodeStats()
    inputs = [
        p.build_advertisement(RPI0, AEM0),
        p.build_bluezone_advertisement(bytes(12)),
        b"",
        bytes.fromhex("02011a"),
        bytes.fromhex("16166ffd") + bytes(19),
        bytes.fromhex("16166ffd") + bytes(19),
    ]
    beacons = [stats.record(p.decode_advertisement(data)) for data in inputs]
    assert beacons[0] == p.EnBeacon(RPI0, AEM0)
    assert beacons[2:] == [None] * 4
    assert (stats.en_beacons, stats.bluezone_beacons) == (1, 1)
    assert stats.rejected[p.RejectReason.EN_WRONG_LENGTH] == 2
    assert stats.rejected[p.RejectReason.EMPTY] == 1
    assert stats.malformed == 3


@settings(max_examples=3000)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = p.decode_advertisement(data)
    assert isinstance(result, p.EnBeacon | p.BluezoneBeacon | p.Rejection)
    if isinstance(result, p.EnBeacon):
        assert (len(result.rpi), len(result.aem)) == (16, 4)


@settings(max_examples=2000)
@given(rpi=rpis, aem=aems, cut=st.integers(0, 30), flip=st.integers(0, 30), bit=st.integers(0, 7))
def test_mutated_real_adverts_never_raise(
    rpi: bytes, aem: bytes, cut: int, flip: int, bit: int
) -> None:
    adv = bytearray(p.build_advertisement(rpi, aem))
    adv[flip] ^= 1 << bit
    for data in (bytes(adv), bytes(adv[:cut])):
        result = p.decode_advertisement(data)
        assert isinstance(result, p.EnBeacon | p.BluezoneBeacon | p.Rejection)
