"""Invariants of the contact engine and the CSV parser on generated inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluezoned.exposure.contacts import (
    BAND_NAMES,
    DISTANCE_BANDS_M,
    EngineConfig,
    analyze_contact,
)
from bluezoned.exposure.rssi_csv import parse_rssi_csv

rows = st.lists(
    st.tuples(
        st.floats(0, 7200, allow_nan=False),
        st.integers(-110, -30),
        st.one_of(st.none(), st.integers(-40, 10)),
    ),
    min_size=1,
    max_size=200,
)


@settings(max_examples=40, deadline=None)
@given(rows, st.sampled_from(["auto", "dense", "sparse"]), st.floats(0.5, 5.0))
def test_engine_invariants(
    data: list[tuple[float, int, int | None]], regime: str, d: float
) -> None:
    t = np.array([r[0] for r in data]) + 1.7e9
    rssi = np.array([r[1] for r in data], dtype=float)
    tx = np.array([np.nan if r[2] is None else r[2] for r in data], dtype=float)
    c = analyze_contact(t, rssi, tx, config=EngineConfig(distance_m=d, regime=regime))  # type: ignore[arg-type]
    assert c.start <= c.end
    assert 0.0 <= c.minutes_close <= c.observed_minutes + 1e-9
    assert 0.0 <= c.score <= 1.0
    assert 0.0 <= c.confidence <= 1.0
    assert 0.0 <= c.coverage <= 1.0
    assert abs(sum(c.band_probabilities) - 1.0) < 1e-9
    assert sum(c.bucket_seconds) == pytest.approx(c.observed_minutes * 60.0)
    assert c.min_att <= c.typical_att <= c.p90_att
    within = [c.minutes_within[k][0] for k in sorted(c.minutes_within)]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(within))
    # The band holds the median distance, so it agrees with the minutes within 1, 2 and 3 m.
    shares = [c.minutes_within[e][0] / c.observed_minutes for e in DISTANCE_BANDS_M]
    if all(abs(share - 0.5) > 1e-6 for share in shares):
        assert c.distance_band == BAND_NAMES[sum(share < 0.5 for share in shares)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text("abcdef0123456789:-", min_size=1, max_size=20),
            st.floats(0, 2e9, allow_nan=False),
            st.integers(-127, 126),
        ),
        max_size=50,
    )
)
def test_csv_round_trip(data: list[tuple[str, float, int]]) -> None:
    lines = ["id,t,rssi", *(f"{i},{t!r},{r}" for i, t, r in data)]
    table = parse_rssi_csv(lines)
    assert table.ids.tolist() == [i for i, _, _ in data]
    assert table.t.tolist() == [t for _, t, _ in data]
    assert table.rssi.tolist() == [float(r) for _, _, r in data]
