"""The simulator's metal model and its validation table (exposure.md §10 rule 1)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.accuracy.simulator import (
    DP3T_P0_DBM,
    SimParams,
    ValidationRow,
    _reverberant_db,
    simulate_episode,
    simulate_set,
    validation_stats,
)


def test_reverberant_gain_is_free_space_near_and_flat_far() -> None:
    d = np.array([0.1, 0.2, 10.0, 100.0])
    g = _reverberant_db(d, 0.0, 1.0)
    # near: −20·log10(d) (n = 2) plus a little diffuse power; far: the diffuse floor, 0 dB at d_c 1 m
    assert g[0] == pytest.approx(20.0, abs=0.1)
    assert g[1] - g[0] == pytest.approx(-20 * np.log10(2), abs=0.2)
    assert g[3] == pytest.approx(0.0, abs=0.01)
    # the body shadows only the direct ray: 20 dB of body loss costs < 3 dB beyond d_c
    assert (
        _reverberant_db(np.array([2.0]), 0.0, 1.0)[0]
        - _reverberant_db(np.array([2.0]), 20.0, 1.0)[0]
        < 1.0
    )


def test_validation_row_tolerance() -> None:
    assert ValidationRow("x", 1.2, "1.2", 0.9, 1.5).ok
    assert not ValidationRow("x", 1.6, "1.2", 0.9, 1.5).ok


def test_validation_stats_small_sets() -> None:
    base = SimParams()
    dp3t = simulate_set(11, replace(base, tx_sd=3.0, rx_sd=2.0, p0_dbm=DP3T_P0_DBM), per_kind=4)
    fleet = simulate_set(12, base, per_kind=4)
    rng = np.random.default_rng(13)
    metal = [simulate_episode(rng, "metal", replace(base, metal=True)) for _ in range(12)]
    rows = validation_stats(dp3t, fleet, metal)
    assert rows[0].statistic == "sample path-loss exponent n"
    assert len(rows) == 7
    for r in rows:
        assert np.isfinite(r.simulator) or "pocket" in r.statistic, r
    by = {r.statistic: r.simulator for r in rows}
    assert 0.0 < by["sample path-loss exponent n"] < 3.0
    assert 2.0 < by["fading sd within 60 s, static (dB)"] < 8.0
    assert -1.0 <= by["metal r(mean attenuation, distance)"] <= 1.0
