"""Pure parts of the radio path: advert conversion, back-off, watchdog, rotation schedule."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest

from bluezoned.ble.bluez.advertisement import BluezoneAdvertisement, EnAdvertisement
from bluezoned.ble.payload import (
    BluezoneBeacon,
    Rejection,
    RejectReason,
    build_advertisement,
    build_bluezone_advertisement,
    parse_ad_structures,
)
from bluezoned.ble.scanner import OR_PATTERNS, DropReason, convert_advert
from bluezoned.ble.supervision import Backoff, RotationPolicy, Watchdog
from bluezoned.const import BLUEZONE_SERVICE_UUID, EN_SERVICE_UUID
from bluezoned.errors import InvalidInput
from bluezoned.exposure.keys import interval_number
from bluezoned.models import Sighting

RPI = bytes(range(16))
AEM = b"\xa1\xa2\xa3\xa4"


def _convert(**kw: object) -> object:
    args: dict[str, object] = {
        "t": 1000.0,
        "service_data": {EN_SERVICE_UUID: RPI + AEM},
        "manufacturer_data": {},
        "service_uuids": [EN_SERVICE_UUID],
        "rssi": -61,
        "address": "11:22:33:44:55:66",
        "adapter": "hci1",
    }
    args.update(kw)
    return convert_advert(**args)  # type: ignore[arg-type]


def test_en_advert_becomes_a_sighting() -> None:
    assert _convert() == Sighting(1000.0, RPI, AEM, -61, "11:22:33:44:55:66", "hci1")


@pytest.mark.parametrize("data", [b"", RPI, RPI + AEM + b"\x00", b"\x00" * 31])
def test_wrong_length_service_data_is_rejected(data: bytes) -> None:
    result = _convert(service_data={EN_SERVICE_UUID: data})
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.EN_WRONG_LENGTH


def test_mistyped_service_data_is_rejected_not_raised() -> None:
    result = _convert(service_data={EN_SERVICE_UUID: "not bytes"})
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.WRONG_TYPE


@pytest.mark.parametrize("rssi", [127, -128, None, "x", True])
def test_bad_rssi_is_dropped(rssi: object) -> None:
    assert _convert(rssi=rssi) is DropReason.BAD_RSSI


@pytest.mark.parametrize("rssi", [-127, 126])
def test_rssi_limits_are_kept(rssi: int) -> None:
    assert _convert(rssi=rssi) == Sighting(1000.0, RPI, AEM, rssi, "11:22:33:44:55:66", "hci1")


def test_passive_scan_patterns_match_the_adverts_phones_send() -> None:
    # A monitor pattern (offset, AD type, bytes) must match the start of one AD structure.
    en = parse_ad_structures(build_advertisement(b"\xaa" * 16, AEM, flags=False))
    bluezone = parse_ad_structures(build_bluezone_advertisement(bytes(12), flags=False))
    assert not isinstance(en, Rejection)
    assert not isinstance(bluezone, Rejection)
    for pattern, structures in zip(OR_PATTERNS, (en, bluezone), strict=True):
        assert any(
            st.ad_type == pattern.ad_data_type
            and st.data[pattern.start_position :].startswith(pattern.content_of_pattern)
            for st in structures
        ), pattern


def test_bluezone_beacon_is_recognised() -> None:
    result = _convert(
        service_data={},
        manufacturer_data={0x22B5: bytes(12)},
        service_uuids=[BLUEZONE_SERVICE_UUID],
    )
    assert result == BluezoneBeacon(bytes(12))


def test_backoff_doubles_to_cap_and_resets() -> None:
    b = Backoff(0.5, 4.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay() == 0.5


def test_watchdog() -> None:
    w = Watchdog(90.0)
    w.feed(10.0)
    assert not w.expired(100.0)
    assert w.remaining(40.0) == 60.0
    assert w.expired(100.1)
    assert w.remaining(200.0) == 0.0


def test_rotation_policy_is_gaen_like_and_always_changes_interval() -> None:
    policy = RotationPolicy()
    assert policy.guarantees_new_interval
    rng = random.Random(7)
    t = 1_700_000_000.0
    for _ in range(1_000):
        nxt = policy.next_rotation(t, rng)
        assert 600 <= nxt - t < 1200
        assert interval_number(nxt) != interval_number(t)
        t = nxt


def test_rotation_policy_validates() -> None:
    with pytest.raises(InvalidInput):
        RotationPolicy(0, 1)
    with pytest.raises(InvalidInput):
        RotationPolicy(2, 1)
    assert not RotationPolicy(0.1, 0.2).guarantees_new_interval


def test_en_advertisement_object_shape() -> None:
    adv = EnAdvertisement(RPI, AEM)
    xml = ET.tostring(adv.introspect().to_xml()).decode()
    assert 'name="org.bluez.LEAdvertisement1"' in xml
    assert 'name="ServiceData" type="a{sv}"' in xml
    assert "LocalName" not in xml
    assert "Includes" not in xml
    assert adv.service_data == RPI + AEM
    adv.set_payload(AEM * 4, RPI[:4])
    assert adv.service_data == AEM * 4 + RPI[:4]
    with pytest.raises(InvalidInput):
        adv.set_payload(b"short", AEM)


def test_bluezone_advertisement_object_shape() -> None:
    adv = BluezoneAdvertisement(bytes(12))
    xml = ET.tostring(adv.introspect().to_xml()).decode()
    assert 'name="ManufacturerData" type="a{qv}"' in xml
    assert "ServiceData" not in xml
    with pytest.raises(InvalidInput):
        BluezoneAdvertisement(bytes(11))
