"""contacts.running_median: the vectorised window median equals the per-window definition
(the one-np.median-per-window baseline that bench/bench_analyze.py times it against)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bluezoned.exposure.contacts as contacts
from bench.bench_analyze import per_window_median
from bluezoned.exposure.contacts import running_median


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 900.0), min_size=3, max_size=80),
    seed=st.integers(0, 2**32 - 1),
    width=st.sampled_from([60.0, 600.0, 1800.0, 7200.0]),
)
def test_equals_the_median_of_each_window(gaps: list[float], seed: int, width: float) -> None:
    t = 1_700_000_000.0 + np.cumsum(gaps)
    x = np.random.default_rng(seed).normal(60.0, 8.0, t.size).round(1)  # ties included
    np.testing.assert_allclose(running_median(t, x, width), per_window_median(t, x, width))


def test_small_chunks_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    t = np.arange(0.0, 6000.0, 60.0)
    x = np.random.default_rng(1).normal(60.0, 8.0, t.size)
    whole = running_median(t, x, 1800.0)
    monkeypatch.setattr(contacts, "RUNNING_MEDIAN_CHUNK", 7)  # a few rows per step
    np.testing.assert_array_equal(running_median(t, x, 1800.0), whole)
    np.testing.assert_allclose(whole, per_window_median(t, x, 1800.0))


def test_short_inputs_and_zero_width_are_returned_unchanged() -> None:
    x = np.array([3.0, 1.0])
    assert running_median(np.array([0.0, 1.0]), x, 1800.0) is x
    y = np.array([3.0, 1.0, 2.0])
    assert running_median(np.array([0.0, 1.0, 2.0]), y, 0.0) is y
    assert running_median(np.array([0.0, 1.0, 2.0]), y, 1800.0).tolist() == [2.0, 2.0, 2.0]
