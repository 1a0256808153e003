"""The DP-3T tracks of exposure.md §7.2: per ordered pair, truth minutes, baseline, CWA rule, engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from bench.accuracy.data import (
    DP3T_SCENARIOS,
    EXP34_SCENARIOS,
    FloatArray,
    load_dp3t,
)
from bench.accuracy.metrics import Decision, decision
from bluezoned.exposure.contacts import (
    EngineConfig,
    analyze_contact,
    attenuation,
    exposure_windows,
    gaen_scan_weights,
    observation_units,
    p_within,
    scan_ids,
)
from bluezoned.exposure.presets import CWA_V2, RISK_HIGH
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
A1_GRID: Final = np.arange(40.0, 80.5, 2.5)
THETA_GRID: Final = np.arange(0.0, 40.5, 0.5)


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


def dense_pairs() -> list[Pair]:
    """DP-3T exp05: minute bins; truth = minutes whose median camera distance ≤ d."""
    pairs: list[Pair] = []
    for scen in DP3T_SCENARIOS:
        data = load_dp3t("exp05-epfl-soldiers", scen)
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
                )
            )
    return pairs


def gaen_pairs() -> list[Pair]:
    """DP-3T exp34: receiver scans (gap > 20 s) weighted as GAEN; truth = weighted close scans."""
    pairs: list[Pair] = []
    for scen in EXP34_SCENARIOS:
        data = load_dp3t("exp34-epfl-soldiers", scen)
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
                )
            )
    return pairs


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


@dataclass(frozen=True, slots=True)
class TrackResult:
    """The three methods side by side for one (track, d, T)."""

    track: str
    distance: float
    minutes: float
    engine: MethodResult
    naive: MethodResult
    cwa: MethodResult
    naive_oracle_ndcf: float
    symmetric_ndcf: dict[str, float]
    """nDCF per method on unordered pairs: close when either direction says so, truth = max."""


def engine_base_config(track: str) -> EngineConfig:
    """The engine's scanning regime and calibration inputs per track (TX as the protocol gives it)."""
    if track == "exp34":
        return EngineConfig(regime="sparse", rx_correction=SAMSUNG_RX_CORRECTION)
    return EngineConfig(regime="dense")


def evaluate(track: str, pairs: Sequence[Pair], distance: float, minutes: float) -> TrackResult:
    """Leave-one-scenario-out: engine calibration and both thresholds tuned on the other scenarios."""
    scen = np.array([p.scenario for p in pairs])
    truth_min = np.array([p.truth[distance] for p in pairs])
    y = truth_min >= minutes
    base_cfg = replace(engine_base_config(track), distance_m=distance, minutes=minutes)

    # Engine: expected minutes for every calibration of the 1-m attenuation (cheap: units once).
    expected = np.zeros((len(pairs), A1_GRID.size))
    for i, p in enumerate(pairs):
        att, _ = attenuation(
            p.rssi, p.tx, default_tx=base_cfg.default_tx_power, rx_correction=base_cfg.rx_correction
        )
        units = observation_units(p.t, att, base_cfg, p.scan_seconds)
        for j, a1 in enumerate(A1_GRID):
            prob = p_within(units.level, distance, replace(base_cfg.model, att_at_1m=float(a1)))
            expected[i, j] = float((units.weight_s * prob).sum()) / 60.0
    # Naive: minutes (or weighted scans) whose median RSSI ≥ threshold.
    naive_min = np.array(
        [
            [float(p.unit_weight_s[p.unit_median_rssi >= th].sum()) / 60.0 for th in BASELINE_GRID]
            for p in pairs
        ]
    )
    eng_pred = np.zeros(len(pairs), dtype=bool)
    eng_est = np.zeros(len(pairs))
    nai_pred = np.zeros(len(pairs), dtype=bool)
    nai_est = np.zeros(len(pairs))
    for s in np.unique(scen):
        test, train = scen == s, scen != s
        j = int(np.argmin(np.abs(expected[train] - truth_min[train, None]).mean(axis=0)))
        _, jd, theta = min(
            (_ndcf(expected[train, q] >= th, y[train]), q, float(th))
            for q in range(A1_GRID.size)
            for th in THETA_GRID
        )
        cfg = replace(
            base_cfg,
            model=replace(base_cfg.model, att_at_1m=float(A1_GRID[j])),
            decision_model=replace(base_cfg.model, att_at_1m=float(A1_GRID[jd])),
            decision_minutes=theta,
        )
        for i in np.flatnonzero(test).tolist():
            p = pairs[i]
            c = analyze_contact(p.t, p.rssi, p.tx, config=cfg, scan_seconds=p.scan_seconds)
            eng_pred[i] = c.tc4tl
            eng_est[i] = c.minutes_close
        k = int(
            np.argmin(
                [_ndcf(naive_min[train, q] >= minutes, y[train]) for q in range(BASELINE_GRID.size)]
            )
        )
        nai_pred[test] = naive_min[test, k] >= minutes
        nai_est[test] = naive_min[test, k]
    oracle = min(_ndcf(naive_min[:, q] >= minutes, y) for q in range(BASELINE_GRID.size))

    cwa_pred = np.zeros(len(pairs), dtype=bool)
    cwa_est = np.zeros(len(pairs))
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
    y_sym = np.array([truth_min[g].max() >= minutes for g in members])
    symmetric = {
        name: _ndcf(np.array([bool(pred[g].any()) for g in members]), y_sym)
        for name, pred in (("engine", eng_pred), ("naive", nai_pred), ("cwa", cwa_pred))
    }
    return TrackResult(
        track,
        distance,
        minutes,
        _method(eng_pred, eng_est, y, truth_min),
        _method(nai_pred, nai_est, y, truth_min),
        _method(cwa_pred, cwa_est, y, truth_min, "weighted minutes"),
        oracle,
        symmetric,
    )


def _ndcf(pred: np.ndarray, y: np.ndarray) -> float:
    from bench.accuracy.metrics import ndcf

    return ndcf(pred, y)


def _method(
    pred: np.ndarray, est: FloatArray, y: np.ndarray, truth: FloatArray, note: str = ""
) -> MethodResult:
    err = est - truth
    return MethodResult(decision(pred, y), float(np.abs(err).mean()), float(err.mean()), note)
