"""The distance metric of exposure.md §7.1 on the DP-3T tracks: "too close" per windowed segment.

Each unit of a pair (a minute with dense scanning, a scan with GAEN's) that the cameras tracked
is one segment, its truth the median camera distance. The engine says "within x" when its
distance estimate is: the unit's smoothed minimum attenuation, less the pair's per-model
offsets, through the path-loss model whose 1-m attenuation is fitted on the training
scenarios (the median of P(distance <= x) is 0.5 exactly there). The naive rule thresholds the
unit's median RSSI, tuned on the training scenarios. Leave-one-scenario-out, nDCF at 1.2, 1.8
and 3.0 m and their sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import numpy as np

from bench.accuracy.data import FloatArray
from bench.accuracy.learned import (
    PairUnits,
    choose_offsets_by_residual,
    fit_offsets,
    shifted,
)
from bench.accuracy.metrics import best_threshold, ndcf
from bluezoned.exposure.contacts import EngineConfig, p_within

THRESHOLDS_M: Final = (1.2, 1.8, 3.0)
NAIVE_GRID: Final = np.arange(-110.0, -29.0, 1.0)
LEVEL_GRID: Final = np.arange(0.0, 121.0, 1.0)


def held_out_levels(
    units: Sequence[PairUnits], scenarios: Sequence[str], config: EngineConfig
) -> tuple[FloatArray, FloatArray]:
    """Per unit (all pairs' units in order): the engine's level less its pair's model offsets, and
    the path-loss model's 1-m attenuation, both fitted on the other scenarios only."""
    scen = np.asarray(scenarios)
    owner = np.concatenate([np.full(u.truth.size, i) for i, u in enumerate(units)])
    level = np.full(owner.size, np.nan)
    fitted = np.zeros(owner.size)
    for s in np.unique(scen).tolist():
        train = [units[i] for i in np.flatnonzero(scen != s).tolist()]
        mode, _ = choose_offsets_by_residual(train, scen[scen != s].tolist())
        offsets = fit_offsets(train, mode)
        tr_level = np.concatenate([shifted(u, offsets)[:, 0] for u in train])
        tr_truth = np.concatenate([u.truth for u in train])
        ok = np.isfinite(tr_truth)
        # The model's exponent is kept; its 1-m attenuation is the median residual.
        a1 = float(
            np.median(
                tr_level[ok]
                - 10.0 * config.model.exponent * np.log10(np.maximum(tr_truth[ok], 0.1))
            )
        )
        for i in np.flatnonzero(scen == s).tolist():
            sel = owner == i
            level[sel] = shifted(units[i], offsets)[:, 0]
            fitted[sel] = a1
    return level, fitted


def evaluate_distance(
    units: Sequence[PairUnits],
    median_rssi: Sequence[FloatArray],
    scenarios: Sequence[str],
    config: EngineConfig,
) -> dict[str, dict[str, float]]:
    """nDCF per threshold and in total, engine and naive, over every tracked unit of every pair."""
    scen = np.asarray(scenarios)
    owner = np.concatenate([np.full(u.truth.size, i) for i, u in enumerate(units)])
    truth = np.concatenate([u.truth for u in units])
    tracked = np.isfinite(truth)
    rssi = np.concatenate(median_rssi)
    unit_scen = scen[owner]
    level, fitted = held_out_levels(units, scenarios, config)
    out: dict[str, dict[str, float]] = {"engine": {}, "engine, tuned": {}, "naive": {}}
    for d in THRESHOLDS_M:
        close = truth <= d
        engine = np.zeros(truth.size, dtype=bool)
        tuned = np.zeros(truth.size, dtype=bool)
        naive = np.zeros(truth.size, dtype=bool)
        for s in np.unique(scen).tolist():
            test = tracked & (unit_scen == s)
            train = tracked & (unit_scen != s)
            for a1 in np.unique(fitted[test]).tolist():
                sel = test & (fitted == a1)
                model = replace(config.model, att_at_1m=a1)
                engine[sel] = p_within(level[sel], d, model) >= 0.5
            th = best_threshold(rssi[train], close[train], NAIVE_GRID)
            naive[test] = rssi[test] >= th
            # the same tuning on the engine's statistic (attenuation: close is low)
            lt = best_threshold(-level[train], close[train], -LEVEL_GRID[::-1])
            tuned[test] = -level[test] >= lt
        out["engine"][f"{d:g} m"] = ndcf(engine[tracked], close[tracked])
        out["engine, tuned"][f"{d:g} m"] = ndcf(tuned[tracked], close[tracked])
        out["naive"][f"{d:g} m"] = ndcf(naive[tracked], close[tracked])
    for k in ("engine", "engine, tuned", "naive"):
        out[k]["total"] = sum(out[k].values())
    out["segments"] = {"n": float(tracked.sum())}
    return out
