"""The store-to-engine glue: pending files are matched once, scored with CWA v2 and only matched keys kept."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.alerts import raise_alerts
from bluezoned.config import AlertsConfig, ExposureSettings
from bluezoned.exposure.keyfile import Signer, write_export_archive
from bluezoned.exposure.keys import derive_aemk, encrypt_aem, interval_start, rpis_of
from bluezoned.exposure.presets import PROXIMITY_CALIBRATIONS, RISK_HIGH, RISK_LOW
from bluezoned.matching import engine_config, match_new_keys
from bluezoned.models import DiagnosisKey, ReportType, Sighting, Tek
from bluezoned.store import ProcessedFile, Store
from bluezoned.verdict import verdict

DAY = 2_833_056  # 2023-11-14 00:00 UTC, a multiple of 144
NOW = interval_start(DAY + 144) + 3600.0
METADATA = bytes([0x40, 0x08, 0x00, 0x00])  # version 1.0, TX power 8 dBm
SIGNER = Signer(ec.generate_private_key(ec.SECP256R1()), "test", "v1")


def plant(
    store: Store, tek: Tek, first: int, count: int, rssi: int = -60, seconds: int = 300
) -> None:
    """Sightings of ``tek`` every 30 s for ``seconds`` of each of ``count`` intervals."""
    aemk = derive_aemk(tek.key_data)
    rpis = rpis_of(tek)
    sightings = []
    for interval in range(first, first + count):
        rpi = rpis[interval - tek.rolling_start]
        aem = encrypt_aem(aemk, rpi, METADATA)
        for second in range(0, seconds, 30):
            sightings.append(Sighting(interval_start(interval) + second, rpi, aem, rssi))
    store.record_sightings(sightings)


def pend(store: Store, keys: list[DiagnosisKey], name: str = "a.zip", at: float = NOW) -> bytes:
    """Record a signed export of ``keys`` as downloaded at ``at`` and not yet matched."""
    data = write_export_archive(
        keys,
        region="US",
        start_timestamp=DAY * 600,
        end_timestamp=DAY * 600 + 86_400,
        signers=[SIGNER],
    )
    sha = hashlib.sha256(data).digest()
    store.add_pending_key_file(ProcessedFile(sha, "test", name, len(data), len(keys), at), data)
    return sha


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "b.db") as opened:
        yield opened


def test_planted_contact_is_found_stored_and_the_file_marked(store: Store) -> None:
    tek = Tek(os.urandom(16), DAY)
    stranger = DiagnosisKey(os.urandom(16), DAY)
    plant(store, tek, DAY + 60, 3)
    sha = pend(store, [DiagnosisKey(tek.key_data, DAY), stranger])
    (found,) = match_new_keys(store, NOW)
    assert found.key_data == tek.key_data
    assert found.id is not None
    assert found.start == interval_start(DAY + 60)
    assert found.end == interval_start(DAY + 62) + 270  # the last sighting
    assert found.sightings == 30
    assert found.min_attenuation == 8 - (-60)
    assert found.duration_seconds == 15 * 60  # three 5-minute stretches of 60-s slices
    assert [e.id for e in store.exposures(unalerted_only=True)] == [found.id]
    # The file is matched and its bytes gone; only the key that matched is kept.
    assert store.unmatched_files() == []
    assert store.pending_key_file_data(sha) is None
    record = store.processed_file(sha)
    assert record is not None
    assert record.matched_at == NOW
    assert [k.key.key_data for k in store.diagnosis_keys()] == [tek.key_data]
    assert match_new_keys(store, NOW + 60) == []


def test_close_and_long_is_high_far_and_short_is_low(store: Store) -> None:
    close = Tek(os.urandom(16), DAY)
    far = Tek(os.urandom(16), DAY)
    plant(store, close, DAY + 60, 3, rssi=-50, seconds=600)  # 58 dB for 30 min
    plant(store, far, DAY + 90, 1, rssi=-90, seconds=300)  # 98 dB for 5 min
    pend(store, [DiagnosisKey(close.key_data, DAY), DiagnosisKey(far.key_data, DAY)])
    found = {e.key_data: e for e in match_new_keys(store, NOW)}
    high, low = found[close.key_data], found[far.key_data]
    assert (high.risk_level, low.risk_level) == (RISK_HIGH, RISK_LOW)
    # CWA v2: 30 min x weight 0.8 (< 63 dB) x TRL 7's 1.4 (confirmed test, standard).
    assert high.risk_score == pytest.approx(30 * 0.8 * 1.4)
    assert low.risk_score == 0.0  # 98 dB weighs nothing
    assert (high.duration_seconds, low.duration_seconds) == (1800.0, 300.0)
    assert (high.min_attenuation, low.min_attenuation) == (58, 98)
    stored = {e.key_data: e.risk_level for e in store.exposures()}
    assert stored == {close.key_data: RISK_HIGH, far.key_data: RISK_LOW}
    # The engine's own estimate for its rule (2 m / 15 min by default) is stored beside CWA's.
    for e in (high, low):
        assert (e.distance_m, e.threshold_minutes) == (2.0, 15.0)
        assert e.minutes_close is not None
        assert e.minutes_close_low is not None
        assert e.minutes_close_high is not None
        assert e.minutes_close_low <= e.minutes_close <= e.minutes_close_high
        assert e.minutes_close <= e.duration_seconds / 60 + 1e-9
        assert e.close_contact is (e.minutes_close >= 15.0)  # no calibration: the plain rule
    # 58 dB is about 2.5 m under the default model: close to the rule's edge, unlike CWA's
    # 63-dB bucket, which counts all 30 minutes
    assert high.minutes_close is not None
    assert 10.0 < high.minutes_close < 30.0
    assert low.minutes_close is not None
    assert low.minutes_close < 1.0
    assert low.close_contact is False
    assert high.close_score is not None
    assert low.close_score is not None
    assert high.close_score > low.close_score
    assert {e.key_data: (e.close_contact, e.minutes_close) for e in store.exposures()} == {
        e.key_data: (e.close_contact, e.minutes_close) for e in (high, low)
    }


def test_key_metadata_feeds_the_risk(store: Store) -> None:
    tek = Tek(os.urandom(16), DAY)
    plant(store, tek, DAY + 60, 1, rssi=-50, seconds=600)  # 10 min at 58 dB: 8 weighted minutes
    recursive = DiagnosisKey(tek.key_data, DAY, report_type=ReportType.RECURSIVE)
    pend(store, [recursive])
    (found,) = match_new_keys(store, NOW)
    # RECURSIVE + STANDARD is TRL 1, worth 0 in CWA v2: matched, yet LOW.
    assert (found.risk_level, found.risk_score) == (RISK_LOW, 0.0)


def test_outside_onset_mapping_is_low(store: Store) -> None:
    tek = Tek(os.urandom(16), DAY)
    plant(store, tek, DAY + 60, 3, rssi=-50, seconds=600)
    pend(store, [DiagnosisKey(tek.key_data, DAY, days_since_onset=-10)])
    (found,) = match_new_keys(store, NOW)
    assert (found.risk_level, found.risk_score) == (RISK_LOW, 0.0)  # infectiousness NONE


def test_sightings_after_the_download_are_replays(store: Store) -> None:
    tek = Tek(os.urandom(16), DAY)
    plant(store, tek, DAY + 60, 3)
    pend(store, [DiagnosisKey(tek.key_data, DAY)], at=interval_start(DAY + 60) - 1)
    assert match_new_keys(store, NOW) == []
    assert store.unmatched_files() == []


def test_parsed_keys_are_used_instead_of_the_stored_bytes(store: Store) -> None:
    tek = Tek(os.urandom(16), DAY)
    plant(store, tek, DAY + 60, 1)
    sha = pend(store, [DiagnosisKey(os.urandom(16), DAY)])
    (found,) = match_new_keys(store, NOW, {sha: [DiagnosisKey(tek.key_data, DAY)]})
    assert found.key_data == tek.key_data


def test_several_pending_files_match_in_one_call(store: Store) -> None:
    a, b = Tek(os.urandom(16), DAY), Tek(os.urandom(16), DAY)
    plant(store, a, DAY + 10, 1)
    plant(store, b, DAY + 20, 1)
    sha_a = pend(store, [DiagnosisKey(a.key_data, DAY)], "a.zip")
    sha_b = pend(store, [DiagnosisKey(b.key_data, DAY)], "b.zip")
    assert {e.key_data for e in match_new_keys(store, NOW)} == {a.key_data, b.key_data}
    assert {k.file_sha256 for k in store.diagnosis_keys()} == {sha_a, sha_b}


def test_no_sightings_marks_the_file_matched_and_keeps_no_key(store: Store) -> None:
    sha = pend(store, [DiagnosisKey(os.urandom(16), DAY)])
    assert match_new_keys(store, NOW) == []
    assert store.unmatched_files() == []
    assert store.pending_key_file_data(sha) is None
    assert store.diagnosis_keys() == []


def test_nothing_pending_is_no_work(store: Store) -> None:
    assert match_new_keys(store, NOW) == []


async def test_a_later_high_contact_raises_a_risk_rise_alert(store: Store) -> None:
    far, close = Tek(os.urandom(16), DAY), Tek(os.urandom(16), DAY)
    plant(store, far, DAY + 20, 1, rssi=-90)
    plant(store, close, DAY + 60, 3, rssi=-50, seconds=600)
    settings = AlertsConfig(desktop_notifications=False)
    pend(store, [DiagnosisKey(far.key_data, DAY)], "a.zip")
    match_new_keys(store, NOW)
    first = await raise_alerts(store, settings, NOW)
    assert first is not None
    assert (first.event, first.risk_level) == ("exposure", RISK_LOW)
    pend(store, [DiagnosisKey(close.key_data, DAY)], "b.zip", at=NOW + 3600)
    match_new_keys(store, NOW + 3600)
    second = await raise_alerts(store, settings, NOW + 3600)
    assert second is not None
    assert (second.event, second.risk_level, second.previous_risk_level) == (
        "risk_rise",
        RISK_HIGH,
        RISK_LOW,
    )


def test_two_low_contacts_of_one_day_are_high_together_as_cwa_sums_them(store: Store) -> None:
    first, second = Tek(os.urandom(16), DAY), Tek(os.urandom(16), DAY)
    plant(store, first, DAY + 60, 1)  # 5 min at 68 dB: 5 weighted minutes x 1.4 = 7
    plant(store, second, DAY + 90, 1)  # the same again, five hours later on the same UTC day
    pend(store, [DiagnosisKey(first.key_data, DAY), DiagnosisKey(second.key_data, DAY)])
    found = match_new_keys(store, NOW)
    assert [e.risk_level for e in found] == [RISK_LOW, RISK_LOW]
    day = (DAY * 600) // 86_400
    for e in found:
        assert e.cwa_days is not None
        ((cwa_day, minutes),) = e.cwa_days
        assert cwa_day == day
        assert minutes == pytest.approx(7.0)
    combined = verdict(store.exposures())
    assert combined.risk_level == RISK_HIGH  # 14 normalized minutes in one day
    assert [(d.day, d.risk_level) for d in combined.days] == [(day, RISK_HIGH)]
    assert combined.days[0].normalized_time == pytest.approx(14.0)
    assert verdict(store.exposures()[:1]).risk_level == RISK_LOW


def test_configured_rule_and_calibration_judge_the_contact(store: Store) -> None:
    first, second = Tek(os.urandom(16), DAY), Tek(os.urandom(16), DAY)
    plant(store, first, DAY + 60, 3, rssi=-50, seconds=600)
    plant(store, second, DAY + 80, 3, rssi=-50, seconds=600)
    pend(store, [DiagnosisKey(first.key_data, DAY)])
    (plain,) = match_new_keys(
        store, NOW, engine=engine_config(ExposureSettings(distance_m=1.0, minutes=5.0))
    )
    assert (plain.distance_m, plain.threshold_minutes) == (1.0, 5.0)
    fitted = PROXIMITY_CALIBRATIONS["dp3t-exp05-2m-15min"]
    pend(store, [DiagnosisKey(second.key_data, DAY)], name="b.zip", at=NOW + 1)
    engine = engine_config(ExposureSettings(calibration=fitted.name, rx_model="SM-G973F"))
    assert engine.rx_correction == fitted.offset("SM-G973F", None)
    (calibrated,) = match_new_keys(store, NOW + 60, engine=engine)
    assert (calibrated.distance_m, calibrated.threshold_minutes) == (
        fitted.distance_m,
        fitted.decision_minutes,
    )
    assert calibrated.close_score is not None
