"""Static-distance track (exposure.md §7.2 track 4) on Herald: 60-s windows, distance-threshold
nDCF at 1.2/1.8/3.0 m, leave-one-receiver-model-out (the situation of an unknown Linux node)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from bench.accuracy.data import FloatArray, HeraldLog, herald_logs
from bench.accuracy.metrics import BoolArray, best_threshold, ndcf
from bluezoned.const import FLEET_TX_REFERENCE_DB
from bluezoned.exposure.contacts import PathLossModel, p_within

THRESHOLDS_M: Final = (1.2, 1.8, 3.0)
WINDOW_S: Final = 60
MIN_SAMPLES: Final = 10
"""A window needs this many reports to have a median at all (Herald logs several per second)."""
NAIVE_GRID_DBM: Final = np.arange(-110.0, -30.0, 1.0)
"""The naive rule's median-RSSI thresholds, tuned per fold."""


@dataclass(frozen=True, slots=True)
class Windows:
    """60-s windows: receiver and transmitter names, true distance (m), median and max RSSI."""

    receiver: np.ndarray
    transmitter: np.ndarray
    distance: FloatArray
    median_rssi: FloatArray
    max_rssi: FloatArray


def load_herald_windows() -> Windows:
    """Every Herald log in ../shared cut into windows (:func:`windows_of_logs`)."""
    return windows_of_logs(herald_logs())


def windows_of_logs(logs: Iterable[HeraldLog]) -> Windows:
    """Cut each log into 60-s windows of constant distance with at least :data:`MIN_SAMPLES`
    reports (parked distance 0 dropped); a distance change starts a new window."""
    rx: list[str] = []
    tx: list[str] = []
    dist: list[float] = []
    med: list[float] = []
    mx: list[float] = []
    for log in logs:
        if not log.t.size:
            continue
        t, r, d = log.t, log.rssi, log.distance
        run = np.r_[0, np.cumsum(np.diff(d) != 0)]
        key = run * 100_000 + (t - t[0]) // WINDOW_S
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        for g in np.flatnonzero(counts >= MIN_SAMPLES):
            sel = inv == g
            if d[sel][0] <= 0:
                continue
            rx.append(log.receiver)
            tx.append(log.transmitter)
            dist.append(float(d[sel][0]))
            med.append(float(np.median(r[sel])))
            mx.append(float(r[sel].max()))
    return Windows(np.array(rx), np.array(tx), np.array(dist), np.array(med), np.array(mx))


def static_decisions(w: Windows, d: float) -> tuple[BoolArray, BoolArray]:
    """(engine, naive) "within ``d``" per window, leave-one-receiver-model-out: each model's
    windows are decided by a 1-m attenuation and an RSSI threshold fitted on the windows in
    which that model is neither receiver nor transmitter."""
    level = FLEET_TX_REFERENCE_DB - w.max_rssi
    truth = w.distance <= d
    eng = np.zeros(truth.size, dtype=bool)
    nai = np.zeros(truth.size, dtype=bool)
    for m in np.unique(w.receiver):
        test = w.receiver == m
        train = (w.receiver != m) & (w.transmitter != m)
        model = PathLossModel()
        a1 = float(np.mean(level[train] - 10 * model.exponent * np.log10(w.distance[train])))
        fitted = PathLossModel(att_at_1m=a1, exponent=model.exponent, sigma_db=model.sigma_db)
        eng[test] = p_within(level[test], d, fitted) >= 0.5
        th = best_threshold(w.median_rssi[train], truth[train], NAIVE_GRID_DBM)
        nai[test] = w.median_rssi[test] >= th
    return eng, nai


def evaluate_static(w: Windows) -> dict[str, dict[str, float]]:
    """nDCF per threshold and in total for the engine's distance decision and the naive threshold."""
    out: dict[str, dict[str, float]] = {"engine": {}, "naive": {}}
    models = np.unique(w.receiver)
    for d in THRESHOLDS_M:
        truth = w.distance <= d
        eng, nai = static_decisions(w, d)
        out["engine"][f"{d:g} m"] = ndcf(eng, truth)
        out["naive"][f"{d:g} m"] = ndcf(nai, truth)
    for k in out:
        out[k]["total"] = sum(out[k].values())
    out["windows"] = {"n": float(w.distance.size), "models": float(models.size)}
    return out
