"""Evaluation helpers of bench/accuracy on small synthetic data (the real datasets are never needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.accuracy.data import TRAM_EDGES, Tram
from bench.accuracy.metrics import (
    _interval,
    auc,
    best_threshold,
    brier,
    cluster_bootstrap_indices,
    decision,
    fit_platt,
    mean_ci,
    ndcf,
    paired_mean_difference,
    paired_ndcf_difference,
    reliability,
)
from bench.accuracy.simulator import (
    SimParams,
    simulate_episode,
    simulate_set,
    surface,
    surface_summary,
)
from bench.accuracy.tram import evaluate_tram

REPO = Path(__file__).resolve().parents[2]


def test_ndcf_is_miss_plus_false_alarm() -> None:
    truth = np.array([True, True, False, False])
    assert ndcf(np.array([True, False, True, False]), truth) == pytest.approx(1.0)
    assert ndcf(truth.copy(), truth) == 0.0
    assert ndcf(np.ones(4, dtype=bool), truth) == 1.0
    d = decision(np.array([True, False, True, False]), truth)
    assert (d.p_miss, d.p_fa, d.precision, d.recall) == (0.5, 0.5, 0.5, 0.5)
    assert d.ndcf_ci[0] <= d.ndcf <= d.ndcf_ci[1]
    assert d.p_miss_ci[0] <= d.p_miss <= d.p_miss_ci[1]
    assert d.p_fa_ci[0] <= d.p_fa <= d.p_fa_ci[1]
    # 4 close, 6 not; 3 hits, 1 miss, 2 false alarms
    truth = np.array([True] * 4 + [False] * 6)
    pred = np.array([True, True, True, False, True, True, False, False, False, False])
    d = decision(pred, truth)
    assert d.n == 10
    assert d.prevalence == 0.4
    assert d.p_miss == 0.25
    assert d.p_fa == pytest.approx(2 / 6)
    assert d.ndcf == pytest.approx(0.25 + 2 / 6)
    assert (d.precision, d.recall) == (0.6, 0.75)
    assert d.f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert decision(np.zeros(4, dtype=bool), np.array([True, False, True, False])).f1 == 0.0


def test_intervals_are_the_central_95_percent() -> None:
    assert _interval(np.arange(1001.0)) == (25.0, 975.0)
    rng = np.random.default_rng(0)
    values = rng.normal(0.0, 1.0, 400)
    lo, hi = mean_ci(values)
    half = 1.96 / np.sqrt(values.size)  # the normal-theory half width of a mean's interval
    assert 0.8 * 2 * half < hi - lo < 1.2 * 2 * half


def test_paired_bootstrap_separates_a_real_difference_from_noise() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(400) < 0.3
    good = np.where(rng.random(400) < 0.9, truth, ~truth)  # 10 % of decisions flipped
    bad = np.where(rng.random(400) < 0.6, truth, ~truth)  # 40 % flipped
    better = paired_ndcf_difference(good, bad, truth)
    assert better.difference == pytest.approx(ndcf(good, truth) - ndcf(bad, truth))
    assert better.ci[1] < 0  # clearly better: the interval excludes 0
    same = paired_ndcf_difference(good, good.copy(), truth)
    assert same.difference == 0.0
    assert same.ci == (0.0, 0.0)
    # two equally good, independent methods: the interval straddles 0
    other = np.where(rng.random(400) < 0.9, truth, ~truth)
    tie = paired_ndcf_difference(good, other, truth)
    assert tie.ci[0] < 0 < tie.ci[1]
    errors_a, errors_b = rng.random(200) + 1.0, rng.random(200)
    mae = paired_mean_difference(errors_a, errors_b)
    assert mae.difference == pytest.approx(float((errors_a - errors_b).mean()))
    assert 0 < mae.ci[0] < mae.ci[1]
    lo, hi = mean_ci(errors_b)
    assert lo < float(errors_b.mean()) < hi


def test_cluster_bootstrap_draws_whole_groups() -> None:
    groups = np.array([0, 0, 1, 1, 2, 2, 7])
    for sample in cluster_bootstrap_indices(groups, n_boot=50):
        assert sample.size >= 3
        drawn = groups[sample]
        for g in (0, 1, 2):  # a pair is drawn whole: both members equally often
            assert (sample == 2 * g).sum() == (sample == 2 * g + 1).sum()
        assert set(drawn.tolist()) <= {0, 1, 2, 7}
    # every item duplicated (two directions of one contact): resampling the items pretends to
    # twice the evidence; resampling the contacts gives the honest, wider interval
    rng = np.random.default_rng(5)
    base = rng.random(150)
    values = np.repeat(base, 2)
    contact = np.repeat(np.arange(150), 2)
    naive = paired_mean_difference(values, np.zeros(300))
    honest = paired_mean_difference(values, np.zeros(300), groups=contact)
    assert naive.difference == honest.difference
    assert honest.ci[1] - honest.ci[0] > 1.25 * (naive.ci[1] - naive.ci[0])


def test_auc_and_threshold() -> None:
    score = np.array([1.0, 2.0, 3.0, 4.0])
    truth = np.array([False, False, True, True])
    assert auc(score, truth) == 1.0
    assert auc(np.zeros(4), truth) == 0.5
    assert best_threshold(score, truth, np.array([0.0, 2.5, 5.0])) == 2.5
    # a score equal to the threshold is a yes: 3.0 separates, 2.0 lets in one false alarm
    assert best_threshold(score, truth, np.array([2.0, 3.0])) == 3.0


def test_platt_fit_recovers_a_planted_logistic() -> None:
    rng = np.random.default_rng(4)
    margin = rng.uniform(-20.0, 20.0, 20_000)
    truth = rng.uniform(size=margin.size) < 1.0 / (1.0 + np.exp(-(-1.0 + 0.3 * margin)))
    a, b = fit_platt(margin, truth)
    assert a == pytest.approx(-1.0, abs=0.1)
    assert b == pytest.approx(0.3, abs=0.02)
    # separable data stays finite (the ridge) and still orders the margin
    margin, truth = np.array([-2.0, -1.0, 1.0, 2.0]), np.array([False, False, True, True])
    a, b = fit_platt(margin, truth)
    assert np.isfinite([a, b]).all()
    assert b > 0
    # ... at the optimum of the ridge-penalised log-likelihood: its gradient vanishes there
    for l2 in (1e-3, 1e-1):
        a, b = fit_platt(margin, truth, l2=l2)
        p = 1.0 / (1.0 + np.exp(-(a + b * margin)))
        gradient = np.array([(p - truth).sum() + l2 * a, ((p - truth) * margin).sum() + l2 * b])
        assert np.abs(gradient).max() < 1e-8


def test_brier_and_reliability() -> None:
    truth = np.array([True, False, True, False])
    assert brier(truth.astype(float), truth) == 0.0
    assert brier(np.full(4, 0.5), truth) == 0.25
    prob = np.array([0.05, 0.1, 0.9, 1.0])
    table = reliability(prob, np.array([False, True, True, True]), bins=5)
    assert [(b.lo, b.hi, b.n) for b in table] == [(0.0, 0.2, 2), (0.8, 1.0, 2)]
    assert table[0].predicted == pytest.approx(0.075)
    assert table[0].observed == 0.5
    assert table[1].observed == 1.0


def test_tram_rules_on_a_made_up_histogram() -> None:
    edges = np.array(
        [48, 50, 52, 54, 56, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 85, 90, 100.0]
    )
    minutes = np.zeros((4, 19))
    minutes[0, 2] = 30  # 30 min at 52-54 dB, 1 m
    minutes[1, 2] = 30  # same, but 3 m away
    minutes[2, 15] = 30  # 30 min at 78-80 dB, 1 m
    minutes[3, 18] = 30  # 30 min at 90-100 dB, 4 m
    rules, r = evaluate_tram(Tram(minutes, edges, np.array([1.0, 3.0, 1.0, 4.0])))
    by_name = {rule.name.split(",")[0].split(" ")[0]: rule for rule in rules}
    naive = rules[0]
    assert (naive.tpr, naive.fpr) == (0.5, 0.5)
    # 52-54 dB: Swiss half weight (15 min), German full weight, Italian (<= 73 dB) alerts
    assert (by_name["Swiss"].tpr, by_name["Swiss"].fpr) == (0.5, 0.5)
    assert (by_name["German"].tpr, by_name["German"].fpr) == (0.5, 0.5)
    assert (by_name["Italian"].tpr, by_name["Italian"].fpr) == (0.5, 0.5)
    minutes[:2, 2] = 29  # below the Swiss 15 weighted minutes, still German and Italian
    rules, _ = evaluate_tram(Tram(minutes, edges, np.array([1.0, 3.0, 1.0, 4.0])))
    by_name = {rule.name.split(",")[0].split(" ")[0]: rule for rule in rules}
    assert by_name["Swiss"].tpr == 0.0
    assert by_name["German"].tpr == 0.5
    assert -1.0 <= r <= 1.0


def test_tram_rules_at_their_edges() -> None:
    """Each June 2020 rule and CWA v2 at the edge of its bins and thresholds (the bins' mid-points
    are 49, 51, ... 73, 75, 77, 79, 82.5, 87.5 and 95 dB)."""
    edges = np.asarray(TRAM_EDGES, dtype=np.float64)
    rows = [  # (bin, minutes, distance)
        (8, 15.0, 1.0),  # A: 64-66 dB, naive's last bin; CWA weight 1 (15 >= 9); not > 15 min
        (9, 15.0, 3.0),  # B: 66-68 dB, past naive's bins; CWA yes
        (7, 9.0, 1.0),  # C: mid 63, CWA weight 1.0: exactly 9; German's 0.5 ends below 63
        (1, 30.0, 1.0),  # D: mid 51, Swiss half weight: exactly 15; all but the engine's edges
        (12, 16.0, 3.0),  # E: mid 73, Italian's last mean; CWA weight 0.1
        (13, 16.0, 4.0),  # F: mid 75, past Italian's 73 dB
        (4, 30.0, 2.0),  # G: mid 57, German half weight: exactly 15; Swiss 0; 2.0 m is close
        (0, 0.0, 1.0),  # H: never heard
        (3, 30.0, 3.0),  # I: mid 55, on the Swiss and German 55-dB edge: Swiss 0, German 0.5
    ]
    minutes = np.zeros((len(rows), edges.size - 1))
    for i, (b, m, _) in enumerate(rows):
        minutes[i, b] = m
    distance = np.array([d for _, _, d in rows])
    rules, r = evaluate_tram(Tram(minutes, edges, distance))
    rates = {rule.name.split(" ")[0].rstrip(","): (rule.tpr, rule.fpr) for rule in rules[:5]}
    # close rows: A C D G H (5); far rows: B E F I (4)
    assert rates == {
        "naive": (3 / 5, 1 / 4),  # A D G; I
        "CWA": (4 / 5, 2 / 4),  # A C D G; B I
        "Swiss": (1 / 5, 0.0),  # D
        "German": (2 / 5, 1 / 4),  # D G; I
        "Italian": (2 / 5, 2 / 4),  # D G; E I
    }
    heard = np.array([m > 0 for _, m, _ in rows])
    mean_att = np.array([49.0 + 2 * b for b, _, _ in rows])
    assert r == pytest.approx(np.corrcoef(mean_att[heard], distance[heard])[0, 1])


def test_tram_engine_tuned_leave_one_row_out_separates_separable_rows() -> None:
    edges = np.asarray(TRAM_EDGES, dtype=np.float64)
    minutes = np.zeros((12, edges.size - 1))
    minutes[:6, 1] = 30.0  # close: 30 min at 50-52 dB
    minutes[6:, 17] = 30.0  # far: 30 min at 85-90 dB
    distance = np.r_[np.full(6, 1.0), np.full(6, 4.0)]
    rules, _ = evaluate_tram(Tram(minutes, edges, distance))
    assert (rules[-1].tpr, rules[-1].fpr) == (1.0, 0.0)


def test_simulator_is_seeded_and_physical() -> None:
    a = simulate_set(5, SimParams(), per_kind=1)
    b = simulate_set(5, SimParams(), per_kind=1)
    assert [e.rssi.tolist() for e in a] == [e.rssi.tolist() for e in b]
    rng = np.random.default_rng(3)
    e = simulate_episode(rng, "static", SimParams(profile="gaen"))
    assert e.scan_seconds is not None
    assert np.all(e.scan_seconds <= 300)
    assert np.all(e.rssi >= -100)


def test_evaluation_exits_cleanly_without_shared_data(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.accuracy"],
        cwd=REPO,
        env={"BLUEZONED_SHARED": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "not found" in out.stdout


def test_simulator_sweep_covers_every_combination() -> None:
    points = surface(per_kind=1)
    grid = {(p["profile"], p["tx_sd"], p["sigma"], p["body_x"]) for p in points}
    assert len(points) == len(grid) == 2 * 3 * 3 * 3
    assert {p["profile"] for p in points} == {"dense", "gaen"}
    summary = surface_summary(points)
    assert summary["points"] == 54
    better = sum(p["engine_nDCF"] < p["naive_nDCF"] for p in points)
    assert summary["engine_better_nDCF"] == better
    dense = sum(p["engine_nDCF"] < p["naive_nDCF"] for p in points if p["profile"] == "dense")
    assert summary["engine_better_nDCF_by_scanning"] == {
        "dense": f"{dense} of 27",
        "gaen": f"{better - dense} of 27",
    }
    lo, hi = summary["MAE_difference_range"]
    assert lo <= hi
