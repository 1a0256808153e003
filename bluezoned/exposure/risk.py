"""Risk scoring of exposure windows: CWA v2 (the default), GAEN v2 daily summaries, GAEN v1.

Pure functions of frozen windows and parameter sets (``protocol.md`` §7); no I/O, no clock.
Days are integers (UTC day numbers, or minus the age in days): larger is more recent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from bluezoned.errors import InvalidInput
from bluezoned.exposure.presets import (
    CWA_V2,
    INFECTIOUSNESS_HIGH,
    INFECTIOUSNESS_NONE,
    INFECTIOUSNESS_STANDARD,
    RISK_HIGH,
    RISK_LOW,
    CwaParameters,
    DailySummariesConfig,
    GaenV1Config,
    LevelRange,
    Range,
)
from bluezoned.models import ReportType

FloatArray = npt.NDArray[np.float64]

NORMALIZED_TIME_DECIMALS: Final = 6
"""CWA rounds normalized time before mapping it (EXPOSUREAPP-12211: 1 × 3 × 1.2 gave 3.59…);
six decimals removes binary noise without moving any real value across a threshold."""

CWA_ONSET_INFECTIOUSNESS: Final = {1: INFECTIOUSNESS_STANDARD, 2: INFECTIOUSNESS_HIGH}
"""CWA's ``diagnosis-keys-data-mapping.yaml``: days_since_onset 1 → STANDARD, 2 → HIGH, else NONE."""

CWA_TRL_TO_ONSET_AND_REPORT: Final = {
    1: (1, ReportType.RECURSIVE),
    2: (2, ReportType.RECURSIVE),
    3: (1, ReportType.SELF_REPORT),
    4: (2, ReportType.SELF_REPORT),
    5: (1, ReportType.CONFIRMED_CLINICAL_DIAGNOSIS),
    6: (2, ReportType.CONFIRMED_CLINICAL_DIAGNOSIS),
    7: (1, ReportType.CONFIRMED_TEST),
    8: (2, ReportType.CONFIRMED_TEST),
}
"""cwa-server ``transmission-risk-encoding.yaml``: TRL → (days_since_onset, report_type)."""

MAX_SECONDS_SINCE_LAST_SCAN: Final = 300
"""GAEN caps a scan's weight at 5 minutes (protocol.md §4.5, ``maxMinutesSinceLastScan``)."""
DEFAULT_SECONDS_SINCE_LAST_SCAN: Final = 120
"""GAEN's weight when the previous scan is unknown (``defaultMinutesSinceLastScan`` = 2)."""


@dataclass(frozen=True, slots=True)
class ExposureWindow:
    """A GAEN v2 ExposureWindow: per-scan arrays of equal length plus the key's metadata."""

    day: int
    min_attenuation: FloatArray
    typical_attenuation: FloatArray
    seconds_since_last_scan: FloatArray
    report_type: int = int(ReportType.CONFIRMED_TEST)
    infectiousness: int = INFECTIOUSNESS_STANDARD
    calibration_confidence: int = 0

    @classmethod
    def of(
        cls,
        day: int,
        scans: Iterable[tuple[float, float, float]],
        *,
        report_type: int = int(ReportType.CONFIRMED_TEST),
        infectiousness: int = INFECTIOUSNESS_STANDARD,
        calibration_confidence: int = 0,
    ) -> ExposureWindow:
        """Build a window from ``(min_attenuation, typical_attenuation, seconds_since_last_scan)`` rows."""
        rows = np.asarray(list(scans), dtype=np.float64).reshape(-1, 3)
        return cls(
            day=day,
            min_attenuation=rows[:, 0].copy(),
            typical_attenuation=rows[:, 1].copy(),
            seconds_since_last_scan=rows[:, 2].copy(),
            report_type=report_type,
            infectiousness=infectiousness,
            calibration_confidence=calibration_confidence,
        )


@dataclass(frozen=True, slots=True)
class WindowRisk:
    """CWA's per-window result: decoded TRL, normalized time and risk level (None: no mapping)."""

    transmission_risk_level: int
    weighted_minutes: float
    normalized_time: float
    risk_level: int | None


@dataclass(frozen=True, slots=True)
class DayRisk:
    """CWA's per-day aggregate; days whose normalized time maps to no level are not listed."""

    day: int
    normalized_time: float
    risk_level: int
    distinct_encounters_low: int
    distinct_encounters_high: int


@dataclass(frozen=True, slots=True)
class CwaResult:
    """CWA's aggregate over all windows (``RiskLevels.aggregateResults``)."""

    total_risk_level: int
    days: tuple[DayRisk, ...]
    windows: tuple[WindowRisk | None, ...]
    """One entry per input window: None when a filter dropped it."""

    @property
    def most_recent_day_low(self) -> int | None:
        """Most recent day with LOW risk, or None."""
        return max((d.day for d in self.days if d.risk_level == RISK_LOW), default=None)

    @property
    def most_recent_day_high(self) -> int | None:
        """Most recent day with HIGH risk, or None."""
        return max((d.day for d in self.days if d.risk_level == RISK_HIGH), default=None)

    @property
    def days_low(self) -> int:
        """Number of days with LOW risk."""
        return sum(d.risk_level == RISK_LOW for d in self.days)

    @property
    def days_high(self) -> int:
        """Number of days with HIGH risk."""
        return sum(d.risk_level == RISK_HIGH for d in self.days)

    @property
    def distinct_encounters_low(self) -> int:
        """Sum over days of the distinct (TRL, calibration confidence) pairs among LOW windows."""
        return sum(d.distinct_encounters_low for d in self.days)

    @property
    def distinct_encounters_high(self) -> int:
        """Sum over days of the distinct (TRL, calibration confidence) pairs among HIGH windows."""
        return sum(d.distinct_encounters_high for d in self.days)


@dataclass(frozen=True, slots=True)
class DayTotal:
    """One day's normalized time summed over contacts, and the level CWA's day mapping gives it."""

    day: int
    normalized_time: float
    risk_level: int | None
    """None when the sum is below every day level (CWA v2: under 5 minutes)."""


def cwa_day_totals(
    per_day: Iterable[tuple[int, float]], params: CwaParameters = CWA_V2
) -> tuple[DayTotal, ...]:
    """CWA's per-day aggregate of (day, normalized time) parts, oldest day first.

    CWA sums the normalized time of every window of a day, whoever it came from, before mapping
    the sum to a level: two contacts of 5 minutes on one day are HIGH together (CWA v2: 9 and
    up) though each alone is LOW. Contacts scored apart (one key at a time) are combined here.
    """
    sums: dict[int, float] = {}
    for day, normalized in per_day:
        sums[day] = sums.get(day, 0.0) + normalized
    out = []
    for day in sorted(sums):
        normalized = round(sums[day], NORMALIZED_TIME_DECIMALS)
        out.append(DayTotal(day, normalized, _level(params.day_levels, normalized)))
    return tuple(out)


def cwa_transmission_risk_level(window: ExposureWindow, params: CwaParameters = CWA_V2) -> int:
    """Decode the TRL CWA hides in report type and infectiousness; InvalidInput for other report types."""
    enc = params.trl_encoding
    offsets = {
        int(ReportType.RECURSIVE): enc.report_type_recursive,
        int(ReportType.SELF_REPORT): enc.report_type_self_report,
        int(ReportType.CONFIRMED_CLINICAL_DIAGNOSIS): enc.report_type_confirmed_clinical_diagnosis,
        int(ReportType.CONFIRMED_TEST): enc.report_type_confirmed_test,
    }
    if window.report_type not in offsets:
        raise InvalidInput(f"report type {window.report_type} has no CWA TRL encoding")
    infectiousness = (
        enc.infectiousness_high
        if window.infectiousness == INFECTIOUSNESS_HIGH
        else enc.infectiousness_standard
    )
    return offsets[window.report_type] + infectiousness


def cwa_window_risk(window: ExposureWindow, params: CwaParameters = CWA_V2) -> WindowRisk | None:
    """CWA's ``calculateRisk`` for one window; None when a minutes or TRL filter drops it."""
    attenuation = (
        window.min_attenuation if params.use_min_attenuation else window.typical_attenuation
    )
    seconds = window.seconds_since_last_scan
    for flt in params.minutes_at_attenuation_filters:
        inside = _in_range(attenuation, flt.attenuation)
        if flt.drop_if_minutes.contains(float(seconds[inside].sum()) / 60.0):
            return None
    trl = cwa_transmission_risk_level(window, params)
    if any(r.contains(trl) for r in params.trl_filters):
        return None
    weights = np.zeros(attenuation.shape, dtype=np.float64)
    assigned = np.zeros(attenuation.shape, dtype=bool)
    for wr in params.attenuation_weights:
        # The first matching range wins, as Kotlin's ``find`` does.
        hit = _in_range(attenuation, wr.range) & ~assigned
        weights[hit] = wr.weight
        assigned |= hit
    weighted_minutes = float((np.maximum(seconds, 0.0) * weights).sum()) / 60.0
    normalized = round(params.trl_values.get(trl, 0.0) * weighted_minutes, NORMALIZED_TIME_DECIMALS)
    return WindowRisk(trl, weighted_minutes, normalized, _level(params.window_levels, normalized))


def cwa_risk(
    windows: Sequence[ExposureWindow], params: CwaParameters = CWA_V2, *, today: int | None = None
) -> CwaResult:
    """CWA's ``aggregateResults``: per-window risk, per-day sums, total HIGH if any day is HIGH.

    Parameters with a ``max_encounter_age_days`` first drop the windows whose UTC day is older
    than ``today`` (a UTC day number) less that many days, as CWA's ``ExposureWindowsFilter``
    does; they need ``today`` (InvalidInput without it).
    """
    max_age = params.max_encounter_age_days
    if max_age is not None and today is None:
        raise InvalidInput(f"the CWA parameters {params.name} limit the encounter age: pass today")
    results = tuple(
        None
        if max_age is not None and today is not None and w.day < today - max_age
        else cwa_window_risk(w, params)
        for w in windows
    )
    kept = [(w, r) for w, r in zip(windows, results, strict=True) if r is not None]
    days: list[DayRisk] = []
    for day_total in cwa_day_totals(((w.day, r.normalized_time) for w, r in kept), params):
        day, normalized, level = day_total.day, day_total.normalized_time, day_total.risk_level
        if level is None:
            continue
        at_day = [(w, r) for w, r in kept if w.day == day]
        low = {
            (r.transmission_risk_level, w.calibration_confidence)
            for w, r in at_day
            if r.risk_level == RISK_LOW
        }
        high = {
            (r.transmission_risk_level, w.calibration_confidence)
            for w, r in at_day
            if r.risk_level == RISK_HIGH
        }
        days.append(DayRisk(day, normalized, level, len(low), len(high)))
    total = RISK_HIGH if any(d.risk_level == RISK_HIGH for d in days) else RISK_LOW
    return CwaResult(total, tuple(days), results)


def key_window_metadata(
    report_type: int | None,
    days_since_onset: int | None,
    transmission_risk_level: int | None,
    *,
    onset_map: Mapping[int, int] = CWA_ONSET_INFECTIOUSNESS,
    report_type_when_missing: int = int(ReportType.CONFIRMED_TEST),
    infectiousness_when_onset_missing: int = INFECTIOUSNESS_NONE,
) -> tuple[int, int]:
    """(report type, infectiousness) a window of this key carries; legacy TRL-only keys are
    decoded, and a key left without days since onset gets GAEN's
    ``infectiousnessWhenDaysSinceOnsetMissing`` (NONE, as CWA, unless given)."""
    if transmission_risk_level is not None:
        decoded = CWA_TRL_TO_ONSET_AND_REPORT.get(transmission_risk_level)
        if decoded is not None:
            if days_since_onset is None:
                days_since_onset = decoded[0]
            if report_type is None:
                report_type = int(decoded[1])
    rt = report_type if report_type is not None and report_type != 0 else report_type_when_missing
    if days_since_onset is None:
        return rt, infectiousness_when_onset_missing
    return rt, onset_map.get(days_since_onset, INFECTIOUSNESS_NONE)


@dataclass(frozen=True, slots=True)
class DailySummary:
    """GAEN v2 DailySummary for one day and its per-report-type breakdown."""

    day: int
    maximum_score: float
    score_sum: float
    weighted_duration_sum: float
    by_report_type: Mapping[int, tuple[float, float, float]] = field(default_factory=dict)
    """report type → (maximum_score, score_sum, weighted_duration_sum)."""


def gaen_daily_summaries(
    windows: Sequence[ExposureWindow], config: DailySummariesConfig, *, today: int | None = None
) -> tuple[DailySummary, ...]:
    """GAEN v2 ``DailySummaryUtils``: bucket on typicalAttenuationDb, weight, drop, sum per day."""
    per_day: dict[int, dict[int, list[float]]] = {}
    for w in windows:
        if w.infectiousness == INFECTIOUSNESS_NONE:
            continue  # an onset outside the mapping drops the window (§7.3)
        if (
            config.days_since_exposure_threshold > 0
            and today is not None
            and (today - w.day > config.days_since_exposure_threshold)
        ):
            continue
        th = np.asarray(config.attenuation_thresholds, dtype=np.float64)
        buckets = np.searchsorted(th, w.typical_attenuation, side="left")
        weights = np.asarray(config.bucket_weights, dtype=np.float64)[buckets]
        duration = float((w.seconds_since_last_scan * weights).sum())
        score = (
            duration
            * config.report_type_weights.get(w.report_type, 0.0)
            * config.infectiousness_weights.get(w.infectiousness, 0.0)
        )
        if score < config.minimum_window_score:
            continue
        acc = per_day.setdefault(w.day, {}).setdefault(w.report_type, [0.0, 0.0, 0.0])
        acc[0] = max(acc[0], score)
        acc[1] += score
        acc[2] += duration
    out = []
    for day in sorted(per_day):
        by_rt = {rt: (v[0], v[1], v[2]) for rt, v in per_day[day].items()}
        out.append(
            DailySummary(
                day,
                max(v[0] for v in by_rt.values()),
                sum(v[1] for v in by_rt.values()),
                sum(v[2] for v in by_rt.values()),
                by_rt,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class GaenV1Result:
    """GAEN v1 per-exposure risk score and CWA v1's combined score and level."""

    risk_score: int
    attenuation_minutes: tuple[float, float, float]
    combined_score: float
    risk_level: int


def gaen_v1_risk(
    attenuation_db: FloatArray,
    seconds: FloatArray,
    *,
    days_since_exposure: int,
    transmission_risk_level: int,
    config: GaenV1Config,
) -> GaenV1Result:
    """GAEN v1 ``RiskScoreCalculator`` for one ≤ 30-min exposure, and the CWA v1 app formula on top."""
    total_s = float(np.maximum(seconds, 0.0).sum())
    minutes = total_s / 60.0
    mean_att = float((attenuation_db * seconds).sum() / total_s) if total_s > 0 else 255.0
    att_idx = 7 - int(np.searchsorted([10, 15, 27, 33, 51, 63, 73], mean_att, side="left"))
    day_idx = 7 - int(np.searchsorted([2, 4, 6, 8, 10, 12, 14], days_since_exposure, side="right"))
    dur_idx = (
        0
        if minutes <= 0
        else 1 + int(np.searchsorted([5, 10, 15, 20, 25, 30], minutes, side="left"))
    )
    # TRL 0 is invalid and scores 1 (RiskScoreCalculator); above 8 is clamped.
    trl_score = (
        1
        if transmission_risk_level <= 0
        else config.transmission_scores[min(transmission_risk_level, 8) - 1]
    )
    score = (
        config.attenuation_scores[att_idx]
        * config.days_scores[day_idx]
        * config.duration_scores[min(dur_idx, 7)]
        * trl_score
    )
    if score < config.minimum_risk_score:
        score = 0
    lo, hi = config.duration_thresholds
    cap = config.bucket_cap_minutes
    low = min(float(seconds[attenuation_db <= lo].sum()) / 60.0, cap)
    mid = min(float(seconds[(attenuation_db > lo) & (attenuation_db <= hi)].sum()) / 60.0, cap)
    high = min(float(seconds[attenuation_db > hi].sum()) / 60.0, cap)
    wl, wm, wh = config.duration_weights
    combined = score / config.normalization_divisor * (wl * low + wm * mid + wh * high)
    level = RISK_HIGH if combined >= config.high_risk_from else RISK_LOW
    return GaenV1Result(score, (low, mid, high), combined, level)


def _in_range(values: FloatArray, r: Range) -> npt.NDArray[np.bool_]:
    above = values > r.min if r.min_exclusive else values >= r.min
    below = values < r.max if r.max_exclusive else values <= r.max
    return np.asarray(above & below, dtype=bool)


def _level(levels: Sequence[LevelRange], value: float) -> int | None:
    return next((lr.level for lr in levels if lr.range.contains(value)), None)
