"""Leith & Farrell tram histograms (exposure.md §7.2 track 3): rules on attenuation-minute histograms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from bench.accuracy.data import Tram
from bluezoned.exposure.contacts import PathLossModel, p_within
from bluezoned.exposure.presets import CWA_V2

CLOSE_M: Final = 2.0
NAIVE_BELOW_DB: Final = 66.0
"""exposure.md §4.3: "≥ 15 min below 66 dB" is the reference naive rule (TPR 0.32, FPR 0.16)."""
CWA_TRV: Final = 1.0
"""Neutral transmission risk value (TRL 5), as on the DP-3T tracks."""
SWISS_JUNE_2020: Final = ((50.0, 1.0), (55.0, 0.5))
"""SwissCovid's GAEN v1 attenuation-duration rule as Leith & Farrell evaluated it (PLoS ONE
15(9):e0239943): minutes below 50 dB plus half the minutes at 50-55 dB, at least 15."""
GERMAN_JUNE_2020: Final = ((55.0, 1.0), (63.0, 0.5))
"""Corona-Warn-App's v1 attenuationDuration (``cwa_config.txt``, 22 June 2020): thresholds
55/63 dB, weights 1.0 and 0.5, at least 15 weighted minutes."""
ITALIAN_MAX_ATT_DB: Final = 73.0
"""Immuni's v1 configuration (``immuni_config_settings.txt``, 22 June 2020) scores 0 for an
attenuation above 73 dB (attenuation bucket 0) and for 15 minutes or less (duration buckets
0-3): an alert needs more than 15 min at a mean attenuation of at most 73 dB."""


@dataclass(frozen=True, slots=True)
class TramRule:
    """One rule's true- and false-positive rates at ≤ 2 m over the 72 rows."""

    name: str
    tpr: float
    fpr: float


def evaluate_tram(tram: Tram, minutes: float = 15.0) -> tuple[list[TramRule], float]:
    """TPR/FPR of the naive rule, CWA v2, the Swiss, German and Italian rules of June 2020 and
    the engine, and r(mean attenuation, distance)."""
    mids = (tram.edges[:-1] + tram.edges[1:]) / 2.0
    upper = tram.edges[1:]
    close = tram.distance <= CLOSE_M
    total = tram.minutes.sum(axis=1)
    mean_att = (tram.minutes * mids).sum(axis=1) / np.maximum(total, 1e-9)
    heard = total > 0  # two rows recorded no minutes at all: no mean attenuation
    r = float(np.corrcoef(mean_att[heard], tram.distance[heard])[0, 1])
    naive = tram.minutes[:, upper <= NAIVE_BELOW_DB].sum(axis=1) >= minutes
    weights = np.zeros(mids.size)
    for wr in CWA_V2.attenuation_weights:
        for i, a in enumerate(mids):
            if weights[i] == 0 and wr.range.contains(float(a)):
                weights[i] = wr.weight
    cwa = (tram.minutes @ weights) * CWA_TRV >= 9.0
    swiss = _weighted_minutes(tram.minutes, mids, SWISS_JUNE_2020) >= minutes
    german = _weighted_minutes(tram.minutes, mids, GERMAN_JUNE_2020) >= minutes
    italian = heard & (total > minutes) & (mean_att <= ITALIAN_MAX_ATT_DB)
    engine = tram.minutes @ p_within(mids, CLOSE_M, PathLossModel()) >= minutes
    loo = _engine_leave_one_out(tram.minutes, mids, close)
    rules = [
        TramRule(f"naive >= {minutes:g} min below {NAIVE_BELOW_DB:g} dB", *_rates(naive, close)),
        TramRule("CWA v2 (1.15), TRV 1.0", *_rates(cwa, close)),
        TramRule("Swiss, June 2020: <50 dB + 0.5 x 50-55 dB >= 15 min", *_rates(swiss, close)),
        TramRule("German, June 2020: <55 dB + 0.5 x 55-63 dB >= 15 min", *_rates(german, close)),
        TramRule("Italian, June 2020: > 15 min at mean <= 73 dB", *_rates(italian, close)),
        TramRule(
            f"engine E[min within 2 m] >= {minutes:g} (default model)", *_rates(engine, close)
        ),
        TramRule(
            "engine, 1-m attenuation and threshold tuned leave-one-row-out", *_rates(loo, close)
        ),
    ]
    return rules, r


def _weighted_minutes(
    minutes: np.ndarray, mids: np.ndarray, weights: tuple[tuple[float, float], ...]
) -> np.ndarray:
    """Minutes weighted by the first (upper edge, weight) whose edge exceeds each bin's
    mid-point; bins past the last edge weigh 0 (the histogram's 2-dB bins straddle 55 dB)."""
    w = np.zeros(mids.size)
    for i, mid in enumerate(mids):
        w[i] = next((weight for edge, weight in weights if mid < edge), 0.0)
    return np.asarray(minutes @ w, dtype=np.float64)


def _engine_leave_one_out(minutes: np.ndarray, mids: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Engine weighting with (att_at_1m, minutes threshold) tuned on the other 71 rows."""
    grid_a1 = np.arange(40.0, 80.5, 2.5)
    grid_th = np.arange(0.0, 30.5, 1.0)
    expected = np.stack(
        [minutes @ p_within(mids, CLOSE_M, PathLossModel(att_at_1m=float(a))) for a in grid_a1]
    )
    pred = np.zeros(close.size, dtype=bool)
    for i in range(close.size):
        train = np.arange(close.size) != i
        _, a, th = min(
            (_cost(expected[a, train] >= th, close[train]), a, th)
            for a in range(grid_a1.size)
            for th in grid_th
        )
        pred[i] = expected[a, i] >= th
    return pred


def _cost(pred: np.ndarray, truth: np.ndarray) -> float:
    tpr, fpr = _rates(pred, truth)
    return (1.0 - tpr) + fpr


def _rates(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return float(pred[truth].mean()), float(pred[~truth].mean())
