"""The contact engine on small synthetic series the tests build."""

from __future__ import annotations

import numpy as np
import pytest

from bluezoned.errors import InvalidInput
from bluezoned.exposure.contacts import (
    EngineConfig,
    PathLossModel,
    analyze_contact,
    analyze_contacts,
    attenuation,
    exposure_windows,
    gaen_scan_weights,
    median_band,
    p_within,
    scan_ids,
)
from bluezoned.exposure.presets import CWA_V2, GAEN_BUCKETS, RISK_HIGH
from bluezoned.exposure.risk import cwa_risk

T0 = 1_700_000_040.0  # a whole minute


def _dense(minutes: int, rssi: float, rate_hz: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    t = T0 + np.arange(0, minutes * 60, 1.0 / rate_hz)
    return t, np.full(t.shape, rssi)


def _gaen(scans: int, rssi: float, period: float = 250.0) -> tuple[np.ndarray, np.ndarray]:
    starts = T0 + period * np.arange(scans)
    t = np.concatenate([s + np.array([0.0, 1.0, 2.5]) for s in starts])
    return t, np.full(t.shape, rssi)


def test_attenuation_is_tx_minus_corrected_rssi_floored_at_zero() -> None:
    att, unknown = attenuation(
        np.array([-80.0, -10.0]), np.array([-20.0, np.nan]), default_tx=-26.0, rx_correction=3.0
    )
    assert att.tolist() == [57.0, 0.0]
    assert unknown


def test_scan_segmentation_and_gaen_weights() -> None:
    t = np.array([0.0, 1.0, 2.0, 250.0, 251.0, 900.0])
    assert scan_ids(t).tolist() == [0, 0, 0, 1, 1, 2]
    assert gaen_scan_weights(np.array([0.0, 250.0, 900.0])).tolist() == [120.0, 250.0, 300.0]


def test_close_long_dense_contact_is_a_close_contact() -> None:
    t, rssi = _dense(30, -60.0)
    c = analyze_contact(t, rssi, np.full(t.shape, -20.0))
    assert c.regime == "dense"
    assert c.n_sightings == t.size
    assert c.observed_minutes == pytest.approx(30.0)
    assert c.coverage == pytest.approx(1.0)
    assert c.min_att == c.typical_att == 40.0
    assert c.minutes_close > 25.0
    assert c.tc4tl
    assert c.distance_band == "<1m"
    assert not c.uncalibrated_tx
    # 40 dB is in CWA's first bucket: 30 min x 0.8.
    assert c.bucket_seconds == (1800.0, 0.0, 0.0, 0.0)
    assert c.weighted_minutes == pytest.approx(24.0)


def test_distance_band_holds_the_median_distance_not_the_widest_band() -> None:
    assert median_band((0.1, 0.3, 0.2, 0.4)) == 2
    assert median_band((0.6, 0.2, 0.1, 0.1)) == 0
    assert median_band((0.0, 0.0, 0.0, 1.0)) == 3
    assert median_band((0.25, 0.25, 0.25, 0.25)) == 1
    # At a level whose distance is most likely a little beyond 2 m, the open ">3m" band is the
    # single most probable one, yet most of the time was spent nearer than 3 m.
    t, rssi = _dense(20, -82.0)
    c = analyze_contact(t, rssi, np.full(t.shape, -20.0))
    probs = c.band_probabilities
    assert max(probs) == probs[3]
    assert probs[0] + probs[1] < 0.5 <= probs[0] + probs[1] + probs[2]
    assert c.distance_band == "2-3m"


def test_uncalibrated_score_keeps_the_offset_a_long_contact_shares() -> None:
    """An hour at one level: units independent given the level would make the score all but
    certain and the interval of the minutes narrow; the shared offset keeps the score a
    probability, rising with the signal, and widens the interval."""
    t = T0 + np.arange(0.0, 60 * 60, 1.0)
    tx = np.full(t.shape, -20.0)
    independent = EngineConfig(model=PathLossModel(persistent_share=0.0))
    scores = []
    for rssi in (-96.0, -88.0, -80.0, -72.0, -64.0):
        shared = analyze_contact(t, np.full(t.shape, rssi), tx)
        alone = analyze_contact(t, np.full(t.shape, rssi), tx, config=independent)
        # The offset changes the probability and the interval, never the minutes or the decision.
        assert shared.minutes_close == alone.minutes_close
        assert shared.tc4tl == alone.tc4tl
        for d in (1.0, 2.0, 3.0):
            mean, low, high = shared.minutes_within[d]
            _, alone_low, alone_high = alone.minutes_within[d]
            assert 0.0 <= low <= mean <= high <= 60.0
            # Same centre, wider spread: it holds the independent interval, clipped or not.
            assert low <= alone_low
            assert high >= alone_high
        scores.append(shared.score)
        if rssi == -80.0:
            assert shared.tc4tl
            assert alone.score > 0.99
            assert 0.5 < shared.score < 0.8
            _, low, high = shared.minutes_within[2.0]
            _, alone_low, alone_high = alone.minutes_within[2.0]
            assert high - low > 2.0 * (alone_high - alone_low)
    assert scores == sorted(scores)
    assert scores[0] < 0.05
    assert scores[-1] > 0.99


def test_far_contact_is_not_close_and_short_contact_is_not_long() -> None:
    t, rssi = _dense(60, -105.0)
    far = analyze_contact(t, rssi)
    assert not far.tc4tl
    assert far.minutes_close < 5.0
    assert far.uncalibrated_tx
    assert far.distance_band == ">3m"
    t, rssi = _dense(5, -60.0)
    short = analyze_contact(t, rssi, np.full(t.shape, -20.0))
    assert not short.tc4tl
    assert short.minutes_close <= 5.0


def test_sparse_scans_are_weighted_by_time_since_previous_scan() -> None:
    t, rssi = _gaen(8, -60.0)
    c = analyze_contact(t, rssi, np.full(t.shape, -20.0))
    assert c.regime == "sparse"
    assert c.sparse_scans
    assert c.n_scans == 8
    assert c.observed_minutes == pytest.approx((120 + 7 * 250) / 60)


def test_a_continuous_scanner_that_lost_the_beacon_for_a_while_stays_dense() -> None:
    # The store's 10-s buckets of a 30-minute meeting, the beacon lost for 5 minutes midway:
    # two runs 17 minutes apart. Read as two duty-cycled scans this was 7 minutes, no contact.
    t = T0 + np.arange(0.0, 30 * 60, 10.0)
    heard = (t < T0 + 720) | (t >= T0 + 1020)
    tx = np.full(int(heard.sum()), -20.0)
    c = analyze_contact(t[heard], np.full(tx.shape, -60.0), tx)
    assert c.regime == "dense"
    assert c.observed_minutes == pytest.approx(25.0)
    assert c.tc4tl
    # GAEN's brief scans every few minutes are still read as duty-cycled.
    t, rssi = _gaen(8, -60.0)
    assert analyze_contact(t, rssi).regime == "sparse"


def test_coverage_is_the_share_of_the_contact_heard() -> None:
    # Dense: heard in minutes 0-9 and 20-29 of a 30-minute contact.
    t, rssi = _dense(30, -60.0)
    gap = (t >= T0 + 600) & (t < T0 + 1200)
    c = analyze_contact(t[~gap], rssi[~gap])
    assert c.coverage == pytest.approx(20 / 30)
    # Sparse: the scan at 500 s missed; observed 120 + 250 + 300 (capped) + 250 s of a contact
    # that ran from 120 s before its first scan to the end of its last.
    t, rssi = _gaen(5, -60.0)
    missed = (t >= T0 + 500) & (t < T0 + 750)
    c = analyze_contact(t[~missed], rssi[~missed])
    assert c.observed_minutes == pytest.approx(920 / 60)
    assert c.coverage == pytest.approx(920 / (1002.5 + 120))
    t, rssi = _gaen(5, -60.0)
    assert analyze_contact(t, rssi).coverage == pytest.approx(1.0, abs=0.01)


def test_confidence_discounts_an_unknown_tx_power_and_a_patchy_contact() -> None:
    cfg = EngineConfig(default_tx_power=-20.0)
    t, rssi = _dense(60, -50.0)
    known = analyze_contact(t, rssi, np.full(t.shape, -20.0), config=cfg)
    unknown = analyze_contact(t, rssi, config=cfg)
    assert known.score == unknown.score == pytest.approx(1.0, abs=1e-3)
    assert known.confidence == pytest.approx(1.0, abs=1e-3)
    assert unknown.confidence == pytest.approx(0.6 * known.confidence)
    every_other_minute = (t - T0) // 60 % 2 == 0
    patchy = analyze_contact(
        t[every_other_minute], rssi[every_other_minute], np.full(t.shape, -20.0)[::2], config=cfg
    )
    assert patchy.coverage == pytest.approx(30 / 59)
    assert patchy.score == pytest.approx(1.0, abs=1e-3)
    assert patchy.confidence == pytest.approx(0.5 + 0.5 * 30 / 59, abs=1e-3)


def test_interval_without_a_shared_offset_sums_independent_units() -> None:
    # With no persistent share every scan is independent: SD² = Σ (w/60)² p (1 − p).
    model = PathLossModel(persistent_share=0.0)
    t, rssi = _gaen(8, -75.0)
    c = analyze_contact(t, rssi, config=EngineConfig(model=model, default_tx_power=-20.0))
    p = float(p_within(np.array([55.0]), 2.0, model)[0])
    w = np.array([120.0] + [250.0] * 7) / 60.0
    mean, low, high = c.minutes_within[2.0]
    assert mean == pytest.approx(w.sum() * p)
    sd = np.sqrt((w**2).sum() * p * (1 - p))
    assert (low, high) == pytest.approx((mean - 1.2815516 * sd, mean + 1.2815516 * sd))


def test_scan_seconds_given_by_caller_override_the_contact_view() -> None:
    t, rssi = _gaen(3, -60.0)
    c = analyze_contact(t, rssi, scan_seconds=np.full(t.shape, 60.0))
    assert c.observed_minutes == pytest.approx(3.0)


def test_p_within_is_monotone_and_a_probability() -> None:
    level = np.linspace(20, 110, 50)
    p = p_within(level, 2.0, PathLossModel())
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p) <= 1e-12)
    assert p[0] > 0.95
    assert p[-1] < 0.05


@pytest.mark.parametrize("level", [40.0, 55.0, 62.0, 70.0, 85.0])
@pytest.mark.parametrize("distance", [1.0, 1.5, 2.0, 3.0])
def test_p_within_is_the_posterior_of_the_documented_default_model(
    level: float, distance: float
) -> None:
    # docs/exposure-engine.md: 50 dB at 1 m, exponent 2, 10 dB shadowing, d log-uniform on
    # 0.3-8 m. The posterior integrated numerically over log10 d, against the closed form.
    u = np.linspace(np.log10(0.3), np.log10(8.0), 200_001)
    likelihood = np.exp(-0.5 * ((level - 50.0 - 20.0 * u) / 10.0) ** 2)
    cumulative = np.concatenate(([0.0], np.cumsum((likelihood[1:] + likelihood[:-1]) / 2)))
    expected = np.interp(np.log10(distance), u, cumulative) / cumulative[-1]
    got = float(p_within(np.array([level]), distance, PathLossModel())[0])
    assert got == pytest.approx(expected, abs=2e-6)


def test_decision_threshold_and_distance_are_configurable() -> None:
    t, rssi = _dense(20, -75.0)
    base = analyze_contact(t, rssi, np.full(t.shape, -20.0))
    lenient = analyze_contact(
        t, rssi, np.full(t.shape, -20.0), config=EngineConfig(decision_minutes=0.5)
    )
    assert lenient.tc4tl
    wide = analyze_contact(t, rssi, np.full(t.shape, -20.0), config=EngineConfig(distance_m=3.0))
    assert wide.minutes_close >= base.minutes_close
    mid, lo, hi = base.minutes_within[2.0]
    assert lo <= mid <= hi


def test_unsorted_input_gives_the_same_contact() -> None:
    t, rssi = _dense(10, -70.0)
    rssi = rssi + np.sin(t)
    perm = np.random.default_rng(1).permutation(t.size)
    assert analyze_contact(t[perm], rssi[perm]) == analyze_contact(t, rssi)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidInput):
        analyze_contact(np.array([]), np.array([]))
    with pytest.raises(InvalidInput):
        analyze_contact(np.array([1.0, 2.0]), np.array([-60.0]))
    with pytest.raises(InvalidInput):
        analyze_contact(np.array([1.0, np.nan]), np.array([-60.0, -60.0]))
    with pytest.raises(InvalidInput, match="year 9999"):
        analyze_contact(np.array([1.0, 1e15]), np.array([-60.0, -60.0]))


def test_relay_flag_on_implausible_jump() -> None:
    t = T0 + np.array([0.0, 0.5, 1.0, 1.5])
    c = analyze_contact(t, np.array([-40.0, -100.0, -40.0, -100.0]))
    assert c.possible_relay


def test_contacts_group_by_id() -> None:
    t1, r1 = _dense(20, -60.0)
    t2, r2 = _dense(20, -100.0)
    ids = np.array(["a"] * t1.size + ["b"] * t2.size)
    out = analyze_contacts(ids, np.r_[t1, t2], np.r_[r1, r2], np.full(t1.size + t2.size, -20.0))
    assert list(out) == ["a", "b"]
    assert out["a"].tc4tl
    assert not out["b"].tc4tl
    # the same as integer codes into labels, listed in label order whatever the codes
    codes = np.array([1] * t1.size + [0] * t2.size, dtype=np.int32)
    coded = analyze_contacts(
        codes, np.r_[t1, t2], np.r_[r1, r2], np.full(t1.size + t2.size, -20.0), labels=("b", "a")
    )
    assert coded == out
    assert list(coded) == ["a", "b"]
    for bad, labels, message in (
        (ids, ("a", "b"), "integer codes"),
        (codes, ("a", "a"), "distinct"),
        (codes + 1, ("b", "a"), "outside 0..1"),
    ):
        with pytest.raises(InvalidInput, match=message):
            analyze_contacts(bad, np.r_[t1, t2], np.r_[r1, r2], labels=labels)


def test_gaen_view_feeds_the_cwa_preset() -> None:
    t, rssi = _gaen(6, -80.0, period=300.0)  # attenuation 60 dB: CWA weight 0.8
    t = t - T0 % 1800.0  # start on a UTC half hour: one window holds all six scans
    windows = exposure_windows(t, rssi, np.full(t.shape, -20.0), report_type=1, infectiousness=2)
    assert len(windows) == 1
    w = windows[0]
    assert w.min_attenuation.tolist() == [60.0] * 6
    assert w.seconds_since_last_scan.tolist() == [120.0] + [300.0] * 5
    result = cwa_risk(windows, CWA_V2)
    # (120 + 1500) s x 0.8 / 60 = 21.6 min, x TRL 8 value 1.6 = 34.56 -> HIGH
    assert result.windows[0] is not None
    assert result.windows[0].normalized_time == pytest.approx(34.56)
    assert result.total_risk_level == RISK_HIGH


def test_gaen_windows_are_utc_aligned_and_the_day_sum_is_unchanged() -> None:
    t, rssi = _gaen(6, -80.0, period=300.0)  # T0 sits 840 s into a UTC half hour
    windows = exposure_windows(t, rssi, np.full(t.shape, -20.0), report_type=1, infectiousness=2)
    assert [w.seconds_since_last_scan.size for w in windows] == [4, 2]
    result = cwa_risk(windows, CWA_V2)
    total = sum(r.normalized_time for r in result.windows if r is not None)
    assert total == pytest.approx(34.56)
    assert result.total_risk_level == RISK_HIGH


def test_gaen_windows_never_span_two_days() -> None:
    midnight = 1_700_006_400.0  # a multiple of 86,400
    t = midnight + np.array([-200.0, -100.0, 100.0, 200.0])
    windows = exposure_windows(t, np.full(4, -70.0), np.full(4, -20.0))
    assert [w.day for w in windows] == [19675, 19676]
    with pytest.raises(InvalidInput, match="divide a day"):
        exposure_windows(t, np.full(4, -70.0), window_s=7000.0)


def test_gaen_view_splits_windows_at_30_minutes() -> None:
    t, rssi = _gaen(20, -80.0, period=250.0)
    windows = exposure_windows(t, rssi)
    # scans every 250 s from 840 s into a UTC half hour: 4 before its end, then 8, 7 and 1
    assert [w.seconds_since_last_scan.size for w in windows] == [4, 8, 7, 1]


def test_bucket_presets_split_the_same_contact_differently() -> None:
    t, rssi = _dense(10, -80.0)  # attenuation 60 dB with TX -20
    tx = np.full(t.shape, -20.0)
    cwa = analyze_contact(t, rssi, tx)  # CWA v2 edges 63/73/79: 60 dB is the lowest bucket
    gaen = analyze_contact(t, rssi, tx, config=EngineConfig(bucket_thresholds=GAEN_BUCKETS))
    assert cwa.bucket_seconds == (600.0, 0.0, 0.0, 0.0)
    assert gaen.bucket_seconds == (0.0, 600.0, 0.0, 0.0)  # GAEN-style 55/63/70: "near"
    assert cwa.weighted_minutes == pytest.approx(10 * 0.8)
    assert gaen.weighted_minutes == pytest.approx(10 * 1.0)


def test_buckets_on_the_mean_attenuation_of_each_unit() -> None:
    # Each minute hears 50 dB and 70 dB: its minimum is 50 (CWA's lowest bucket), its mean
    # 60 (still the lowest, below 63); 54 and 74 make a mean of 64, the second bucket.
    t = T0 + np.repeat(np.arange(10) * 60.0, 2) + np.tile([0.0, 30.0], 10)
    tx = np.full(t.shape, -20.0)
    for pair, on_mean in (((-70.0, -90.0), 0), ((-74.0, -94.0), 1)):
        rssi = np.tile(pair, 10)
        by_min = analyze_contact(t, rssi, tx)
        by_mean = analyze_contact(t, rssi, tx, config=EngineConfig(bucket_on_min=False))
        assert by_min.bucket_seconds[0] == 600.0
        assert by_mean.bucket_seconds[on_mean] == 600.0


@pytest.mark.parametrize("width", [0.0, -1800.0, 7.0])
def test_exposure_windows_must_divide_a_day(width: float) -> None:
    t, rssi = _gaen(4, -60.0)
    with pytest.raises(InvalidInput, match="divide a day"):
        exposure_windows(t, rssi, window_s=width)
