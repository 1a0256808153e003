"""Risk-scoring parameter sets as data: CWA v2 (1.15 and initial), CWA v1, GAEN v1 and v2 defaults.

Every number cites ``protocol.md`` §7; nothing here computes anything beyond reading a
CWA ``RiskCalculationParameters`` mapping (the JSON form the app's test resources use).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from bluezoned.const import RISK_LEVEL_HIGH, RISK_LEVEL_LOW
from bluezoned.errors import InvalidInput

RISK_LOW: Final = RISK_LEVEL_LOW
RISK_HIGH: Final = RISK_LEVEL_HIGH
"""CWA's RiskLevel enum values (``RiskCalculationParameters.proto``: 1 LOW, 2 HIGH)."""


def risk_level_name(level: int | None) -> str:
    """ "LOW" or "HIGH" for CWA's levels; any other level as its number ("none" for None)."""
    return {RISK_LOW: "LOW", RISK_HIGH: "HIGH"}.get(level or 0, str(level).lower())


INFECTIOUSNESS_NONE: Final = 0
INFECTIOUSNESS_STANDARD: Final = 1
INFECTIOUSNESS_HIGH: Final = 2
"""GAEN v2 Infectiousness values (protocol.md §7.3)."""


@dataclass(frozen=True, slots=True)
class Range:
    """A numeric interval with CWA's open/closed flags (``ENARange``); bounds are inclusive by default."""

    min: float = -math.inf
    max: float = math.inf
    min_exclusive: bool = False
    max_exclusive: bool = False

    def contains(self, value: float) -> bool:
        """True when ``value`` lies inside the interval."""
        above = value > self.min if self.min_exclusive else value >= self.min
        below = value < self.max if self.max_exclusive else value <= self.max
        return above and below


@dataclass(frozen=True, slots=True)
class WeightedRange:
    """An attenuation range and the weight of a minute spent in it."""

    range: Range
    weight: float


@dataclass(frozen=True, slots=True)
class LevelRange:
    """A normalized-time range and the risk level it maps to."""

    range: Range
    level: int


@dataclass(frozen=True, slots=True)
class MinutesAtAttenuationFilter:
    """Drop a window when its minutes at an attenuation inside ``attenuation`` fall in ``drop_if_minutes``."""

    attenuation: Range
    drop_if_minutes: Range


@dataclass(frozen=True, slots=True)
class TrlEncoding:
    """CWA's TRL decoding: ``TRL = report-type offset + infectiousness offset`` (protocol.md §7.5)."""

    infectiousness_standard: int = 1
    infectiousness_high: int = 2
    report_type_recursive: int = 0
    report_type_self_report: int = 2
    report_type_confirmed_clinical_diagnosis: int = 4
    report_type_confirmed_test: int = 6


@dataclass(frozen=True, slots=True)
class CwaParameters:
    """A Corona-Warn-App v2 risk-calculation parameter set (protocol.md §7.5)."""

    name: str
    minutes_at_attenuation_filters: tuple[MinutesAtAttenuationFilter, ...]
    trl_filters: tuple[Range, ...]
    attenuation_weights: tuple[WeightedRange, ...]
    window_levels: tuple[LevelRange, ...]
    day_levels: tuple[LevelRange, ...]
    trl_values: Mapping[int, float]
    """Transmission risk value per TRL 1..8; a TRL not listed is worth 0."""
    trl_encoding: TrlEncoding = TrlEncoding()
    use_min_attenuation: bool = True
    """Final CWA code weights ``minAttenuationDb``; early versions used ``typicalAttenuationDb``."""
    max_encounter_age_days: int | None = None
    """Windows older than this many days are ignored (``maxEncounterAgeInDays``); None: no limit."""


_CWA_WEIGHTS: Final = (
    WeightedRange(Range(0, 63, max_exclusive=True), 0.8),
    WeightedRange(Range(63, 73, max_exclusive=True), 1.0),
    WeightedRange(Range(73, 79, max_exclusive=True), 0.1),
)

CWA_V2: Final = CwaParameters(
    name="cwa-v2-1.15",
    minutes_at_attenuation_filters=(),
    trl_filters=(),
    attenuation_weights=_CWA_WEIGHTS,
    window_levels=(
        LevelRange(Range(0, 9, max_exclusive=True), RISK_LOW),
        LevelRange(Range(9, 9999), RISK_HIGH),
    ),
    day_levels=(
        LevelRange(Range(5, 9, max_exclusive=True), RISK_LOW),
        LevelRange(Range(9, 99999), RISK_HIGH),
    ),
    trl_values={1: 0.0, 2: 0.0, 3: 0.6, 4: 0.8, 5: 1.0, 6: 1.2, 7: 1.4, 8: 1.6},
)
"""``risk-calculation-parameters-1.15.yaml``: the parameters of CWA apps >= 1.15, the default."""

CWA_V2_INITIAL: Final = CwaParameters(
    name="cwa-v2-initial",
    minutes_at_attenuation_filters=(
        MinutesAtAttenuationFilter(
            Range(0, 79, max_exclusive=True), Range(0, 5, max_exclusive=True)
        ),
    ),
    trl_filters=(Range(1, 2),),
    attenuation_weights=_CWA_WEIGHTS,
    window_levels=(
        LevelRange(Range(0, 13, max_exclusive=True), RISK_LOW),
        LevelRange(Range(13, 9999), RISK_HIGH),
    ),
    day_levels=(
        LevelRange(Range(0, 13, max_exclusive=True), RISK_LOW),
        LevelRange(Range(13, 99999), RISK_HIGH),
    ),
    trl_values={trl: 0.2 * trl for trl in range(1, 9)},
    max_encounter_age_days=10,
)
"""``risk-calculation-parameters.yaml`` (served as V1_RISK_PARAMETERS_FILE): TRL × 0.2."""


@dataclass(frozen=True, slots=True)
class DailySummariesConfig:
    """GAEN v2 DailySummariesConfig plus the DiagnosisKeysDataMapping weights (protocol.md §7.3)."""

    attenuation_thresholds: tuple[int, int, int]
    """Upper bounds (inclusive) of the immediate/near/medium buckets on typicalAttenuationDb."""
    bucket_weights: tuple[float, float, float, float]
    report_type_weights: Mapping[int, float]
    infectiousness_weights: Mapping[int, float]
    minimum_window_score: float = 0.0
    days_since_exposure_threshold: int = 0


GAEN_V2_DEFAULT: Final = DailySummariesConfig(
    attenuation_thresholds=(30, 50, 70),
    bucket_weights=(1.0, 1.0, 1.0, 1.0),
    report_type_weights={1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0},
    infectiousness_weights={1: 1.0, 2: 1.0},
)
"""All weights 1.0: daily values are seconds; the thresholds are the ones CWA passes to the OS."""

CWA_V2_DAILY_SUMMARIES: Final = GAEN_V2_DEFAULT
"""CWA's ``daily-summaries-config.yaml`` is the all-1.0 configuration above (protocol.md §7.5)."""


@dataclass(frozen=True, slots=True)
class GaenV1Config:
    """GAEN v1 ExposureConfiguration (protocol.md §7.2, §7.4); each score list has 8 entries."""

    attenuation_scores: tuple[int, ...]
    days_scores: tuple[int, ...]
    duration_scores: tuple[int, ...]
    transmission_scores: tuple[int, ...]
    minimum_risk_score: int
    duration_thresholds: tuple[int, int]
    """attenuationDurations thresholds X, Y (dB): minutes at attenuation <= X, in (X, Y], > Y."""
    duration_weights: tuple[float, float, float] = (1.0, 0.5, 0.0)
    bucket_cap_minutes: float = 30.0
    normalization_divisor: float = 50.0
    high_risk_from: float = 15.0


GAEN_V1_DEFAULT: Final = GaenV1Config(
    attenuation_scores=(4,) * 8,
    days_scores=(4,) * 8,
    duration_scores=(4,) * 8,
    transmission_scores=(4,) * 8,
    minimum_risk_score=4,
    duration_thresholds=(50, 74),
)
"""Google's ExposureConfigurationBuilder defaults: every score 4, minimumRiskScore 4, {50, 74} dB."""

CWA_V1: Final = GaenV1Config(
    attenuation_scores=(0, 2, 2, 2, 2, 2, 2, 2),
    days_scores=(5,) * 8,
    duration_scores=(0, 0, 0, 1, 1, 1, 1, 1),
    transmission_scores=(0, 0, 3, 4, 5, 6, 7, 8),
    minimum_risk_score=11,
    duration_thresholds=(55, 63),
)
"""cwa-server ``exposure-config.yaml`` and ``attenuation-duration.yaml`` of mid-2020."""

GAEN_BUCKETS: Final = (55.0, 63.0, 70.0)
"""GAEN-style immediate/near/medium attenuation thresholds for the engine's buckets (exposure.md §2)."""
CWA_BUCKETS: Final = (63.0, 73.0, 79.0)
"""CWA v2 weight boundaries used as the engine's default buckets (exposure.md §2)."""
CWA_BUCKET_WEIGHTS: Final = (0.8, 1.0, 0.1, 0.0)
"""CWA v2 minutes-at-attenuation weights per engine bucket; >= 79 dB is ignored."""


@dataclass(frozen=True, slots=True)
class ProximityCalibration:
    """A fitted path-loss calibration of the exposure engine for one (d, T) rule and regime.

    Learned on labelled contacts with the protocol of ``exposure.md`` §7 and shipped as data:
    the 1-m attenuation that estimates minutes within d best, the decision's own 1-m attenuation
    and expected-minutes threshold, and per-model attenuation offsets (dB, subtracted from each
    sighting's attenuation: receiver model like GAEN's RSSI correction, transmitter model like
    its TX table; unknown models get 0). Applied by ``contacts.calibrated_config``.
    """

    name: str
    regime: str
    distance_m: float
    minutes: float
    att_at_1m: float
    decision_att_at_1m: float
    decision_minutes: float
    sigma_db: float | None = None
    """Shadowing σ (dB) of the path-loss model it was fitted with; None = the engine default."""
    score_map: tuple[float, float] | None = None
    """(intercept, slope) of ``P(close contact) = σ(intercept + slope · margin)``, the margin
    being the decision's expected minutes less its threshold: a logistic (Platt) map fitted on
    the same data, so that a contact's ``score`` is a calibrated probability. None: the
    path-loss model's own probability."""
    rx_model_offsets: tuple[tuple[str, float], ...] = ()
    tx_model_offsets: tuple[tuple[str, float], ...] = ()
    attenuation_scale: str = ""
    """How the attenuations it was fitted on were computed (the scale its numbers live on)."""
    source: str = ""

    def offset(self, rx_model: str | None = None, tx_model: str | None = None) -> float:
        """Total attenuation offset (dB) of a receiver/transmitter model pair; 0 when unknown."""
        rx = dict(self.rx_model_offsets).get(rx_model or "", 0.0)
        tx = dict(self.tx_model_offsets).get(tx_model or "", 0.0)
        return rx + tx


DP3T_EXP05_2M_15MIN: Final = ProximityCalibration(
    name="dp3t-exp05-2m-15min",
    regime="dense",
    distance_m=2.0,
    minutes=15.0,
    att_at_1m=51.0,
    decision_att_at_1m=60.0,
    decision_minutes=12.5,
    sigma_db=5.8,
    score_map=(-1.7378, 0.1868),
    rx_model_offsets=(
        ("SM-A405FN", 1.68),
        ("SM-A515F", -3.25),
        ("SM-A908B", 3.21),
        ("SM-G970F", -1.4),
        ("SM-G973F", -1.53),
        ("SM-G981B/DS", -2.05),
    ),
    tx_model_offsets=(
        ("SM-A405FN", -2.84),
        ("SM-A515F", 0.23),
        ("SM-A908B", 1.56),
        ("SM-G970F", 5.3),
        ("SM-G973F", 6.02),
        ("SM-G981B/DS", 3.44),
    ),
    attenuation_scale="DP-3T bt-measurements exp05 (dense, 5 scenarios), attenuation = "
    "tx_power column (-20/-21 dBm advertiser power) - rssi",
    source="bench/accuracy --fit-presets (2026-11-30): all scenarios, offset mode rx_tx_model "
    "and sigma by inner leave-one-scenario-out residual, 1-m attenuation on a 0.5-dB grid, score by a Platt map of the margin",
)
"""Dense (continuous-scan) calibration fitted on every DP-3T exp05 scenario; its held-out
(leave-one-scenario-out) accuracy is what ``make accuracy`` reports. On the DP-3T app's
ultra-low TX scale, not GAEN's: do not apply it to GAEN attenuations as is."""

DP3T_EXP34_2M_15MIN: Final = ProximityCalibration(
    name="dp3t-exp34-2m-15min",
    regime="sparse",
    distance_m=2.0,
    minutes=15.0,
    att_at_1m=45.0,
    decision_att_at_1m=62.5,
    decision_minutes=18.0,
    sigma_db=5.8,
    score_map=(-2.1404, 0.2672),
    rx_model_offsets=(
        ("SM-A405FN", 2.75),
        ("SM-A515F", -0.19),
        ("SM-A908B", 6.39),
        ("SM-G970F", -0.51),
        ("SM-G973F", -1.5),
        ("SM-G981B/DS", 0.09),
    ),
    tx_model_offsets=(
        ("SM-A405FN", -2.75),
        ("SM-A515F", 0.32),
        ("SM-A908B", -0.26),
        ("SM-G970F", 1.7),
        ("SM-G973F", 1.35),
        ("SM-G981B/DS", 1.82),
    ),
    attenuation_scale="DP-3T bt-measurements exp34 (real GAEN, 6 scenarios), attenuation = "
    "-24 - (rssi + 5) (Google's Samsung entry)",
    source="bench/accuracy --fit-presets (2026-11-30): all scenarios, offset mode rx_tx_model "
    "and sigma by inner leave-one-scenario-out residual, score by a Platt map of the margin",
)
"""Duty-cycled (GAEN) calibration fitted on every DP-3T exp34 scenario, on GAEN's scale. The
offsets cover only these six Samsung models (unknown models get 0)."""

PROXIMITY_CALIBRATIONS: Final = {c.name: c for c in (DP3T_EXP05_2M_15MIN, DP3T_EXP34_2M_15MIN)}


def cwa_parameters_from_mapping(data: Mapping[str, object], name: str = "custom") -> CwaParameters:
    """Read a CWA ``RiskCalculationParameters`` JSON mapping; InvalidInput when a field is malformed."""
    try:
        encoding = cast("Mapping[str, int]", data.get("trlEncoding", {}))
        return CwaParameters(
            name=name,
            minutes_at_attenuation_filters=tuple(
                MinutesAtAttenuationFilter(
                    _range(f["attenuationRange"]), _range(f["dropIfMinutesInRange"])
                )
                for f in _items(data, "minutesAtAttenuationFilters")
            ),
            trl_filters=tuple(_range(f["dropIfTrlInRange"]) for f in _items(data, "trlFilters")),
            attenuation_weights=tuple(
                WeightedRange(_range(w["attenuationRange"]), float(w["weight"]))
                for w in _items(data, "minutesAtAttenuationWeights")
            ),
            window_levels=tuple(
                LevelRange(_range(m["normalizedTimeRange"]), int(m["riskLevel"]))
                for m in _items(data, "normalizedTimePerEWToRiskLevelMapping")
            ),
            day_levels=tuple(
                LevelRange(_range(m["normalizedTimeRange"]), int(m["riskLevel"]))
                for m in _items(data, "normalizedTimePerDayToRiskLevelMapping")
            ),
            trl_values={
                int(m["transmissionRiskLevel"]): float(m["transmissionRiskValue"])
                for m in _items(data, "transmissionRiskValueMapping")
            },
            trl_encoding=TrlEncoding(
                infectiousness_standard=int(encoding.get("infectiousnessOffsetStandard", 0)),
                infectiousness_high=int(encoding.get("infectiousnessOffsetHigh", 0)),
                report_type_recursive=int(encoding.get("reportTypeOffsetRecursive", 0)),
                report_type_self_report=int(encoding.get("reportTypeOffsetSelfReport", 0)),
                report_type_confirmed_clinical_diagnosis=int(
                    encoding.get("reportTypeOffsetConfirmedClinicalDiagnosis", 0)
                ),
                report_type_confirmed_test=int(encoding.get("reportTypeOffsetConfirmedTest", 0)),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed CWA risk parameters: {exc!r}") from exc


def _items(data: Mapping[str, object], key: str) -> Sequence[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"{key} is not a list")
    return cast("Sequence[Mapping[str, Any]]", value)


def _range(value: object) -> Range:
    if not isinstance(value, Mapping):
        raise TypeError("a range is not an object")
    return Range(
        min=float(value.get("min", 0.0)),
        max=float(value.get("max", 0.0)),
        min_exclusive=bool(value.get("minExclusive", False)),
        max_exclusive=bool(value.get("maxExclusive", False)),
    )
