"""Contact episodes from per-transmitter sightings: attenuation, durations, distance, TC4TL decision.

Pure numpy (``house-style.md`` §7 rule 10): arrays and a frozen :class:`EngineConfig` in, a
frozen :class:`Contact` out; no I/O and no clock. Method (``exposure.md`` §2-§4):

1. attenuation ``= tx_ref − (rssi + rx_correction)`` per sighting (§3), ``tx_ref`` the decrypted
   TX power when known, else the configured fleet reference (and ``uncalibrated_tx``);
2. sightings fold into *observation units*: fixed slices (dense scanning: every advert) or
   scan instances weighted by the time since the previous scan, capped as GAEN does (sparse);
3. each unit's level is its minimum attenuation (fading and bodies only ever remove power),
   smoothed by a running median over 30 min: positions and a pair's carriage offset persist
   far longer than fast fading (the window that scored best on DP-3T exp05);
4. a log-distance path-loss model with log-normal shadowing and a log-uniform distance prior
   gives ``P(distance ≤ d | level)`` per unit; expected minutes within d are the
   weighted sum, with an interval from the per-unit variances and an offset the whole
   contact shares (``PathLossModel.persistent_share``);
5. the TC4TL decision compares the expected minutes with T, or with a threshold tuned together
   with a separate decision calibration (``decision_minutes``, ``decision_model``);
6. the score, P(close contact), is a logistic map of the decision's margin fitted with the
   calibration (``score_map``), else the path-loss model's own P(minutes ≥ T) with the
   contact's persistent offset integrated out.

Fitted calibrations ship as data (:class:`~bluezoned.exposure.presets.ProximityCalibration`:
1-m attenuations, decision threshold, shadowing, per-receiver-model and per-transmitter-model
attenuation offsets, the score map, with their provenance); :func:`calibrated_config` applies
one to a config. ``docs/exposure-engine.md`` explains the outputs and their measured accuracy.

Optionally (``EngineConfig.classifier``) step 4 at the classifier's distance is a small logistic
model on per-unit features (:func:`unit_features`: smoothed level, smoothed median attenuation,
detection counts, the contact's median level and length) fitted on labelled data; its
coefficients ship as data in :mod:`bluezoned.exposure.presets` with their provenance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from bluezoned.const import (
    EXPOSURE_WINDOW_SECONDS,
    FLEET_TX_REFERENCE_DB,
    MAX_UNIX_SECONDS,
    RSSI_MAX,
    RSSI_MIN,
    SECONDS_PER_DAY,
)
from bluezoned.errors import InvalidInput
from bluezoned.exposure.matcher import window_sightings
from bluezoned.exposure.presets import (
    CWA_BUCKET_WEIGHTS,
    CWA_BUCKETS,
    INFECTIOUSNESS_STANDARD,
    ProximityCalibration,
)
from bluezoned.exposure.risk import (
    DEFAULT_SECONDS_SINCE_LAST_SCAN,
    MAX_SECONDS_SINCE_LAST_SCAN,
    ExposureWindow,
)
from bluezoned.models import ReportType

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Regime = Literal["auto", "dense", "sparse"]

DISTANCE_BANDS_M: Final = (1.0, 2.0, 3.0)
"""Band edges of ``distance_band``: < 1 m, 1-2 m, 2-3 m, > 3 m (exposure.md §2)."""
BAND_NAMES: Final = ("<1m", "1-2m", "2-3m", ">3m")
REPORTED_DISTANCES_M: Final = (1.0, 1.5, 2.0, 3.0)
"""Distances of ``minutes_within`` (exposure.md §2)."""
INTERVAL_Z: Final = 1.2815515655446004
"""Standard normal quantile 0.9: the two-sided 80 % interval of minutes within d."""
SCAN_MERGE_GAP_S: Final = 20.0
"""Sightings closer than this belong to one scan: GAEN scans last 4 s (+13 s with audio) and
the DP-3T app 20 s (protocol.md §4.4), while scans are at least 60 s apart."""
SPARSE_SCAN_PERIOD_S: Final = 150.0
"""Auto regime: scans recurring more slowly than this (median) are a duty-cycled phone's."""
MAX_DUTY_CYCLED_SCAN_S: Final = 20.0
"""Auto regime: a duty-cycled phone's scans are brief (GAEN 4 s, +13 s with audio; DP-3T
20 s). A continuous scanner that lost a beacon for a while also shows few, far-apart runs of
sightings, but each run lasts as long as the beacon was heard: counting such a run as one
scan undercounted a 30-minute contact with a 5-minute gap as 7 minutes."""
RELAY_JUMP_DB: Final = 40.0
"""An attenuation change larger than this within RELAY_JUMP_S is implausible for one radio link
(multipath dips reach about 20 dB, exposure.md §4.2): a possible relay."""
RELAY_JUMP_S: Final = 2.0
RUNNING_MEDIAN_CHUNK: Final = 1 << 20
"""Elements of the padded window matrix per step of :func:`running_median` (8 MiB)."""


@dataclass(frozen=True, slots=True)
class PathLossModel:
    """``attenuation = att_at_1m + 10·n·log10(d) + N(0, σ²)`` with a log-uniform prior on d."""

    att_at_1m: float = 50.0
    """Minimum attenuation at 1 m on GAEN's calibrated scale: RSSI at 1 m about −80 dBm
    (DP-3T, exposure.md §4.3) under the Samsung calibration ``−24 − (rssi + 5)``, less ~4 dB
    for taking the strongest packet; the bench recalibrates it per fold."""
    exponent: float = 2.0
    """Path-loss exponent; with the wide σ below it fitted DP-3T exp05 better than the
    sample-level 1.2 (exposure.md §4.2 gives 0.5-2.5)."""
    sigma_db: float = 10.0
    """Shadowing plus the between-pair offset spread (≈ 10 dB between settings and devices,
    exposure.md §4.2): a contact-level level carries both."""
    persistent_share: float = 0.66
    """The share of ``sigma_db`` (τ = share · σ, the rest per unit: σ² = τ² + σ_unit²) that every
    unit of one contact has in common (device pair, carriage, setting), so that it does not
    average out over a long contact. 0.66: 6.6 of the default 10 dB, √(10² − 7.5²) from
    exposure.md §4.2 (≈ 10 dB between settings, 7.5 dB per sample about the fit). The
    intervals of ``minutes_within`` and the uncalibrated ``score`` use it."""
    prior_min_m: float = 0.3
    prior_max_m: float = 8.0
    """A BLE contact is seen from arm's length to across a room; beyond 8 m it is rarely heard."""


UNIT_FEATURES: Final = (
    "level",
    "median_level",
    "unit_min_att",
    "log_count",
    "log_count_smoothed",
    "contact_level",
    "log_observed_minutes",
)
"""Columns of :func:`unit_features`; attenuations in dB, counts are sightings per unit."""


@dataclass(frozen=True, slots=True)
class UnitClassifier:
    """Logistic ``P(distance ≤ distance_m)`` of one unit from :data:`UNIT_FEATURES` (raw scale)."""

    distance_m: float
    intercept: float
    coef: tuple[float, ...]
    """One coefficient per :data:`UNIT_FEATURES` column (0 for an unused feature)."""
    source: str = ""
    """Where the coefficients came from (data set, protocol, date)."""

    def __post_init__(self) -> None:
        if len(self.coef) != len(UNIT_FEATURES):
            raise InvalidInput(f"a unit classifier needs {len(UNIT_FEATURES)} coefficients")

    def probability(self, features: FloatArray) -> FloatArray:
        """P(close) per row of ``features``."""
        return _logistic(self.intercept + features @ np.asarray(self.coef, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Every knob of the engine; the defaults are CWA-compatible buckets and the 2 m / 15 min rule."""

    distance_m: float = 2.0
    minutes: float = 15.0
    default_tx_power: float = FLEET_TX_REFERENCE_DB
    rx_correction: float = 0.0
    """The receiver's own RSSI correction (protocol.md §8): 0 until measured."""
    bucket_thresholds: tuple[float, float, float] = CWA_BUCKETS
    bucket_weights: tuple[float, float, float, float] = CWA_BUCKET_WEIGHTS
    bucket_on_min: bool = True
    """Bucket each unit by its minimum attenuation, as CWA's final code does (protocol.md §7.5)."""
    regime: Regime = "auto"
    slice_s: float = 60.0
    """Dense regime: a minute, the resolution of GAEN/CWA durations."""
    scan_merge_gap_s: float = SCAN_MERGE_GAP_S
    level_quantile: float = 0.0
    """Per-unit attenuation level: this quantile of the unit's attenuations. 0 (the minimum,
    i.e. the strongest packet) because fading and bodies only ever remove power."""
    smoothing_s: float = 1800.0
    """Width of the running median of unit levels over time (0 = none). People hold their
    relative positions for minutes, while a pair's offset (carriage, orientation) stays for the
    whole contact: on DP-3T exp05 a 30-min window beat 1-9 min ones (bench/accuracy)."""
    model: PathLossModel = field(default_factory=PathLossModel)
    decision_minutes: float | None = None
    """Expected minutes within d at which TC4TL fires; None means ``minutes``."""
    decision_model: PathLossModel | None = None
    """Operating point of the decision when tuned apart from the duration model (a calibration
    that estimates minutes best is not the one that separates ≥ T from < T best); None = model."""
    classifier: UnitClassifier | None = None
    """When set, minutes within ``classifier.distance_m`` (and the decision, when that is
    ``distance_m``) come from this per-unit model instead of the path-loss model."""
    score_map: tuple[float, float] | None = None
    """(intercept, slope): ``score = σ(intercept + slope · (decision minutes − threshold))``, a
    calibration's fitted probability of a close contact; None = the model's own probability."""


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact episode of one transmitter (exposure.md §2); attenuations in dB, times in s."""

    start: float
    end: float
    observed_duration_s: float
    n_sightings: int
    n_scans: int
    coverage: float
    max_gap_s: float
    regime: Literal["dense", "sparse"]
    min_att: float
    p10_att: float
    typical_att: float
    mean_att: float
    p90_att: float
    att_sd: float
    bucket_seconds: tuple[float, float, float, float]
    weighted_minutes: float
    observed_minutes: float
    minutes_within: Mapping[float, tuple[float, float, float]]
    """distance (m) → (expected minutes, 80 % low, 80 % high)."""
    minutes_close: float
    decision_minutes: float
    """Expected minutes within d under the decision calibration: what ``tc4tl`` compares with
    ``decision_threshold``. Equals ``minutes_close`` unless a calibration tunes the decision
    apart from the duration estimate (``EngineConfig.decision_model``)."""
    decision_threshold: float
    distance_band: str
    """The band holding the contact's median distance (time-weighted): the first of <1m, 1-2m,
    2-3m, >3m whose cumulative probability reaches 0.5. Not the most probable band: the open
    >3m band is wider than the others and would win whenever the estimate is vague."""
    band_probabilities: tuple[float, float, float, float]
    """Share of the contact's time expected in each band (sums to 1)."""
    tc4tl: bool
    score: float
    """P(close contact): with a calibration's ``score_map`` a probability fitted on its data;
    else P(minutes within d ≥ the decision threshold) under the path-loss model, with the
    contact's persistent offset (``PathLossModel.persistent_share``) integrated out (``make
    accuracy`` reports the Brier score of both). Either can sit below 0.5 for a contact decided
    close: a fitted decision is tuned for equal miss and false-alarm rates, not for accuracy;
    and over a long contact at a distant level the expected minutes come from the offset's
    tail, so at the boundary of 15 expected minutes the model's own score is 0.61, 0.26 and
    0.07 for contacts of 20, 60 and 240 minutes."""
    confidence: float
    """Heuristic in [0, 1]: decisiveness ``|2·score − 1|``, × 0.6 when any TX power was unknown,
    × (0.5 + 0.5·coverage); not a calibrated probability."""
    uncalibrated_tx: bool
    sparse_scans: bool
    possible_relay: bool


@dataclass(frozen=True, slots=True)
class Units:
    """Observation units of one contact: time, weight (s), level, min and mean attenuation."""

    t: FloatArray
    weight_s: FloatArray
    level: FloatArray
    min_att: FloatArray
    mean_att: FloatArray
    n_scans: int
    regime: Literal["dense", "sparse"]
    median_att: FloatArray = field(default_factory=lambda: np.zeros(0))
    count: FloatArray = field(default_factory=lambda: np.zeros(0))
    """Sightings per unit (detection rate: packet loss grows with distance and bodies)."""
    smoothing_s: float = 0.0


def calibrated_config(
    calibration: ProximityCalibration,
    base: EngineConfig = EngineConfig(),
    *,
    rx_model: str | None = None,
    tx_model: str | None = None,
) -> EngineConfig:
    """``base`` with a fitted calibration applied for one receiver/transmitter model pair.

    The model offsets fold into ``rx_correction`` (``tx − (rssi + c + o)`` = attenuation − o),
    so the same config serves every sighting of the contact.
    """
    if calibration.regime not in ("dense", "sparse"):
        raise InvalidInput(
            f"calibration {calibration.name!r}: unknown regime {calibration.regime!r}"
        )
    sigma = base.model.sigma_db if calibration.sigma_db is None else calibration.sigma_db
    return replace(
        base,
        distance_m=calibration.distance_m,
        minutes=calibration.minutes,
        regime="dense" if calibration.regime == "dense" else "sparse",
        rx_correction=base.rx_correction + calibration.offset(rx_model, tx_model),
        model=replace(base.model, att_at_1m=calibration.att_at_1m, sigma_db=sigma),
        decision_model=replace(
            base.model, att_at_1m=calibration.decision_att_at_1m, sigma_db=sigma
        ),
        decision_minutes=calibration.decision_minutes,
        classifier=None,
        score_map=calibration.score_map,
    )


def attenuation(
    rssi: FloatArray, tx_power: FloatArray | None, *, default_tx: float, rx_correction: float
) -> tuple[FloatArray, bool]:
    """``tx − (rssi + correction)`` floored at 0 (protocol.md §7.1); also whether any TX was unknown."""
    rssi = np.clip(np.asarray(rssi, dtype=np.float64), RSSI_MIN, RSSI_MAX)
    if tx_power is None:
        tx = np.full(rssi.shape, default_tx)
        unknown = True
    else:
        tx = np.asarray(tx_power, dtype=np.float64)
        missing = np.isnan(tx)
        unknown = bool(missing.any())
        tx = np.where(missing, default_tx, tx)
    return np.maximum(tx - (rssi + rx_correction), 0.0), unknown


def scan_ids(t: FloatArray, merge_gap_s: float = SCAN_MERGE_GAP_S) -> IntArray:
    """Scan index of each sighting of a time-sorted array: a new scan after a gap > ``merge_gap_s``."""
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(np.diff(t) > merge_gap_s))).astype(np.int64)


def gaen_scan_weights(scan_start: FloatArray) -> FloatArray:
    """GAEN's secondsSinceLastScan per scan: time since the previous scan, ≤ 300 s, 120 s for the first."""
    weights = np.empty(scan_start.shape, dtype=np.float64)
    if scan_start.size:
        weights[0] = DEFAULT_SECONDS_SINCE_LAST_SCAN
        weights[1:] = np.minimum(np.diff(scan_start), MAX_SECONDS_SINCE_LAST_SCAN)
    return weights


def observation_units(
    t: FloatArray,
    att: FloatArray,
    config: EngineConfig,
    scan_seconds: FloatArray | None = None,
) -> Units:
    """Fold time-sorted sightings into weighted units (slices when dense, scans when sparse)."""
    sid = scan_ids(t, config.scan_merge_gap_s)
    n_scans = int(sid[-1]) + 1 if sid.size else 0
    new_scan = np.diff(sid) > 0
    first = np.flatnonzero(np.r_[True, new_scan]) if sid.size else np.zeros(0, dtype=np.int64)
    starts = t[first]
    regime: Literal["dense", "sparse"]
    if config.regime == "auto":
        regime = (
            "sparse" if scan_seconds is not None or _duty_cycled(t, new_scan, starts) else "dense"
        )
    else:
        regime = config.regime
    if regime == "sparse":
        group = sid
        if scan_seconds is not None:
            weights = np.asarray(scan_seconds, dtype=np.float64)[first]
        else:
            weights = gaen_scan_weights(starts)
        unit_t = starts
    else:
        slot = np.floor(t / config.slice_s).astype(np.int64)
        uniq, group = np.unique(slot, return_inverse=True)
        group = group.astype(np.int64)
        weights = np.full(uniq.shape, config.slice_s)
        unit_t = uniq.astype(np.float64) * config.slice_s
    level, amin, amean = _group_stats(group, att, config.level_quantile, unit_t.size)
    amed, _, _ = _group_stats(group, att, 0.5, unit_t.size)
    count = np.bincount(group, minlength=unit_t.size).astype(np.float64)
    level = running_median(unit_t, level, config.smoothing_s)
    return Units(
        unit_t, weights, level, amin, amean, n_scans, regime, amed, count, config.smoothing_s
    )


def _duty_cycled(t: FloatArray, new_scan: BoolArray, starts: FloatArray) -> bool:
    """Whether the sightings look like a duty-cycled scanner's: brief scans, far apart.

    ``new_scan[i]`` says sighting ``i + 1`` begins a scan; ``starts`` are the scans' first times.
    """
    if starts.size < 2 or np.median(np.diff(starts)) <= SPARSE_SCAN_PERIOD_S:
        return False
    ends = t[np.flatnonzero(np.r_[new_scan, True])]
    return bool(np.median(ends - starts) <= MAX_DUTY_CYCLED_SCAN_S)


def unit_features(units: Units) -> FloatArray:
    """The :data:`UNIT_FEATURES` matrix of a contact's units (one row per unit)."""
    n = units.t.size
    log_count = np.log(np.maximum(units.count, 1.0))
    median_level = running_median(units.t, units.median_att, units.smoothing_s)
    smoothed_count = running_median(units.t, log_count, units.smoothing_s)
    contact_level = float(np.median(units.min_att)) if n else 0.0
    observed = math.log(max(float(units.weight_s.sum()) / 60.0, 1e-3))
    return np.column_stack(
        (
            units.level,
            median_level,
            units.min_att,
            log_count,
            smoothed_count,
            np.full(n, contact_level),
            np.full(n, observed),
        )
    ).astype(np.float64)


def analyze_contact(
    t: FloatArray,
    rssi: FloatArray,
    tx_power: FloatArray | None = None,
    *,
    config: EngineConfig = EngineConfig(),
    scan_seconds: FloatArray | None = None,
) -> Contact:
    """Summarise one transmitter's sightings; ``scan_seconds`` is each sighting's scan weight if known."""
    t = np.asarray(t, dtype=np.float64)
    if t.size == 0:
        raise InvalidInput("a contact needs at least one sighting")
    if t.shape != np.shape(rssi) or (tx_power is not None and np.shape(tx_power) != t.shape):
        raise InvalidInput("t, rssi and tx_power must have the same length")
    if not np.isfinite(t).all() or not np.isfinite(rssi).all():
        raise InvalidInput("times and RSSI must be finite")
    if float(np.abs(t).max()) > MAX_UNIX_SECONDS:
        raise InvalidInput("times must be unix seconds no later than the year 9999")
    order = np.argsort(t, kind="stable")
    t = t[order]
    rssi = np.asarray(rssi, dtype=np.float64)[order]
    tx = None if tx_power is None else np.asarray(tx_power, dtype=np.float64)[order]
    ss = None if scan_seconds is None else np.asarray(scan_seconds, dtype=np.float64)[order]
    att, unknown_tx = attenuation(
        rssi, tx, default_tx=config.default_tx_power, rx_correction=config.rx_correction
    )
    units = observation_units(t, att, config, ss)
    return _summarise(t, att, units, unknown_tx, config)


def analyze_contacts(
    ids: npt.ArrayLike,
    t: FloatArray,
    rssi: FloatArray,
    tx_power: FloatArray | None = None,
    *,
    config: EngineConfig = EngineConfig(),
    labels: Sequence[str] | None = None,
) -> dict[str, Contact]:
    """One :class:`Contact` per distinct id, in sorted id order.

    ``ids`` are the rows' ids (compared as strings) or, with ``labels``, integer codes into the
    distinct ``labels``: the compact form of :class:`~bluezoned.exposure.rssi_csv.RssiTable`,
    which never builds one string per row.
    """
    if labels is None:
        keys = np.asarray(ids).astype(str)
        uniq, inverse = np.unique(keys, return_inverse=True)
        names = [str(k) for k in uniq]
    else:
        codes = np.asarray(ids)
        if not np.issubdtype(codes.dtype, np.integer):
            raise InvalidInput("with labels, ids must be integer codes")
        if len(set(labels)) != len(labels):
            raise InvalidInput("labels must be distinct")
        if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= len(labels)):
            raise InvalidInput(f"an id code is outside 0..{len(labels) - 1}")
        used = sorted(np.unique(codes).tolist(), key=lambda c: labels[c])
        rank = np.zeros(len(labels), dtype=np.int64)
        rank[used] = np.arange(len(used))
        inverse = rank[codes]
        names = [labels[c] for c in used]
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
    out: dict[str, Contact] = {}
    for k, name in enumerate(names):
        sel = order[bounds[k] : bounds[k + 1]]
        out[name] = analyze_contact(
            t[sel], rssi[sel], None if tx_power is None else tx_power[sel], config=config
        )
    return out


def p_within(level: FloatArray, distance_m: float, model: PathLossModel) -> FloatArray:
    """``P(distance ≤ distance_m | attenuation level)`` under the path-loss model and prior."""
    return p_within_many(level, (distance_m,), model)[distance_m]


def p_within_many(
    level: FloatArray, distances_m: Sequence[float], model: PathLossModel
) -> dict[float, FloatArray]:
    """:func:`p_within` at several distances, sharing the prior's normalisation."""
    k = 10.0 * model.exponent
    u0, u1 = math.log10(model.prior_min_m), math.log10(model.prior_max_m)
    base = level - model.att_at_1m
    z0 = _norm_cdf((base - k * u0) / model.sigma_db)
    z1 = _norm_cdf((base - k * u1) / model.sigma_db)
    denom = np.maximum(z0 - z1, 1e-300)
    out: dict[float, FloatArray] = {}
    for d in distances_m:
        ud = min(max(math.log10(d), u0), u1)
        zd = _norm_cdf((base - k * ud) / model.sigma_db)
        out[d] = np.asarray(np.clip((z0 - zd) / denom, 0.0, 1.0), dtype=np.float64)
    return out


def exposure_windows(
    t: FloatArray,
    rssi: FloatArray,
    tx_power: FloatArray | None = None,
    *,
    config: EngineConfig = EngineConfig(),
    report_type: int = int(ReportType.CONFIRMED_TEST),
    infectiousness: int = INFECTIOUSNESS_STANDARD,
    calibration_confidence: int = 0,
    window_s: float = EXPOSURE_WINDOW_SECONDS,
    scan_seconds: FloatArray | None = None,
) -> tuple[ExposureWindow, ...]:
    """The GAEN v2 view: the contact's scan instances (rounded mean and min attenuation) grouped
    into UTC-aligned windows of ``window_s`` (a divisor of a day, so no window spans two days)."""
    if window_s <= 0 or SECONDS_PER_DAY % window_s:
        raise InvalidInput(f"window width must divide a day, got {window_s} s")
    t = np.asarray(t, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t = t[order]
    tx = None if tx_power is None else np.asarray(tx_power, dtype=np.float64)[order]
    att, _ = attenuation(
        np.asarray(rssi, dtype=np.float64)[order],
        tx,
        default_tx=config.default_tx_power,
        rx_correction=config.rx_correction,
    )
    ss = None if scan_seconds is None else np.asarray(scan_seconds, dtype=np.float64)[order]
    units = observation_units(t, att, replace(config, smoothing_s=0.0), ss)
    grouped = window_sightings(
        units.t, np.zeros(units.t.size, dtype=np.int64), window_seconds=window_s
    )
    windows: list[ExposureWindow] = []
    for w in range(len(grouped)):
        sel = grouped.order[grouped.offsets[w] : grouped.offsets[w + 1]]
        windows.append(
            ExposureWindow(
                day=int(grouped.start[w] // SECONDS_PER_DAY),
                min_attenuation=np.round(units.min_att[sel]),
                typical_attenuation=np.round(units.mean_att[sel]),
                seconds_since_last_scan=units.weight_s[sel],
                report_type=report_type,
                infectiousness=infectiousness,
                calibration_confidence=calibration_confidence,
            )
        )
    return tuple(windows)


def _summarise(
    t: FloatArray, att: FloatArray, units: Units, unknown_tx: bool, config: EngineConfig
) -> Contact:
    w = units.weight_s
    observed_s = float(w.sum())
    span = float(t[-1] - t[0])
    if units.regime == "dense":
        total = max(span // config.slice_s + 1.0, float(units.t.size))
        coverage = float(units.t.size) / total
    else:
        coverage = min(1.0, observed_s / max(span + float(w[0]), 1.0))
    gaps = np.diff(t)
    q = np.quantile(att, [0.1, 0.5, 0.9])
    bucket_att = units.min_att if config.bucket_on_min else units.mean_att
    bucket = np.searchsorted(np.asarray(config.bucket_thresholds), bucket_att, side="right")
    seconds = tuple(float(w[bucket == b].sum()) for b in range(4))
    weighted = sum(s * wt for s, wt in zip(seconds, config.bucket_weights, strict=True)) / 60.0
    reported = sorted({*REPORTED_DISTANCES_M, config.distance_m})
    p_model = p_within_many(units.level, sorted({*reported, *DISTANCE_BANDS_M}), config.model)
    clf = config.classifier

    def p_at(d: float) -> FloatArray:
        if clf is not None and math.isclose(clf.distance_m, d):
            return clf.probability(unit_features(units))
        return p_model[d]

    moments = _offset_moments(units, reported, config.model)
    within = {
        d: _expected_minutes(units, p_at(d))
        if clf is not None and math.isclose(clf.distance_m, d)
        else _interval(units, float((w * p_model[d]).sum()) / 60.0, moments[d].sd)
        for d in reported
    }
    cum = [float((w * p_model[d]).sum()) / max(observed_s, 1e-9) for d in DISTANCE_BANDS_M]
    probs = (cum[0], cum[1] - cum[0], cum[2] - cum[1], 1.0 - cum[2])
    band = BAND_NAMES[median_band(probs)]
    expected, _, _ = within[config.distance_m]
    threshold = config.minutes if config.decision_minutes is None else config.decision_minutes
    decision_model = config.model if config.decision_model is None else config.decision_model
    if config.decision_model is None:
        p_decide = p_at(config.distance_m)
    else:
        p_decide = p_within(units.level, config.distance_m, decision_model)
    decided, _, _ = _expected_minutes(units, p_decide)
    if config.score_map is not None:
        intercept, slope = config.score_map
        score = float(_logistic(np.asarray(intercept + slope * (decided - threshold))))
    elif clf is not None and config.decision_model is None:
        # A learned unit classifier has no level offset to integrate over.
        decided_sd = _minutes_sd(units, p_decide)
        score = float(_norm_cdf(np.asarray((decided - threshold) / max(decided_sd, 0.5))))
    else:
        if config.decision_model is not None:
            moments = _offset_moments(units, (config.distance_m,), decision_model)
        score = moments[config.distance_m].p_at_least(threshold)
    tc4tl = decided >= threshold
    relay = bool(
        np.any((np.abs(np.diff(att)) > RELAY_JUMP_DB) & (gaps < RELAY_JUMP_S))
        if gaps.size
        else False
    )
    confidence = abs(2.0 * score - 1.0) * (0.6 if unknown_tx else 1.0) * (0.5 + 0.5 * coverage)
    return Contact(
        start=float(t[0]),
        end=float(t[-1]),
        observed_duration_s=span,
        n_sightings=int(t.size),
        n_scans=units.n_scans,
        coverage=coverage,
        max_gap_s=float(gaps.max()) if gaps.size else 0.0,
        regime=units.regime,
        min_att=float(att.min()),
        p10_att=float(q[0]),
        typical_att=float(q[1]),
        mean_att=float(att.mean()),
        p90_att=float(q[2]),
        att_sd=float(att.std()),
        bucket_seconds=(seconds[0], seconds[1], seconds[2], seconds[3]),
        weighted_minutes=weighted,
        observed_minutes=observed_s / 60.0,
        minutes_within=within,
        minutes_close=expected,
        decision_minutes=decided,
        decision_threshold=threshold,
        distance_band=band,
        band_probabilities=probs,
        tc4tl=bool(tc4tl),
        score=score,
        confidence=float(min(max(confidence, 0.0), 1.0)),
        uncalibrated_tx=unknown_tx,
        sparse_scans=units.regime == "sparse",
        possible_relay=relay,
    )


def median_band(probabilities: Sequence[float]) -> int:
    """Index of the band where the cumulative ``probabilities`` (ordered near to far) reach 0.5."""
    cumulative = np.cumsum(np.asarray(probabilities, dtype=np.float64))
    return min(int(np.searchsorted(cumulative, 0.5 - 1e-12)), len(cumulative) - 1)


def _expected_minutes(units: Units, p: FloatArray) -> tuple[float, float, float]:
    """(mean, 80 % low, 80 % high) minutes with independent units (a learned classifier's)."""
    return _interval(units, float((units.weight_s * p).sum()) / 60.0, _minutes_sd(units, p))


OFFSET_NODES: Final = np.linspace(-4.0, 4.0, 17)
OFFSET_WEIGHTS: Final = np.exp(-(OFFSET_NODES**2) / 2.0) / np.exp(-(OFFSET_NODES**2) / 2.0).sum()
"""Uniform-grid rule over the standard normal for the contact's shared offset. A long
contact's integrand is nearly a step, where Gauss-Hermite converges slowly: on the DP-3T
pairs these 17 nodes stay within 0.0002 of a 61-node Gauss-Hermite rule, 21 Gauss-Hermite
nodes within 0.0026."""
MIN_UNIT_SIGMA_DB: Final = 1.0


@dataclass(frozen=True, slots=True)
class _OffsetMoments:
    """Minutes within one distance given each quadrature node of the contact's shared offset:
    their mean and their per-unit variance (normal approximation of a sum of independent units)."""

    mean: FloatArray
    variance: FloatArray

    @property
    def sd(self) -> float:
        """SD of the minutes with the offset integrated out (law of total variance)."""
        between = OFFSET_WEIGHTS @ (self.mean - OFFSET_WEIGHTS @ self.mean) ** 2
        return math.sqrt(float(OFFSET_WEIGHTS @ self.variance + between))

    def p_at_least(self, threshold: float) -> float:
        """P(minutes ≥ ``threshold``) with the offset integrated out."""
        z = (self.mean - threshold) / np.maximum(np.sqrt(self.variance), 0.5)
        return float(OFFSET_WEIGHTS @ _norm_cdf(z))


def _offset_moments(
    units: Units, distances_m: Sequence[float], model: PathLossModel
) -> dict[float, _OffsetMoments]:
    """Moments of the minutes within each distance at each node of the shared offset.

    The level's error splits into a per-unit part, independent from unit to unit, and a
    persistent offset shared by the whole contact (``model.persistent_share``). Treating all
    of it as independent made long contacts near certain either way: on DP-3T exp05 contacts
    scored 0.95 were close 80 % of the time, and 80 % intervals held the truth for 37 %.
    """
    share = min(max(model.persistent_share, 0.0), 1.0)
    tau = share * model.sigma_db
    unit_sigma = max(model.sigma_db * math.sqrt(1.0 - share**2), MIN_UNIT_SIGMA_DB)
    unit_model = replace(model, sigma_db=unit_sigma)
    # Units at the same level contribute alike: sum their minutes first (levels repeat a lot).
    levels, inverse = np.unique(units.level, return_inverse=True)
    minutes = np.bincount(inverse, weights=units.weight_s / 60.0, minlength=levels.size)
    squares = np.bincount(inverse, weights=(units.weight_s / 60.0) ** 2, minlength=levels.size)
    shifted = (levels[None, :] + tau * OFFSET_NODES[:, None]).ravel()
    out: dict[float, _OffsetMoments] = {}
    for d, p in p_within_many(shifted, distances_m, unit_model).items():
        p = p.reshape(OFFSET_NODES.size, levels.size)
        out[d] = _OffsetMoments(p @ minutes, (p * (1.0 - p)) @ squares)
    return out


def _interval(units: Units, mean: float, sd: float) -> tuple[float, float, float]:
    """``mean`` with its normal 80 % interval, clipped to [0, observed minutes]."""
    upper = float(units.weight_s.sum()) / 60.0
    return mean, max(mean - INTERVAL_Z * sd, 0.0), min(mean + INTERVAL_Z * sd, upper)


def _minutes_sd(units: Units, p: FloatArray) -> float:
    return math.sqrt(float(((units.weight_s / 60.0) ** 2 * p * (1.0 - p)).sum()))


def _group_stats(
    group: IntArray, att: FloatArray, quantile: float, n: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-group (quantile, min, mean) of ``att``; groups are 0..n-1 and all non-empty."""
    order = np.lexsort((att, group))
    g, a = group[order], att[order]
    starts = np.searchsorted(g, np.arange(n), side="left")
    counts = np.bincount(g, minlength=n)
    pos = starts + np.floor(quantile * (counts - 1)).astype(np.int64)
    amin = a[starts]
    amean = np.bincount(g, weights=a, minlength=n) / counts
    return a[pos].astype(np.float64), amin.astype(np.float64), amean.astype(np.float64)


def running_median(t: FloatArray, x: FloatArray, width_s: float) -> FloatArray:
    """Median of the (finite) values within ±width_s/2 of each time (t sorted).

    Vectorised: each window is a row of a matrix padded with NaN (which sorts last), sorted
    along the rows; the median sits at the middle of each row's own length. Rows are taken in
    chunks so that the matrix stays near RUNNING_MEDIAN_CHUNK elements.
    """
    n = x.size
    if width_s <= 0 or n < 3:
        return x
    lo = np.searchsorted(t, t - width_s / 2.0, side="left")
    hi = np.searchsorted(t, t + width_s / 2.0, side="right")
    if lo[-1] == 0 and hi[0] == n:  # every window is the whole contact
        return np.full(x.shape, float(np.median(x)))
    counts = hi - lo
    span = int(counts.max())
    out = np.empty(n, dtype=np.float64)
    step = max(1, RUNNING_MEDIAN_CHUNK // span)
    offsets = np.arange(span)
    for first in range(0, n, step):
        rows = slice(first, min(n, first + step))
        idx = lo[rows, None] + offsets
        window = np.where(idx < hi[rows, None], x[np.minimum(idx, n - 1)], np.nan)
        window.sort(axis=1)
        c = counts[rows]
        lower = np.take_along_axis(window, ((c - 1) // 2)[:, None], axis=1)[:, 0]
        upper = np.take_along_axis(window, (c // 2)[:, None], axis=1)[:, 0]
        out[rows] = (lower + upper) / 2.0
    return out


_ERF_P: Final = 0.3275911
_ERF_A: Final = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
"""Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, enough for probabilities; numpy has no erf."""


def _logistic(eta: FloatArray) -> FloatArray:
    """``1 / (1 + e^-eta)``, clipped where it would overflow."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(eta, -40.0, 40.0))), dtype=np.float64)


def _norm_cdf(z: FloatArray) -> FloatArray:
    x = np.asarray(z, dtype=np.float64) / math.sqrt(2.0)
    s = np.sign(x)
    x = np.abs(x)
    tt = 1.0 / (1.0 + _ERF_P * x)
    a1, a2, a3, a4, a5 = _ERF_A
    poly = ((((a5 * tt + a4) * tt + a3) * tt + a2) * tt + a1) * tt
    erf = s * (1.0 - poly * np.exp(-x * x))
    return np.asarray(0.5 * (1.0 + erf), dtype=np.float64)
