"""Synthetic data and reference computations shared by the bench/accuracy tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bench.accuracy.metrics import best_threshold
from bench.accuracy.tracks import Pair

RX_OFFSET = {"RX-A": 6.0, "RX-B": -6.0}
TX_OFFSET = {"TX-A": 4.0, "TX-B": -4.0}
"""Planted per-model offsets (dB) of the synthetic receivers and transmitters."""


def track_pairs() -> list[Pair]:
    """Three scenarios of 12 dense contacts each, at 0.8 or 3.5 m, with the planted offsets."""
    rng = np.random.default_rng(7)
    out: list[Pair] = []
    for s in ("a", "b", "c"):
        for k in range(12):
            d = 0.8 if k % 2 else 3.5
            rx, tx = ("RX-A", "TX-A") if k % 3 else ("RX-B", "TX-B")
            minutes = int(rng.integers(8, 30))
            t = 1_700_000_040.0 + np.arange(0.0, minutes * 60.0, 2.0)
            p0 = -60.0 + (RX_OFFSET[rx] + TX_OFFSET[tx]) / 2
            rssi = np.round(p0 - 20 * np.log10(d) + rng.normal(0, 3, t.size))
            med = np.array([np.median(rssi[i * 30 : (i + 1) * 30]) for i in range(minutes)])
            out.append(
                Pair(
                    s,
                    t,
                    rssi,
                    np.full(t.size, -20.0),
                    None,
                    np.full(minutes, 60.0),
                    med,
                    {1.5: float(minutes) if d <= 1.5 else 0.0, 2.0: float(minutes) * (d <= 2.0)},
                    (k, 100 + k),
                    np.full(t.size, d),
                    (rx, tx),
                )
            )
    return out


def held_out_decisions(
    score: npt.NDArray[np.float64],
    truth: npt.NDArray[np.bool_],
    groups: npt.NDArray[np.str_],
    grid: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """The leave-one-group-out reference: each group's ``score >= t`` with the t of ``grid``
    that minimises nDCF on the other groups."""
    pred = np.zeros(truth.size, dtype=bool)
    for g in np.unique(groups).tolist():
        train, test = groups != g, groups == g
        pred[test] = score[test] >= best_threshold(score[train], truth[train], grid)
    return pred
