"""Learned per-unit classifier for the DP-3T tracks: features, offsets, logistic fit, inner CV.

Everything here is fitted on training scenarios only (exposure.md §7.2): per-model RSSI offsets
(receiver model, transmitter model) from a path-loss fit against the camera distance, a small
L2-regularised logistic model ``P(distance ≤ d | unit features)`` weighted by unit seconds, and
the decision threshold on expected minutes. The variant (feature set × offset mode) is chosen by
an inner leave-one-scenario-out on the training scenarios, never on the held-out one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from bench.accuracy.data import FloatArray
from bench.accuracy.metrics import fit_platt, ndcf
from bluezoned.exposure.contacts import (
    UNIT_FEATURES,
    EngineConfig,
    UnitClassifier,
    attenuation,
    observation_units,
    unit_features,
)
from bluezoned.exposure.presets import ProximityCalibration

OffsetMode = Literal["none", "rx_model", "rx_tx_model"]
FEATURE_SETS: Final[dict[str, tuple[int, ...]]] = {
    "level": (0,),
    "level+median+count": (0, 1, 4),
    "all": tuple(range(len(UNIT_FEATURES))),
}
"""Candidate columns of ``UNIT_FEATURES``; the first is the previous engine's only input."""
OFFSET_MODES: Final[tuple[OffsetMode, ...]] = ("none", "rx_model", "rx_tx_model")
CANDIDATES: Final = tuple((f, o) for o in OFFSET_MODES for f in FEATURE_SETS)
"""All 9 variants the inner cross-validation chooses from (simplest first: ties keep it)."""
ATT_COLUMNS: Final = (0, 1, 2, 5)
"""Feature columns in dB of attenuation: a calibration offset shifts them."""
L2: Final = 1.0
THETA_GRID: Final = np.arange(0.0, 40.5, 0.5)


@dataclass(frozen=True, slots=True)
class PairUnits:
    """One pair's unit features (zero offsets), unit weights (s) and unit truth distance (NaN)."""

    features: FloatArray
    weight_s: FloatArray
    truth: FloatArray
    rx_model: str
    tx_model: str


@dataclass(frozen=True, slots=True)
class Offsets:
    """Per-model attenuation offsets (dB) to subtract; unknown models get 0."""

    rx: dict[str, float]
    tx: dict[str, float]

    def of(self, rx_model: str, tx_model: str) -> tuple[float, float]:
        """(receiver, transmitter) offsets of one pair."""
        return self.rx.get(rx_model, 0.0), self.tx.get(tx_model, 0.0)


@dataclass(frozen=True, slots=True)
class Fitted:
    """A variant fitted on training pairs: classifier, offsets and decision threshold."""

    name: str
    classifier: UnitClassifier
    offsets: Offsets
    theta: float


def prepare(
    t: FloatArray,
    rssi: FloatArray,
    tx: FloatArray,
    distance: FloatArray,
    scan_seconds: FloatArray | None,
    models: tuple[str, str],
    config: EngineConfig,
) -> PairUnits:
    """The engine's units of one pair and each unit's median camera distance."""
    att, _ = attenuation(
        rssi, tx, default_tx=config.default_tx_power, rx_correction=config.rx_correction
    )
    units = observation_units(t, att, config, scan_seconds)
    # unit index of each sighting, rebuilt as observation_units groups them
    if units.regime == "sparse":
        idx = np.searchsorted(units.t, t, side="right") - 1
    else:
        idx = np.searchsorted(units.t, np.floor(t / config.slice_s) * config.slice_s)
    truth = np.full(units.t.size, np.nan)
    finite = np.isfinite(distance)
    for u in np.unique(idx[finite]).tolist():
        truth[u] = float(np.median(distance[finite & (idx == u)]))
    return PairUnits(unit_features(units), units.weight_s, truth, models[0], models[1])


def fit_offsets(pairs: Sequence[PairUnits], mode: OffsetMode) -> Offsets:
    """Median residual per receiver model (then transmitter model) of ``level ~ a + b·log10 d``."""
    if mode == "none":
        return Offsets({}, {})
    lv, ld, rx, tx = [], [], [], []
    for p in pairs:
        m = np.isfinite(p.truth)
        lv.append(p.features[m, 0])
        ld.append(np.log10(np.maximum(p.truth[m], 0.1)))
        rx.extend([p.rx_model] * int(m.sum()))
        tx.extend([p.tx_model] * int(m.sum()))
    level, logd = np.concatenate(lv), np.concatenate(ld)
    design = np.column_stack((np.ones(level.size), logd))
    coef = np.linalg.lstsq(design, level, rcond=None)[0]
    res = level - design @ coef
    rxa, txa = np.asarray(rx), np.asarray(tx)
    rx_off = {k: float(np.median(res[rxa == k])) for k in np.unique(rxa).tolist()}
    if mode == "rx_model":
        return Offsets(rx_off, {})
    res = res - np.asarray([rx_off[k] for k in rx])
    tx_off = {k: float(np.median(res[txa == k])) for k in np.unique(txa).tolist()}
    return Offsets(rx_off, tx_off)


def shifted(p: PairUnits, offsets: Offsets) -> FloatArray:
    """The pair's features with its model offsets removed from the attenuation columns."""
    f = p.features.copy()
    o_rx, o_tx = offsets.of(p.rx_model, p.tx_model)
    f[:, ATT_COLUMNS] -= o_rx + o_tx
    return f


def fit_logistic(
    x: FloatArray, y: FloatArray, weight: FloatArray, l2: float = L2
) -> tuple[float, FloatArray]:
    """Weighted L2 logistic regression by Newton steps on standardised columns; raw-scale coefs."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 1e-9, sd, 1.0)
    z = np.column_stack((np.ones(x.shape[0]), (x - mu) / sd))
    beta = np.zeros(z.shape[1])
    ridge = l2 * np.eye(z.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(100):
        prob = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -40.0, 40.0)))
        grad = z.T @ (weight * (prob - y)) + ridge @ beta
        hess = (z * (weight * prob * (1.0 - prob))[:, None]).T @ z + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    coef = beta[1:] / sd
    return float(beta[0] - (coef * mu).sum()), coef


def fit_variant(
    pairs: Sequence[PairUnits],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
    features: str,
    mode: OffsetMode,
    source: str = "",
) -> Fitted:
    """Offsets, classifier and threshold for one variant, on these (training) pairs only."""
    offsets = fit_offsets(pairs, mode)
    cols = FEATURE_SETS[features]
    xs, ys, ws = [], [], []
    for p in pairs:
        m = np.isfinite(p.truth)
        xs.append(shifted(p, offsets)[m][:, cols])
        ys.append((p.truth[m] <= distance).astype(np.float64))
        ws.append(p.weight_s[m] / 60.0)
    intercept, coef = fit_logistic(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws))
    full = np.zeros(len(UNIT_FEATURES))
    full[list(cols)] = coef
    clf = UnitClassifier(distance, intercept, tuple(float(c) for c in full), source)
    expected = expected_minutes(pairs, clf, offsets)
    y = truth_minutes >= minutes
    costs = [ndcf(expected >= th, y) for th in THETA_GRID]
    theta = float(THETA_GRID[int(np.argmin(costs))])
    return Fitted(f"{features}/{mode}", clf, offsets, theta)


def expected_minutes(
    pairs: Sequence[PairUnits], clf: UnitClassifier, offsets: Offsets
) -> FloatArray:
    """Expected minutes within the classifier's distance per pair."""
    return np.asarray(
        [float((p.weight_s * clf.probability(shifted(p, offsets))).sum()) / 60.0 for p in pairs]
    )


def choose_and_fit(
    pairs: Sequence[PairUnits],
    scenarios: Sequence[str],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
) -> tuple[Fitted, dict[str, float]]:
    """Pick the variant by inner leave-one-scenario-out nDCF on these pairs, then refit on all."""
    scen = np.asarray(scenarios)
    y = truth_minutes >= minutes
    scores: dict[str, float] = {}
    best: tuple[float, int] | None = None
    for c, (features, mode) in enumerate(CANDIDATES):
        pred = np.zeros(len(pairs), dtype=bool)
        for s in np.unique(scen).tolist():
            tr = np.flatnonzero(scen != s)
            te = np.flatnonzero(scen == s)
            fit = fit_variant(
                [pairs[i] for i in tr.tolist()],
                truth_minutes[tr],
                distance,
                minutes,
                features,
                mode,
            )
            est = expected_minutes([pairs[i] for i in te.tolist()], fit.classifier, fit.offsets)
            pred[te] = est >= fit.theta
        cost = ndcf(pred, y)
        scores[f"{features}/{mode}"] = cost
        if best is None or cost < best[0] - 1e-12:
            best = (cost, c)
    assert best is not None
    features, mode = CANDIDATES[best[1]]
    return fit_variant(pairs, truth_minutes, distance, minutes, features, mode), scores


A1_GRID: Final = np.arange(40.0, 80.5, 2.5)
"""1-m attenuations tried for the decision calibration: nDCF is piecewise constant, so a coarse
grid (with the threshold grid) keeps the joint search from fitting the training noise."""
A1_DURATION_GRID: Final = np.arange(40.0, 80.25, 0.5)
"""1-m attenuations tried for the duration calibration: the training MAE is smooth in the 1-m
attenuation, and 2.5-dB steps left up to 0.2 min of held-out MAE on the table (DP-3T exp05)."""


@dataclass(frozen=True, slots=True)
class PathLossFit:
    """The path-loss engine's per-fold calibration with per-model offsets."""

    mode: OffsetMode
    offsets: Offsets
    a1_minutes: float
    """1-m attenuation that estimates minutes best (duration MAE) on the training pairs."""
    a1_decision: float
    theta: float
    """Decision calibration and threshold that minimise nDCF on the training pairs."""
    sigma_db: float | None = None
    """Shadowing σ of the path-loss model when set apart from the engine default."""
    score_map: tuple[float, float] | None = None
    """Platt map of the decision margin (minutes) to P(close contact), fitted on the pairs."""

    def calibration(
        self, name: str, regime: str, distance: float, minutes: float, source: str = ""
    ) -> ProximityCalibration:
        """This fit as the engine's shippable calibration data."""
        return ProximityCalibration(
            name=name,
            regime=regime,
            distance_m=distance,
            minutes=minutes,
            att_at_1m=self.a1_minutes,
            decision_att_at_1m=self.a1_decision,
            decision_minutes=self.theta,
            sigma_db=None if self.sigma_db is None else round(self.sigma_db, 2),
            score_map=None
            if self.score_map is None
            else (round(self.score_map[0], 4), round(self.score_map[1], 4)),
            rx_model_offsets=tuple(sorted((k, round(v, 2)) for k, v in self.offsets.rx.items())),
            tx_model_offsets=tuple(sorted((k, round(v, 2)) for k, v in self.offsets.tx.items())),
            source=source,
        )


def _pathloss_grid(
    pairs: Sequence[PairUnits],
    offsets: Offsets,
    distance: float,
    config: EngineConfig,
    a1_grid: FloatArray = A1_GRID,
) -> FloatArray:
    """Expected minutes within ``distance`` per pair (rows) and 1-m attenuation (columns)."""
    from bluezoned.exposure.contacts import p_within

    level = np.concatenate([shifted(p, offsets)[:, 0] for p in pairs])
    weight = np.concatenate([p.weight_s for p in pairs]) / 60.0
    owner = np.repeat(np.arange(len(pairs)), [p.weight_s.size for p in pairs])
    out = np.zeros((len(pairs), a1_grid.size))
    for j, a1 in enumerate(a1_grid):
        prob = p_within(level, distance, replace(config.model, att_at_1m=float(a1)))
        out[:, j] = np.bincount(owner, weights=weight * prob, minlength=len(pairs))
    return out


def fit_pathloss(
    pairs: Sequence[PairUnits],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
    mode: OffsetMode,
    config: EngineConfig,
    sigma_db: float | None = None,
) -> PathLossFit:
    """Offsets, then the duration calibration (MAE) and the decision pair (nDCF), on these pairs;
    ``sigma_db`` replaces the model's shadowing σ when given."""
    if sigma_db is not None:
        config = replace(config, model=replace(config.model, sigma_db=sigma_db))
    offsets = fit_offsets(pairs, mode)
    fine = _pathloss_grid(pairs, offsets, distance, config, A1_DURATION_GRID)
    j = int(np.argmin(np.abs(fine - truth_minutes[:, None]).mean(axis=0)))
    grid = _pathloss_grid(pairs, offsets, distance, config)
    y = truth_minutes >= minutes
    _, jd, theta = min(
        (ndcf(grid[:, q] >= th, y), q, float(th)) for q in range(A1_GRID.size) for th in THETA_GRID
    )
    sigma = None if sigma_db is None else float(sigma_db)
    score_map = fit_platt(grid[:, jd] - theta, y)
    return PathLossFit(
        mode, offsets, float(A1_DURATION_GRID[j]), float(A1_GRID[jd]), theta, sigma, score_map
    )


def choose_pathloss(
    pairs: Sequence[PairUnits],
    scenarios: Sequence[str],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
    config: EngineConfig,
    modes: Sequence[OffsetMode] = OFFSET_MODES,
) -> tuple[PathLossFit, dict[str, float]]:
    """Pick the offset mode by inner leave-one-scenario-out nDCF, then refit on all these pairs."""
    scen = np.asarray(scenarios)
    y = truth_minutes >= minutes
    scores: dict[str, float] = {}
    for mode in modes:
        pred = _loso_decisions(pairs, scen, truth_minutes, distance, minutes, mode, config)
        scores[f"pathloss/{mode}"] = ndcf(pred, y)
    best = min(modes, key=lambda m: scores[f"pathloss/{m}"])
    return fit_pathloss(pairs, truth_minutes, distance, minutes, best, config), scores


def decide(
    fit: PathLossFit, pairs: Sequence[PairUnits], distance: float, config: EngineConfig
) -> npt.NDArray[np.bool_]:
    """The fit's decision (expected minutes under its decision calibration ≥ θ) per pair."""
    grid = _pathloss_grid(pairs, fit.offsets, distance, config)
    q = int(np.flatnonzero(np.isclose(A1_GRID, fit.a1_decision))[0])
    return np.asarray(grid[:, q] >= fit.theta)


def _loso_decisions(
    pairs: Sequence[PairUnits],
    scen: npt.NDArray[np.str_],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
    mode: OffsetMode,
    config: EngineConfig,
) -> npt.NDArray[np.bool_]:
    """Each pair decided by a fit on the other scenarios (leave-one-scenario-out)."""
    pred = np.zeros(len(pairs), dtype=bool)
    for s in np.unique(scen).tolist():
        tr = np.flatnonzero(scen != s).tolist()
        te = np.flatnonzero(scen == s)
        fit = fit_pathloss(
            [pairs[i] for i in tr], truth_minutes[tr], distance, minutes, mode, config
        )
        pred[te] = decide(fit, [pairs[i] for i in te.tolist()], distance, config)
    return pred


def calibration_residual(
    train: Sequence[PairUnits], test: Sequence[PairUnits], mode: OffsetMode
) -> FloatArray:
    """Residuals on ``test`` units of ``level ~ a + b·log10 d`` with offsets, both fitted on ``train``."""
    offsets = fit_offsets(train, mode)

    def columns(pairs: Sequence[PairUnits]) -> tuple[FloatArray, FloatArray]:
        lv, ld = [], []
        for p in pairs:
            m = np.isfinite(p.truth)
            lv.append(shifted(p, offsets)[m, 0])
            ld.append(np.log10(np.maximum(p.truth[m], 0.1)))
        return np.concatenate(lv), np.concatenate(ld)

    level, logd = columns(train)
    coef = np.linalg.lstsq(np.column_stack((np.ones(level.size), logd)), level, rcond=None)[0]
    level, logd = columns(test)
    return np.asarray(level - (coef[0] + coef[1] * logd), dtype=np.float64)


def choose_offsets_by_residual(
    pairs: Sequence[PairUnits],
    scenarios: Sequence[str],
    modes: Sequence[OffsetMode] = OFFSET_MODES,
) -> tuple[OffsetMode, dict[str, float]]:
    """The offset mode whose calibration generalises best: smallest rms residual of the level
    against log-distance on inner held-out scenarios (inner leave-one-scenario-out)."""
    scen = np.asarray(scenarios)
    scores: dict[str, float] = {}
    for mode in modes:
        res = [
            calibration_residual(
                [pairs[i] for i in np.flatnonzero(scen != s).tolist()],
                [pairs[i] for i in np.flatnonzero(scen == s).tolist()],
                mode,
            )
            for s in np.unique(scen).tolist()
        ]
        r = np.concatenate(res)
        scores[f"residual/{mode}"] = float(np.sqrt((r**2).mean())) if r.size else float("inf")
    best = min(modes, key=lambda m: scores[f"residual/{m}"])
    return best, scores


def tracked_only(p: PairUnits) -> PairUnits:
    """The pair with untracked units (no camera distance) weighted 0: the tracking oracle."""
    return replace(p, weight_s=np.where(np.isfinite(p.truth), p.weight_s, 0.0))


def bounds(
    pairs: Sequence[PairUnits],
    scenarios: Sequence[str],
    truth_minutes: FloatArray,
    distance: float,
    minutes: float,
    config: EngineConfig,
) -> dict[str, float]:
    """nDCF bounds that explain what the held-out numbers can reach (diagnostics, not results).

    * ``in-sample/<mode>``: the path-loss engine with offsets, 1-m attenuation and threshold all
      tuned on every scenario including the scored one (optimistic: no generalisation cost);
    * ``tracking-oracle/<mode>``: leave-one-scenario-out, but counting only the units that have
      camera ground truth, i.e. an engine that knew when the cameras lost the people (the truth
      minutes count tracked units only, exposure.md §7.2 caveat).
    """
    y = truth_minutes >= minutes
    out: dict[str, float] = {}
    scen = np.asarray(scenarios)
    for mode in ("none", "rx_tx_model"):
        fit = fit_pathloss(pairs, truth_minutes, distance, minutes, mode, config)
        out[f"in-sample/{mode}"] = ndcf(decide(fit, pairs, distance, config), y)
        tracked = [tracked_only(p) for p in pairs]
        pred = _loso_decisions(tracked, scen, truth_minutes, distance, minutes, mode, config)
        out[f"tracking-oracle/{mode}"] = ndcf(pred, y)
    return out
