"""The DP-3T tracks of exposure.md §7.2: per ordered pair, truth minutes, baseline, CWA rule, engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.accuracy.data import (
    DP3T_SCENARIOS,
    EXP34_SCENARIOS,
    FloatArray,
    load_dp3t,
)
from bench.accuracy.learned import (
    OffsetMode,
    PairUnits,
    PathLossFit,
    bounds,
    choose_and_fit,
    choose_offsets_by_residual,
    choose_pathloss,
    fit_pathloss,
    prepare,
)
from bench.accuracy.metrics import (
    Decision,
    PairedDifference,
    ReliabilityBin,
    auc,
    brier,
    decision,
    mean_ci,
    paired_mean_difference,
    paired_ndcf_difference,
    reliability,
)
from bluezoned.exposure.contacts import (
    BAND_NAMES,
    DISTANCE_BANDS_M,
    EngineConfig,
    analyze_contact,
    calibrated_config,
    exposure_windows,
    gaen_scan_weights,
    median_band,
    scan_ids,
)
from bluezoned.exposure.presets import CWA_V2, RISK_HIGH, ProximityCalibration
from bluezoned.exposure.risk import cwa_risk

DISTANCES: Final = (1.5, 2.0)
MINUTES: Final = (5.0, 10.0, 15.0)
SAMSUNG_TX: Final = -24.0
SAMSUNG_RX_CORRECTION: Final = 5.0
"""DP-3T's GAEN analysis used Google's Samsung entry: ``att = −24 − (rssi + 5)`` (protocol.md §8)."""
CWA_REPORT_TYPE: Final = 2
CWA_INFECTIOUSNESS: Final = 1
"""Clinical diagnosis + standard infectiousness = TRL 5, transmission risk value 1.0: the CWA
rule with a neutral multiplier (HIGH at 9 weighted minutes)."""
BASELINE_GRID: Final = np.arange(-100.0, -69.0, 1.0)
"""exposure.md §9: naive thresholds scanned from −100 to −70 dBm in 1 dB steps."""


@dataclass(frozen=True, slots=True)
class Pair:
    """One ordered (receiver, transmitter) pair in one scenario, with everything the scorers need."""

    scenario: str
    t: FloatArray
    rssi: FloatArray
    tx: FloatArray
    scan_seconds: FloatArray | None
    unit_weight_s: FloatArray
    unit_median_rssi: FloatArray
    truth: dict[float, float]
    """d → ground-truth minutes within d (units with ground truth only)."""
    link: tuple[int, int] = (0, 0)
    """The unordered (receiver, transmitter) ids: both directions of one contact share it."""
    distance: FloatArray | None = None
    """Ground-truth distance per sighting (NaN when untracked): labels for learned models."""
    models: tuple[str, str] = ("", "")
    """(receiver model, transmitter model)."""


def dense_pairs() -> list[Pair]:
    """DP-3T exp05: minute bins; truth = minutes whose median camera distance ≤ d."""
    pairs: list[Pair] = []
    loaded = [load_dp3t("exp05-epfl-soldiers", scen) for scen in DP3T_SCENARIOS]
    models = {k: v for data in loaded for k, v in data.models.items()}
    for scen, data in zip(DP3T_SCENARIOS, loaded, strict=True):
        key = data.receiver * 1000 + data.transmitter
        for k in np.unique(key):
            m = np.flatnonzero(key == k)
            m = m[np.argsort(data.t[m], kind="stable")]
            t = data.t[m]
            minute = np.floor(t / 60.0).astype(np.int64)
            _, inv = np.unique(minute, return_inverse=True)
            truth_d, med = _unit_truth(inv, data.distance[m], data.rssi[m])
            if not np.isfinite(truth_d).any():
                continue
            pairs.append(
                Pair(
                    scen,
                    t,
                    data.rssi[m],
                    data.tx_power[m],
                    None,
                    np.full(med.shape, 60.0),
                    med,
                    {d: float((truth_d <= d).sum()) for d in DISTANCES},
                    (min(int(k) // 1000, int(k) % 1000), max(int(k) // 1000, int(k) % 1000)),
                    data.distance[m],
                    _models(models, int(k)),
                )
            )
    return pairs


def gaen_pairs() -> list[Pair]:
    """DP-3T exp34: receiver scans (gap > 20 s) weighted as GAEN; truth = weighted close scans."""
    pairs: list[Pair] = []
    loaded = [load_dp3t("exp34-epfl-soldiers", scen) for scen in EXP34_SCENARIOS]
    models = {k: v for data in loaded for k, v in data.models.items()}
    for scen, data in zip(EXP34_SCENARIOS, loaded, strict=True):
        weight = np.zeros(data.t.size)
        scan = np.zeros(data.t.size, dtype=np.int64)
        for rx in np.unique(data.receiver):
            idx = np.flatnonzero(data.receiver == rx)
            idx = idx[np.argsort(data.t[idx], kind="stable")]
            sid = scan_ids(data.t[idx])
            starts = data.t[idx][np.r_[True, np.diff(sid) > 0]]
            weight[idx] = gaen_scan_weights(starts)[sid]
            scan[idx] = sid
        key = data.receiver * 1000 + data.transmitter
        for k in np.unique(key):
            m = np.flatnonzero(key == k)
            m = m[np.argsort(data.t[m], kind="stable")]
            _, first, inv = np.unique(scan[m], return_index=True, return_inverse=True)
            truth_d, med = _unit_truth(inv, data.distance[m], data.rssi[m])
            if not np.isfinite(truth_d).any():
                continue
            w = weight[m][first]
            tx = np.full(m.size, SAMSUNG_TX)
            pairs.append(
                Pair(
                    scen,
                    data.t[m],
                    data.rssi[m],
                    tx,
                    weight[m],
                    w,
                    med,
                    {d: float(w[truth_d <= d].sum()) / 60.0 for d in DISTANCES},
                    (min(int(k) // 1000, int(k) % 1000), max(int(k) // 1000, int(k) % 1000)),
                    data.distance[m],
                    _models(models, int(k)),
                )
            )
    return pairs


def _models(models: dict[int, str], key: int) -> tuple[str, str]:
    return models.get(key // 1000, ""), models.get(key % 1000, "")


def _unit_truth(
    inv: np.ndarray, distance: FloatArray, rssi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per unit: median ground-truth distance (NaN when untracked) and median RSSI."""
    n = int(inv.max()) + 1
    truth = np.full(n, np.nan)
    med = np.empty(n)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(n + 1))
    for u in range(n):
        sel = order[bounds[u] : bounds[u + 1]]
        med[u] = np.median(rssi[sel])
        g = distance[sel]
        g = g[np.isfinite(g)]
        if g.size:
            truth[u] = np.median(g)
    return truth, med


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method's decision metrics and duration error on one track and condition."""

    decision: Decision
    duration_mae: float
    duration_bias: float
    note: str = ""
    duration_mae_ci: tuple[float, float] = (0.0, 0.0)
    """Bootstrap 95 % interval of the duration MAE over pairs."""


@dataclass(frozen=True, slots=True)
class ScoreCalibration:
    """The engine's P(close contact) on held-out pairs: Brier score beside that of the training
    prevalence (a constant forecast), reliability table and AUC."""

    brier: float
    brier_climatology: float
    bins: list[ReliabilityBin]
    auc: float

    @property
    def skill(self) -> float:
        """Brier skill score: 1 is perfect, 0 no better than the training prevalence."""
        return 1.0 - self.brier / self.brier_climatology if self.brier_climatology else 0.0


@dataclass(frozen=True, slots=True)
class TrackResult:
    """The engine, the naive baseline and the CWA rule side by side for one (track, d, T)."""

    track: str
    distance: float
    minutes: float
    engine: MethodResult
    naive: MethodResult
    cwa: MethodResult
    naive_oracle_ndcf: float
    symmetric_ndcf: dict[str, float]
    """nDCF per method on unordered pairs: close when either direction says so, truth = max."""
    variants: dict[str, MethodResult] = field(default_factory=dict)
    """Every engine variant evaluated in the same run with the same protocol (ENGINE_VARIANT is
    the ``engine`` row); fixed variants and the ones chosen by inner cross-validation."""
    chosen: dict[str, dict[str, str]] = field(default_factory=dict)
    """Variant → held-out scenario → the choice its inner cross-validation made."""
    inner_scores: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Variant → held-out scenario → inner-CV nDCF per candidate (training scenarios only)."""
    bounds: dict[str, float] = field(default_factory=dict)
    """Optimistic nDCF bounds (``learned.bounds``): in-sample tuning, tracking oracle."""
    score: ScoreCalibration | None = None
    """How well the engine's held-out ``score`` works as a probability (exposure.md §7.1)."""
    well_tracked: dict[str, float] = field(default_factory=dict)
    """nDCF per method on the pairs whose scan time the cameras tracked for at least
    WELL_TRACKED of it, with ``pairs`` their count: where the truth is nearly complete (a
    diagnostic; the subset is chosen by a property the device cannot see)."""
    versus: dict[str, dict[str, PairedDifference]] = field(default_factory=dict)
    """Baseline → {"ndcf", "mae"}: the engine minus that baseline on the same pairs, with the
    paired bootstrap interval over contacts (does the engine beat it beyond the noise?)."""
    band: dict[str, float] = field(default_factory=dict)
    """The engine's held-out ``distance_band`` against the band of the pair's time-weighted
    median camera distance (``band_agreement``), beside the most probable band."""
    default_score: ScoreCalibration | None = None
    """The same for the uncalibrated default configuration (nothing fitted on these data): the
    score a device without a calibration reports."""
    default_interval: dict[str, float] = field(default_factory=dict)
    """``interval_coverage`` of the default configuration's 80 % interval of minutes within d."""
    interval: dict[str, float] = field(default_factory=dict)
    """``interval_coverage`` of the engine's held-out 80 % interval of minutes within d."""


WELL_TRACKED: Final = 0.9
"""Tracked share of a pair's unit time above which its truth counts as nearly complete."""
ENGINE_VARIANT: Final = "pathloss+offsets+sigma (inner CV residual)"
"""The variant reported as ``engine``: the path-loss engine with per-model attenuation offsets
(receiver model, transmitter model: what GAEN's RSSI-correction and TX tables do); the offset
mode (none / receiver model / both) is chosen per fold by inner leave-one-scenario-out on the
training scenarios, by the rms residual of the level against log-distance on the inner held-out
scenario (a smooth physical criterion; inner nDCF is too noisy to choose with), and the model's
shadowing σ is set to that held-out residual: the default 10 dB includes the between-device
spread (exposure.md §4.2) that the offsets now remove."""
OFFSETS_VARIANT: Final = "pathloss+offsets (inner CV residual)"
"""As ENGINE_VARIANT with the default σ (10 dB)."""
NDCF_VARIANT: Final = "pathloss+offsets (inner CV nDCF)"
LOGISTIC_VARIANT: Final = "logistic (inner CV nDCF)"
FIXED_MODES: Final[tuple[OffsetMode, ...]] = ("none", "rx_model", "rx_tx_model")


def engine_base_config(track: str) -> EngineConfig:
    """The engine's scanning regime and calibration inputs per track (TX as the protocol gives it)."""
    if track == "exp34":
        return EngineConfig(regime="sparse", rx_correction=SAMSUNG_RX_CORRECTION)
    return EngineConfig(regime="dense")


def evaluate(
    track: str, pairs: Sequence[Pair], distance: float, minutes: float, *, variants: bool = False
) -> TrackResult:
    """Leave-one-scenario-out: every calibration, offset and threshold fitted on the other scenarios.

    ``variants`` adds the costly diagnostics (offset mode chosen by inner nDCF; the per-unit
    logistic model with its 9 candidates chosen by inner nDCF): about 6x the run time.
    """
    scen = np.array([p.scenario for p in pairs])
    truth_min = np.array([p.truth[distance] for p in pairs])
    y = truth_min >= minutes
    base_cfg = replace(engine_base_config(track), distance_m=distance, minutes=minutes)
    units = _prepared(track, pairs, base_cfg)
    n = len(pairs)
    names = [f"pathloss/{m}" for m in FIXED_MODES] + [OFFSETS_VARIANT, ENGINE_VARIANT]
    if variants:
        names += [NDCF_VARIANT, LOGISTIC_VARIANT]
    pred = {k: np.zeros(n, dtype=bool) for k in names}
    est = {k: np.zeros(n) for k in names}
    chosen: dict[str, dict[str, str]] = {k: {} for k in names[len(FIXED_MODES) :]}
    inner: dict[str, dict[str, dict[str, float]]] = {k: {} for k in names[len(FIXED_MODES) :]}
    naive = naive_rule(pairs, distance, minutes)
    nai_pred, nai_est = naive.pred, naive.minutes
    score = np.zeros(n)
    band_probs = np.zeros((n, len(BAND_NAMES)))
    interval = np.zeros((n, 2))
    climatology = np.zeros(n)
    for s in np.unique(scen).tolist():
        test, train = np.flatnonzero(scen == s), np.flatnonzero(scen != s)
        climatology[test] = y[train].mean()
        tr_units = [units[i] for i in train.tolist()]
        for mode in FIXED_MODES:
            fit = fit_pathloss(tr_units, truth_min[train], distance, minutes, mode, base_cfg)
            applied = _pathloss_apply([pairs[i] for i in test.tolist()], fit, base_cfg)
            pred[f"pathloss/{mode}"][test], est[f"pathloss/{mode}"][test] = applied[:2]
        mode_r, scores = choose_offsets_by_residual(tr_units, scen[train].tolist())
        fit = fit_pathloss(tr_units, truth_min[train], distance, minutes, mode_r, base_cfg)
        chosen[OFFSETS_VARIANT][s], inner[OFFSETS_VARIANT][s] = f"pathloss/{mode_r}", scores
        applied = _pathloss_apply([pairs[i] for i in test.tolist()], fit, base_cfg)
        pred[OFFSETS_VARIANT][test], est[OFFSETS_VARIANT][test] = applied[:2]
        sigma = scores[f"residual/{mode_r}"]
        fit = fit_pathloss(tr_units, truth_min[train], distance, minutes, mode_r, base_cfg, sigma)
        chosen[ENGINE_VARIANT][s] = f"pathloss/{mode_r}, sigma {sigma:.2f} dB"
        inner[ENGINE_VARIANT][s] = scores
        applied = _pathloss_apply([pairs[i] for i in test.tolist()], fit, base_cfg)
        pred[ENGINE_VARIANT][test], est[ENGINE_VARIANT][test] = applied[:2]
        score[test], band_probs[test], interval[test] = applied[2:]
        if not variants:
            continue
        fit, scores = choose_pathloss(
            tr_units, scen[train].tolist(), truth_min[train], distance, minutes, base_cfg
        )
        chosen[NDCF_VARIANT][s], inner[NDCF_VARIANT][s] = f"pathloss/{fit.mode}", scores
        applied = _pathloss_apply([pairs[i] for i in test.tolist()], fit, base_cfg)
        pred[NDCF_VARIANT][test], est[NDCF_VARIANT][test] = applied[:2]
        lfit, lscores = choose_and_fit(
            tr_units, scen[train].tolist(), truth_min[train], distance, minutes
        )
        chosen[LOGISTIC_VARIANT][s] = lfit.name
        inner[LOGISTIC_VARIANT][s] = lscores
        for i in test.tolist():
            p = pairs[i]
            o_rx, o_tx = lfit.offsets.of(*p.models)
            lcfg = replace(
                base_cfg,
                rx_correction=base_cfg.rx_correction + o_rx,
                classifier=lfit.classifier,
                decision_minutes=lfit.theta,
            )
            c = analyze_contact(p.t, p.rssi, p.tx - o_tx, config=lcfg, scan_seconds=p.scan_seconds)
            pred[LOGISTIC_VARIANT][i] = c.tc4tl
            est[LOGISTIC_VARIANT][i] = c.minutes_close

    cwa_pred = np.zeros(n, dtype=bool)
    cwa_est = np.zeros(n)
    cwa_cfg = replace(base_cfg, rx_correction=SAMSUNG_RX_CORRECTION)
    for i, p in enumerate(pairs):
        windows = exposure_windows(
            p.t,
            p.rssi,
            np.full(p.t.size, SAMSUNG_TX),
            config=cwa_cfg,
            report_type=CWA_REPORT_TYPE,
            infectiousness=CWA_INFECTIOUSNESS,
            scan_seconds=p.scan_seconds,
        )
        result = cwa_risk(windows, CWA_V2)
        cwa_pred[i] = result.total_risk_level == RISK_HIGH
        cwa_est[i] = sum(r.weighted_minutes for r in result.windows if r is not None)
    groups: dict[tuple[str, int, int], list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault((p.scenario, *p.link), []).append(i)
    members = list(groups.values())
    contact = np.zeros(n, dtype=np.int64)
    for g, idx in enumerate(members):
        contact[idx] = g
    tracked = np.array(
        [float((u.weight_s * np.isfinite(u.truth)).sum() / u.weight_s.sum()) for u in units]
    )
    well = tracked >= WELL_TRACKED
    well_tracked = {
        name: _ndcf(pr[well], y[well])
        for name, pr in (("engine", pred[ENGINE_VARIANT]), ("naive", nai_pred), ("cwa", cwa_pred))
    } | {"pairs": float(well.sum())}
    y_sym = np.array([truth_min[g].max() >= minutes for g in members])
    symmetric = {
        name: _ndcf(np.array([bool(pr[g].any()) for g in members]), y_sym)
        for name, pr in (
            ("engine", pred[ENGINE_VARIANT]),
            ("naive", nai_pred),
            ("cwa", cwa_pred),
            *pred.items(),
        )
    }
    return TrackResult(
        track,
        distance,
        minutes,
        method_result(pred[ENGINE_VARIANT], est[ENGINE_VARIANT], y, truth_min),
        method_result(nai_pred, nai_est, y, truth_min),
        method_result(cwa_pred, cwa_est, y, truth_min, "weighted minutes"),
        naive.oracle_ndcf,
        symmetric,
        {k: method_result(pred[k], est[k], y, truth_min) for k in names},
        chosen,
        inner,
        bounds(units, scen.tolist(), truth_min, distance, minutes, base_cfg),
        ScoreCalibration(
            brier(score, y), brier(climatology, y), reliability(score, y), auc(score, y)
        ),
        well_tracked,
        {
            name: _versus(pred[ENGINE_VARIANT], est[ENGINE_VARIANT], p, e, y, truth_min, contact)
            for name, p, e in (("naive", nai_pred, nai_est), ("CWA v2", cwa_pred, cwa_est))
        },
        band_agreement(band_probs, units),
        *_default_configuration(pairs, base_cfg, y, climatology),
        interval_coverage(interval, truth_min),
    )


def _default_configuration(
    pairs: Sequence[Pair], config: EngineConfig, y: np.ndarray, climatology: FloatArray
) -> tuple[ScoreCalibration, dict[str, float]]:
    """How the default configuration's ``score`` does as P(close contact) on every pair, and how
    often its 80 % interval of minutes within d holds the truth."""
    score = np.zeros(len(pairs))
    interval = np.zeros((len(pairs), 2))
    for k, p in enumerate(pairs):
        c = analyze_contact(p.t, p.rssi, p.tx, config=config, scan_seconds=p.scan_seconds)
        score[k] = c.score
        interval[k] = c.minutes_within[config.distance_m][1:]
    truth = np.array([p.truth[config.distance_m] for p in pairs])
    return (
        ScoreCalibration(
            brier(score, y), brier(climatology, y), reliability(score, y), auc(score, y)
        ),
        interval_coverage(interval, truth),
    )


def interval_coverage(interval: FloatArray, truth: FloatArray) -> dict[str, float]:
    """Share of pairs whose truth minutes lie in their (low, high) interval, and its median width."""
    inside = (interval[:, 0] <= truth + 1e-9) & (truth <= interval[:, 1] + 1e-9)
    return {
        "coverage": float(inside.mean()),
        "median_width": float(np.median(interval[:, 1] - interval[:, 0])),
    }


def band_agreement(band_probs: FloatArray, units: Sequence[PairUnits]) -> dict[str, float]:
    """Accuracy and mean error (in bands) of the median band (what the engine reports) and of the
    most probable band, against the band of each pair's time-weighted median camera distance."""
    truth = np.array([_median_band_of(u) for u in units])
    median = np.array([median_band(p) for p in band_probs])
    modal = np.argmax(band_probs, axis=1)
    return {
        "pairs": float(truth.size),
        "median_accuracy": float((median == truth).mean()),
        "median_error": float(np.abs(median - truth).mean()),
        "modal_accuracy": float((modal == truth).mean()),
        "modal_error": float(np.abs(modal - truth).mean()),
    }


def _median_band_of(u: PairUnits) -> int:
    tracked = np.isfinite(u.truth)
    d, w = u.truth[tracked], u.weight_s[tracked]
    order = np.argsort(d, kind="stable")
    cumulative = np.cumsum(w[order])
    median = float(d[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])
    return int(np.searchsorted(np.asarray(DISTANCE_BANDS_M), median, side="left"))


def track_distance(track: str, pairs: Sequence[Pair]) -> dict[str, dict[str, float]]:
    """The per-segment distance metric of the track (``distance.evaluate_distance``)."""
    from bench.accuracy.distance import evaluate_distance

    config = engine_base_config(track)
    return evaluate_distance(
        _prepared(track, pairs, config),
        [p.unit_median_rssi for p in pairs],
        [p.scenario for p in pairs],
        config,
    )


PRESET_SOURCES: Final = {
    "exp05": "DP-3T bt-measurements exp05 (dense, 5 scenarios), attenuation = tx_power column "
    "(-20/-21 dBm advertiser power) - rssi",
    "exp34": "DP-3T bt-measurements exp34 (real GAEN, 6 scenarios), attenuation = "
    "-24 - (rssi + 5) (Google's Samsung entry)",
}


def fit_preset(
    track: str, pairs: Sequence[Pair], distance: float, minutes: float
) -> ProximityCalibration:
    """The engine's calibration fitted on every scenario of a track, as in each fold (offset mode
    by inner residual, then the duration and decision fits): the shipped preset."""
    base = replace(engine_base_config(track), distance_m=distance, minutes=minutes)
    units = _prepared(track, pairs, base)
    scen = [p.scenario for p in pairs]
    truth = np.array([p.truth[distance] for p in pairs])
    mode, scores = choose_offsets_by_residual(units, scen)
    sigma = scores[f"residual/{mode}"]
    fit = fit_pathloss(units, truth, distance, minutes, mode, base, sigma)
    return replace(
        fit.calibration(
            f"dp3t-{track}-{distance:g}m-{minutes:g}min",
            base.regime,
            distance,
            minutes,
            "bench/accuracy --fit-presets: all scenarios, offset mode "
            f"{mode} and sigma by inner leave-one-scenario-out residual",
        ),
        attenuation_scale=PRESET_SOURCES[track],
    )


@dataclass(frozen=True, slots=True)
class NaiveRule:
    """The naive baseline's held-out decisions and minutes per pair, and its optimistic bound."""

    pred: npt.NDArray[np.bool_]
    minutes: FloatArray
    threshold_dbm: dict[str, float]
    """Scenario → the threshold tuned on the other scenarios and used on it."""
    oracle_ndcf: float
    """The best nDCF of one threshold tuned on every pair, the scored ones included."""


def naive_rule(pairs: Sequence[Pair], distance: float, minutes: float) -> NaiveRule:
    """exposure.md §8: count the minutes (dense) or weighted scans (GAEN) whose median RSSI is at
    or above a threshold; close when the count reaches ``minutes``. The threshold (−100 to −70 dBm
    in 1-dB steps) is tuned on the other scenarios (leave-one-scenario-out)."""
    scen = np.array([p.scenario for p in pairs])
    y = np.array([p.truth[distance] >= minutes for p in pairs])
    counted = np.array(
        [
            [float(p.unit_weight_s[p.unit_median_rssi >= th].sum()) / 60.0 for th in BASELINE_GRID]
            for p in pairs
        ]
    ).reshape(len(pairs), BASELINE_GRID.size)
    pred = np.zeros(len(pairs), dtype=bool)
    est = np.zeros(len(pairs))
    thresholds: dict[str, float] = {}
    for s in np.unique(scen).tolist():
        test, train = scen == s, scen != s
        q = int(
            np.argmin(
                [_ndcf(counted[train, q] >= minutes, y[train]) for q in range(BASELINE_GRID.size)]
            )
        )
        pred[test] = counted[test, q] >= minutes
        est[test] = counted[test, q]
        thresholds[s] = float(BASELINE_GRID[q])
    oracle = min(_ndcf(counted[:, q] >= minutes, y) for q in range(BASELINE_GRID.size))
    return NaiveRule(pred, est, thresholds, oracle)


def _pathloss_apply(
    pairs: Sequence[Pair], fit: PathLossFit, base: EngineConfig
) -> tuple[np.ndarray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Run the engine itself, with a fold's fit as shippable calibration data, on held-out pairs:
    each pair's decision, minutes within d, score, band probabilities and the 80 % interval of
    its minutes within d (one row per pair)."""
    cal = fit.calibration("fold", base.regime, base.distance_m, base.minutes)
    pred = np.zeros(len(pairs), dtype=bool)
    est = np.zeros(len(pairs))
    score = np.zeros(len(pairs))
    bands = np.zeros((len(pairs), len(BAND_NAMES)))
    interval = np.zeros((len(pairs), 2))
    for k, p in enumerate(pairs):
        cfg = calibrated_config(cal, base, rx_model=p.models[0], tx_model=p.models[1])
        c = analyze_contact(p.t, p.rssi, p.tx, config=cfg, scan_seconds=p.scan_seconds)
        pred[k] = c.tc4tl
        est[k] = c.minutes_close
        score[k] = c.score
        bands[k] = c.band_probabilities
        interval[k] = c.minutes_within[base.distance_m][1:]
    return pred, est, score, bands, interval


_PREPARED: dict[tuple[str, int, float], list[PairUnits]] = {}


def _prepared(track: str, pairs: Sequence[Pair], config: EngineConfig) -> list[PairUnits]:
    """Unit features and unit truth of every pair (cached per track: they do not depend on d, T)."""
    key = (track, id(pairs), config.smoothing_s)
    if key not in _PREPARED:
        _PREPARED[key] = [
            prepare(
                p.t,
                p.rssi,
                p.tx,
                np.full(p.t.size, np.nan) if p.distance is None else p.distance,
                p.scan_seconds,
                p.models,
                config,
            )
            for p in pairs
        ]
    return _PREPARED[key]


def _ndcf(pred: np.ndarray, y: np.ndarray) -> float:
    from bench.accuracy.metrics import ndcf

    return ndcf(pred, y)


def method_result(
    pred: np.ndarray, est: FloatArray, y: np.ndarray, truth: FloatArray, note: str = ""
) -> MethodResult:
    """Decision metrics of ``pred`` against ``y`` and the error of ``est`` against ``truth``."""
    err = est - truth
    return MethodResult(
        decision(pred, y),
        float(np.abs(err).mean()),
        float(err.mean()),
        note,
        mean_ci(np.abs(err)),
    )


def _versus(
    pred: np.ndarray,
    est: FloatArray,
    base_pred: np.ndarray,
    base_est: FloatArray,
    y: np.ndarray,
    truth: FloatArray,
    contact: npt.NDArray[np.int64],
) -> dict[str, PairedDifference]:
    """The engine minus a baseline on the same pairs: nDCF and duration MAE, paired bootstrap
    over contacts (both directions of one contact are drawn together: they are not independent)."""
    return {
        "ndcf": paired_ndcf_difference(pred, base_pred, y, groups=contact),
        "mae": paired_mean_difference(
            np.abs(est - truth), np.abs(base_est - truth), groups=contact
        ),
    }
