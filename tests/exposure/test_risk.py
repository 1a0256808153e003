"""Risk scoring on hand-made windows: CWA filters and TRL decoding, GAEN v2 daily sums, GAEN v1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from bluezoned.errors import InvalidInput
from bluezoned.exposure.presets import (
    CWA_V1,
    CWA_V2,
    CWA_V2_INITIAL,
    GAEN_V1_DEFAULT,
    GAEN_V2_DEFAULT,
    INFECTIOUSNESS_HIGH,
    INFECTIOUSNESS_NONE,
    INFECTIOUSNESS_STANDARD,
    RISK_HIGH,
    RISK_LOW,
    DailySummariesConfig,
    Range,
)
from bluezoned.exposure.risk import (
    ExposureWindow,
    cwa_risk,
    cwa_transmission_risk_level,
    cwa_window_risk,
    gaen_daily_summaries,
    gaen_v1_risk,
    key_window_metadata,
)
from bluezoned.models import ReportType


def _w(
    day: int, scans: Sequence[tuple[float, float, float]], rt: int = 1, inf: int = 2
) -> ExposureWindow:
    return ExposureWindow.of(day, scans, report_type=rt, infectiousness=inf)


def test_range_flags() -> None:
    r = Range(0, 63, max_exclusive=True)
    assert r.contains(0)
    assert r.contains(62.9)
    assert not r.contains(63)
    assert not Range(1, 2, min_exclusive=True).contains(1)
    assert Range(1, 2).contains(1)
    assert Range(1, 2).contains(2)  # inclusive unless flagged
    assert not Range(1, 2).contains(2.001)


@pytest.mark.parametrize(
    ("report_type", "infectiousness", "trl"),
    [(1, 2, 8), (1, 1, 7), (2, 2, 6), (3, 1, 3), (4, 2, 2), (4, 1, 1)],
)
def test_trl_decoding(report_type: int, infectiousness: int, trl: int) -> None:
    w = _w(0, [], report_type, infectiousness)
    assert cwa_transmission_risk_level(w) == trl


@pytest.mark.parametrize("trl", range(1, 9))
def test_legacy_trl_decodes_to_the_window_cwa_encodes_back(trl: int) -> None:
    # cwa-server encodes (report type, onset) into TRL 1-8; a legacy key's TRL must decode to
    # the window metadata that the app's TRL mapping turns back into the same TRL.
    report_type, infectiousness = key_window_metadata(None, None, trl)
    assert cwa_transmission_risk_level(_w(0, [], report_type, infectiousness)) == trl


@pytest.mark.parametrize(
    ("minutes", "level"),
    [(0, 0), (1, 1), (5, 1), (5.5, 2), (10, 2), (15, 3), (20, 4), (25, 5), (30, 6), (31, 7)],
)
def test_gaen_v1_duration_level_ranges(minutes: float, level: int) -> None:
    # durationLevelValues: [0] 0 min, [1] <= 5, [2] <= 10, ..., [6] <= 30, [7] > 30.
    scores = replace(
        GAEN_V1_DEFAULT,
        attenuation_scores=(1,) * 8,
        days_scores=(1,) * 8,
        duration_scores=tuple(range(1, 9)),
        transmission_scores=(1,) * 8,
        minimum_risk_score=0,
    )
    result = gaen_v1_risk(
        np.array([50.0]),
        np.array([minutes * 60.0]),
        days_since_exposure=3,
        transmission_risk_level=1,
        config=scores,
    )
    assert result.risk_score == level + 1


def test_unknown_report_type_is_refused() -> None:
    with pytest.raises(InvalidInput):
        cwa_window_risk(_w(0, [(30, 30, 300)], rt=5), CWA_V2)


def test_weights_use_min_attenuation_and_ignore_negative_seconds() -> None:
    w = _w(0, [(62, 80, 300), (63, 10, 300), (78, 10, 600), (79, 10, 900), (10, 10, -50)])
    r = cwa_window_risk(w, CWA_V2)
    assert r is not None
    assert r.weighted_minutes == pytest.approx(4.0 + 5.0 + 1.0 + 0.0)
    assert r.normalized_time == pytest.approx(16.0)
    assert r.risk_level == RISK_HIGH


def test_initial_parameters_filter_short_windows_and_low_trl() -> None:
    short = _w(0, [(50, 50, 240)])
    assert cwa_window_risk(short, CWA_V2_INITIAL) is None
    low_trl = _w(0, [(50, 50, 300)] * 4, rt=4, inf=1)
    assert cwa_window_risk(low_trl, CWA_V2_INITIAL) is None
    kept = cwa_window_risk(_w(0, [(50, 50, 300)] * 4), CWA_V2_INITIAL)
    assert kept is not None
    assert kept.normalized_time == pytest.approx(1.6 * 16.0)


def test_initial_parameters_are_high_from_13_normalized_minutes() -> None:
    # TRL 8 (x 1.6) at 50 dB (weight 0.8): 1.28 normalized minutes per minute
    below = cwa_window_risk(_w(0, [(50, 50, 600)]), CWA_V2_INITIAL)
    at = cwa_window_risk(_w(0, [(50, 50, 60 * 13 / 1.28)]), CWA_V2_INITIAL)
    assert below is not None
    assert below.normalized_time == pytest.approx(12.8)
    assert below.risk_level == RISK_LOW
    assert at is not None
    assert at.normalized_time == pytest.approx(13.0)
    assert at.risk_level == RISK_HIGH


def test_initial_parameters_ignore_encounters_older_than_10_days() -> None:
    window = [(30, 30, 300)] * 4  # 20 min at 30 dB, TRL 8: HIGH
    today = 20_000
    assert cwa_risk([_w(today - 10, window)], CWA_V2_INITIAL, today=today).days
    old = cwa_risk([_w(today - 11, window), _w(today, [])], CWA_V2_INITIAL, today=today)
    assert old.windows[0] is None  # dropped before scoring, as CWA's ExposureWindowsFilter
    assert old.total_risk_level == RISK_LOW
    assert not old.days
    with pytest.raises(InvalidInput, match="pass today"):
        cwa_risk([_w(today, window)], CWA_V2_INITIAL)
    # CWA v2 (>= 1.15) has no age limit of its own: the store's 14-day retention is the limit.
    assert cwa_risk([_w(today - 13, window)]).total_risk_level == RISK_HIGH


def test_days_sum_and_total_is_high_when_any_day_is_high() -> None:
    low = _w(-3, [(65, 65, 300)], rt=2, inf=1)  # TRL 5, 5 min -> LOW window, LOW day
    high = _w(-1, [(30, 30, 420)] * 2)
    result = cwa_risk([low, high])
    assert result.total_risk_level == RISK_HIGH
    assert (result.most_recent_day_low, result.most_recent_day_high) == (-3, -1)
    assert (result.days_low, result.days_high) == (1, 1)
    assert cwa_risk([]).total_risk_level == RISK_LOW


def test_key_metadata_from_onset_or_legacy_trl() -> None:
    assert key_window_metadata(1, 2, None) == (1, INFECTIOUSNESS_HIGH)
    assert key_window_metadata(3, 1, None) == (3, INFECTIOUSNESS_STANDARD)
    assert key_window_metadata(1, 7, None) == (1, INFECTIOUSNESS_NONE)
    assert key_window_metadata(None, None, 8) == (
        int(ReportType.CONFIRMED_TEST),
        INFECTIOUSNESS_HIGH,
    )
    assert key_window_metadata(None, None, None) == (1, INFECTIOUSNESS_NONE)
    standard = INFECTIOUSNESS_STANDARD
    assert key_window_metadata(None, None, None, infectiousness_when_onset_missing=standard) == (
        1,
        INFECTIOUSNESS_STANDARD,
    )
    assert key_window_metadata(2, None, 99, infectiousness_when_onset_missing=standard) == (
        2,
        INFECTIOUSNESS_STANDARD,
    )
    # a decodable TRL or a known onset wins over the missing-onset default
    assert (
        key_window_metadata(None, None, 8, infectiousness_when_onset_missing=standard)[1]
        == INFECTIOUSNESS_HIGH
    )
    assert key_window_metadata(1, 7, None, infectiousness_when_onset_missing=standard) == (
        1,
        INFECTIOUSNESS_NONE,
    )


def test_gaen_v2_daily_summary_in_seconds_with_unit_weights() -> None:
    windows = [
        _w(10, [(20, 25, 300), (40, 80, 120)], rt=1, inf=1),
        _w(10, [(20, 60, 60)], rt=2, inf=2),
        _w(11, [(20, 60, 60)], rt=1, inf=INFECTIOUSNESS_NONE),
    ]
    days = gaen_daily_summaries(windows, GAEN_V2_DEFAULT)
    assert [d.day for d in days] == [10]
    assert days[0].weighted_duration_sum == pytest.approx(480.0)
    assert days[0].score_sum == pytest.approx(480.0)
    assert days[0].maximum_score == pytest.approx(420.0)
    weighted = DailySummariesConfig(
        attenuation_thresholds=(30, 50, 70),
        bucket_weights=(2.0, 1.0, 0.5, 0.0),
        report_type_weights={1: 1.0, 2: 0.5},
        infectiousness_weights={1: 1.0, 2: 2.0},
        minimum_window_score=100.0,
    )
    days = gaen_daily_summaries(windows, weighted)
    # window 1: 300 x 2.0 (25 dB) + 120 x 0 (80 dB) = 600; window 2: 60 x 0.5 x 0.5 x 2 = 30 < 100.
    assert days[0].score_sum == pytest.approx(600.0)
    assert days[0].by_report_type == {1: (600.0, 600.0, 600.0)}


def test_gaen_v1_and_cwa_v1() -> None:
    att = np.array([50.0, 50.0, 50.0, 50.0])
    seconds = np.array([300.0, 300.0, 300.0, 300.0])  # 20 min at 50 dB
    default = gaen_v1_risk(
        att, seconds, days_since_exposure=3, transmission_risk_level=5, config=GAEN_V1_DEFAULT
    )
    assert default.risk_score == 4**4
    cwa = gaen_v1_risk(
        att, seconds, days_since_exposure=3, transmission_risk_level=7, config=CWA_V1
    )
    # attenuation score 2, days 5, duration (<= 20 min) 1, TRL 7 -> 7: 70; 20 min below 55 dB.
    assert cwa.risk_score == 70
    assert cwa.attenuation_minutes == (20.0, 0.0, 0.0)
    assert cwa.combined_score == pytest.approx(70 / 50 * 20)
    assert cwa.risk_level == RISK_HIGH
    short = gaen_v1_risk(
        att[:2], seconds[:2], days_since_exposure=3, transmission_risk_level=7, config=CWA_V1
    )
    assert short.risk_score == 0  # <= 10 min has duration score 0 in CWA v1


def test_gaen_v1_attenuation_durations_put_each_threshold_in_the_lower_bucket() -> None:
    # attenuationDurations: [0] A <= X, [1] X < A <= Y, [2] A > Y (protocol.md §7.2).
    att = np.array([54.0, 55.0, 56.0, 63.0, 64.0])
    seconds = np.array([60.0, 120.0, 180.0, 240.0, 300.0])
    result = gaen_v1_risk(
        att, seconds, days_since_exposure=3, transmission_risk_level=7, config=CWA_V1
    )
    assert result.attenuation_minutes == (3.0, 7.0, 5.0)
    # Scores 2 (mean 60.3 dB) x 5 (3 days) x 1 (15 min) x 7 (TRL 7); weights 1, 0.5, 0.
    assert result.risk_score == 70
    assert result.combined_score == pytest.approx(70 / 50 * (3.0 + 0.5 * 7.0))
    # Google's builder defaults put the thresholds at 50 and 74 dB.
    att = np.array([50.0, 51.0, 74.0, 75.0])
    default = gaen_v1_risk(
        att, seconds[:4], days_since_exposure=3, transmission_risk_level=7, config=GAEN_V1_DEFAULT
    )
    assert default.attenuation_minutes == (1.0, 5.0, 4.0)


@pytest.mark.parametrize(
    ("mean_attenuation", "level"),
    [
        (74, 0),
        (73, 1),
        (64, 1),
        (63, 2),
        (52, 2),
        (51, 3),
        (34, 3),
        (33, 4),
        (28, 4),
        (27, 5),
        (16, 5),
        (15, 6),
        (11, 6),
        (10, 7),
        (0, 7),
    ],
)
def test_gaen_v1_attenuation_level_ranges(mean_attenuation: int, level: int) -> None:
    # attenuationLevelValues: [0] A > 73, [1] 63 < A <= 73, ..., [7] A <= 10.
    scores = replace(
        GAEN_V1_DEFAULT,
        attenuation_scores=tuple(range(1, 9)),
        days_scores=(1,) * 8,
        duration_scores=(1,) * 8,
        transmission_scores=(1,) * 8,
        minimum_risk_score=0,
    )
    result = gaen_v1_risk(
        np.array([float(mean_attenuation)]),
        np.array([600.0]),
        days_since_exposure=3,
        transmission_risk_level=1,
        config=scores,
    )
    assert result.risk_score == level + 1
