"""The Herald static-distance track (bench/accuracy/static.py) on logs the tests make."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.accuracy.data import HeraldLog
from bench.accuracy.metrics import ndcf
from bench.accuracy.static import (
    MIN_SAMPLES,
    THRESHOLDS_M,
    Windows,
    evaluate_static,
    static_decisions,
    windows_of_logs,
)


def test_windows_are_60_s_of_one_distance_and_skip_parked_and_thin_ones() -> None:
    t = np.arange(0.0, 200.0, 0.1)  # ten reports a second from the log's start
    distance = np.select([t < 90, t < 180], [0.5, 1.0], 0.0)  # 0 m: the robot parked
    rssi = np.where(t < 90, -60.0, -70.0) - np.arange(t.size) % 3  # median -61 / -71
    thin = 200.0 + np.arange(MIN_SAMPLES - 1) * 0.1  # too few reports for a median
    enough = 210.0 + np.arange(MIN_SAMPLES) * 0.1
    start = 1_600_000_030.0  # not on a minute: windows count from the log's first report
    log = HeraldLog(
        "Pixel 2",
        "Galaxy S8",
        start + np.r_[t, thin, enough],
        np.r_[rssi, np.full(thin.size, -80.0), np.full(enough.size, -85.0)],
        np.r_[distance, np.full(thin.size, 2.0), np.full(enough.size, 3.0)],
    )
    empty = HeraldLog("Pixel 2", "Moto", np.zeros(0), np.zeros(0), np.zeros(0))
    w = windows_of_logs([log, empty])
    # The minute grid is the log's: 0-60 and 60-90 s at 0.5 m, 90-120 and 120-180 s at 1 m.
    assert w.distance.tolist() == [0.5, 0.5, 1.0, 1.0, 3.0]
    assert w.median_rssi.tolist() == [-61.0, -61.0, -71.0, -71.0, -85.0]
    assert w.max_rssi.tolist() == [-60.0, -60.0, -70.0, -70.0, -85.0]
    assert set(w.receiver.tolist()) == {"Pixel 2"}
    assert set(w.transmitter.tolist()) == {"Galaxy S8"}


def _world(offsets: dict[str, float] | None = None) -> Windows:
    """Three phone models hearing each other at 0.5-4 m, 70 dB of path loss at 1 m plus a
    per-receiver offset (by default 0, +4 and -6 dB), 2 dB of noise."""
    rng = np.random.default_rng(3)
    offsets = {"A": 0.0, "B": 4.0, "C": -6.0} if offsets is None else offsets
    rows: list[tuple[str, str, float, float]] = []
    for rx, off in offsets.items():
        for tx in offsets:
            if tx == rx:
                continue
            for d in np.tile([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0], 4):
                rssi = -70.0 - 20.0 * np.log10(d) + off + rng.normal(0.0, 2.0)
                rows.append((rx, tx, d, rssi))
    r = np.array([row[3] for row in rows])
    return Windows(
        np.array([row[0] for row in rows]),
        np.array([row[1] for row in rows]),
        np.array([row[2] for row in rows]),
        r,
        r + 1.0,
    )


def test_each_model_is_decided_by_fits_that_never_saw_it() -> None:
    w = _world()
    eng, nai = static_decisions(w, 1.8)
    # Relabel every window model C took part in: C's decisions cannot move (its labels and
    # its partners' labels never enter its fit), while the other models' fits see the change.
    involves_c = (w.receiver == "C") | (w.transmitter == "C")
    moved = replace(w, distance=np.where(involves_c, w.distance * 4.0, w.distance))
    eng2, nai2 = static_decisions(moved, 1.8)
    c = w.receiver == "C"
    assert eng2[c].tolist() == eng[c].tolist()
    assert nai2[c].tolist() == nai[c].tolist()
    assert eng2[~c].tolist() != eng[~c].tolist()
    assert nai2[~c].tolist() != nai[~c].tolist()


def test_static_report_sums_the_thresholds_and_beats_chance_on_clean_data() -> None:
    w = _world({"A": 0.0, "B": 0.0, "C": 0.0})
    out = evaluate_static(w)
    for method in ("engine", "naive"):
        per_distance = [out[method][f"{d:g} m"] for d in THRESHOLDS_M]
        for d, score in zip(THRESHOLDS_M, per_distance, strict=True):
            decided = static_decisions(w, d)[0 if method == "engine" else 1]
            assert score == ndcf(decided, w.distance <= d)  # 3.0 m windows count as within
        assert out[method]["total"] == pytest.approx(sum(per_distance))
        assert out[method]["total"] < 1.5  # always-yes or always-no scores 3
    assert out["windows"] == {"n": float(w.distance.size), "models": 3.0}
