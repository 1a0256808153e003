"""bench/accuracy/learned.py on small synthetic contacts the tests build (no shared data)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from bench.accuracy import learned
from bench.accuracy.distance import NAIVE_GRID, evaluate_distance, held_out_levels
from bench.accuracy.learned import (
    CANDIDATES,
    OFFSET_MODES,
    Offsets,
    PairUnits,
    bounds,
    calibration_residual,
    choose_and_fit,
    choose_offsets_by_residual,
    choose_pathloss,
    expected_minutes,
    fit_logistic,
    fit_offsets,
    fit_pathloss,
    prepare,
    shifted,
    tracked_only,
)
from bench.accuracy.metrics import ndcf
from bench.accuracy.tracks import (
    ENGINE_VARIANT,
    LOGISTIC_VARIANT,
    NDCF_VARIANT,
    OFFSETS_VARIANT,
    band_agreement,
    evaluate,
    interval_coverage,
)
from bluezoned.exposure.contacts import UNIT_FEATURES, EngineConfig, UnitClassifier
from tests.bench.synthetic import RX_OFFSET, TX_OFFSET, held_out_decisions, track_pairs


def _pairs(seed: int = 0, n: int = 80) -> tuple[list[PairUnits], list[str], np.ndarray]:
    """Contacts of 30 one-minute units at one distance each; level = 50 + 20·log10 d + offsets."""
    rng = np.random.default_rng(seed)
    out: list[PairUnits] = []
    scen: list[str] = []
    truth: list[float] = []
    for k in range(n):
        d = float(rng.choice([0.7, 1.2, 3.0, 5.0]))
        rx = str(rng.choice(list(RX_OFFSET)))
        tx = str(rng.choice(list(TX_OFFSET)))
        units = int(rng.integers(10, 40))
        level = 50 + 20 * np.log10(d) + RX_OFFSET[rx] + TX_OFFSET[tx] + rng.normal(0, 2, units)
        f = np.zeros((units, len(UNIT_FEATURES)))
        f[:, 0] = f[:, 1] = f[:, 2] = level
        f[:, 5] = np.median(level)
        out.append(PairUnits(f, np.full(units, 60.0), np.full(units, d), rx, tx))
        scen.append(f"s{k % 4}")
        truth.append(float(units) if d <= 2.0 else 0.0)
    return out, scen, np.asarray(truth)


def test_offsets_recover_planted_model_offsets() -> None:
    pairs, _, _ = _pairs()
    assert fit_offsets(pairs, "none").rx == {}
    off = fit_offsets(pairs, "rx_tx_model")
    # identifiable up to a shared constant; one pass of medians (receiver, then transmitter on
    # what is left), so the receiver step absorbs part of the transmitter mix
    assert off.rx["RX-A"] - off.rx["RX-B"] == pytest.approx(12.0, abs=5.0)
    assert off.tx["TX-A"] - off.tx["TX-B"] == pytest.approx(8.0, abs=3.0)
    only_rx = fit_offsets(pairs, "rx_model")
    assert only_rx.tx == {}
    assert set(only_rx.rx) == set(RX_OFFSET)
    assert off.of("unknown", "unknown") == (0.0, 0.0)
    f = shifted(pairs[0], off)
    o = sum(off.of(pairs[0].rx_model, pairs[0].tx_model))
    assert f[:, 0] == pytest.approx(pairs[0].features[:, 0] - o)
    assert f[:, 3] == pytest.approx(pairs[0].features[:, 3])  # counts are not shifted


def test_residual_criterion_prefers_offsets_when_they_exist() -> None:
    pairs, scen, _ = _pairs()
    mode, scores = choose_offsets_by_residual(pairs, scen)
    assert mode == "rx_tx_model"
    assert set(scores) == {f"residual/{m}" for m in OFFSET_MODES}
    assert scores["residual/rx_tx_model"] < scores["residual/none"]
    r = calibration_residual(pairs[:40], pairs[40:], "rx_tx_model")
    assert float(np.sqrt((r**2).mean())) < 4.0


def test_logistic_fit_separates_and_is_raw_scale() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(60, 10, (2000, 1))
    y = (rng.random(2000) < 1 / (1 + np.exp((x[:, 0] - 60) / 3))).astype(float)
    b0, coef = fit_logistic(x, y, np.ones(2000), l2=0.0)
    assert -coef[0] == pytest.approx(1 / 3, rel=0.2)
    assert -b0 / coef[0] == pytest.approx(60.0, abs=1.5)


def test_pathloss_fit_and_inner_choice_decide_well_on_clean_data() -> None:
    pairs, scen, truth = _pairs()
    fit = fit_pathloss(pairs, truth, 2.0, 15.0, "rx_tx_model", EngineConfig())
    assert fit.mode == "rx_tx_model"
    assert fit.theta >= 0.0
    cal = fit.calibration("x", "dense", 2.0, 15.0, "test")
    assert cal.decision_minutes == fit.theta
    assert cal.att_at_1m == fit.a1_minutes
    assert fit.score_map is not None
    assert cal.score_map == pytest.approx(fit.score_map, abs=1e-4)
    assert fit.score_map[1] > 0  # more expected minutes over the threshold: likelier close
    chosen, scores = choose_pathloss(pairs, scen, truth, 2.0, 15.0, EngineConfig())
    assert set(scores) == {f"pathloss/{m}" for m in OFFSET_MODES}
    assert min(scores.values()) < 0.3
    assert scores[f"pathloss/{chosen.mode}"] == min(scores.values())


def test_logistic_variant_choice_runs_on_training_pairs_only() -> None:
    pairs, scen, truth = _pairs(n=60)
    fitted, scores = choose_and_fit(pairs, scen, truth, 2.0, 15.0)
    assert len(scores) == len(CANDIDATES)
    est = expected_minutes(pairs, fitted.classifier, fitted.offsets)
    y = truth >= 15.0
    assert ((est >= fitted.theta) == y).mean() > 0.85


def _folds_of(calls: list[tuple[str, set[int]]], pairs: list[PairUnits], scen: list[str]) -> None:
    """Each fit is on whole scenarios, and the pairs it then decides are all of the others."""
    by_id = {id(u): s for u, s in zip(pairs, scen, strict=True)}
    assert calls
    for (kind_fit, fitted), (kind_use, used) in zip(calls[::2], calls[1::2], strict=True):
        assert (kind_fit, kind_use) == ("fit", "use")
        assert fitted.isdisjoint(used)
        assert fitted | used == set(by_id)
        (held_out,) = {by_id[i] for i in used}
        assert all(by_id[i] != held_out for i in fitted)


def test_inner_choices_never_fit_on_the_scenario_they_score(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pairs, scen, truth = _pairs(n=48)
    calls: list[tuple[str, set[int]]] = []
    depth = [0]  # calls inside a fit (scoring its own training pairs) are not a fold's

    def spy(kind: str, real: Any, position: int) -> Any:
        def wrapper(*args: Any) -> Any:
            if depth[0] == 0:
                calls.append((kind, {id(u) for u in args[position]}))
            depth[0] += 1
            try:
                return real(*args)
            finally:
                depth[0] -= 1

        return wrapper

    monkeypatch.setattr(learned, "fit_variant", spy("fit", learned.fit_variant, 0))
    monkeypatch.setattr(learned, "expected_minutes", spy("use", learned.expected_minutes, 0))
    choose_and_fit(pairs, scen, truth, 2.0, 15.0)
    _folds_of(calls[:-1], pairs, scen)  # the last call refits on every pair
    assert calls[-1] == ("fit", {id(u) for u in pairs})

    calls.clear()
    monkeypatch.setattr(learned, "fit_pathloss", spy("fit", learned.fit_pathloss, 0))
    monkeypatch.setattr(learned, "decide", spy("use", learned.decide, 1))
    choose_pathloss(pairs, scen, truth, 2.0, 15.0, EngineConfig())
    _folds_of(calls[:-1], pairs, scen)
    assert calls[-1] == ("fit", {id(u) for u in pairs})


def test_expected_minutes_weigh_each_unit_by_its_probability() -> None:
    pairs, _, _ = _pairs(n=3)
    zeros = (0.0,) * len(UNIT_FEATURES)
    none = Offsets({}, {})
    certain = expected_minutes(pairs, UnitClassifier(2.0, 50.0, zeros), none)
    assert certain.tolist() == pytest.approx([p.weight_s.sum() / 60.0 for p in pairs])
    even = expected_minutes(pairs, UnitClassifier(2.0, 0.0, zeros), none)
    assert even.tolist() == pytest.approx([p.weight_s.sum() / 120.0 for p in pairs])


def test_prepare_aligns_unit_truth_with_engine_units() -> None:
    t0 = 1_700_000_040.0
    t = t0 + np.arange(0.0, 180.0, 5.0)  # 3 minutes
    rssi = np.full(t.shape, -60.0)
    dist = np.where(t < t0 + 60, 1.0, np.where(t < t0 + 120, np.nan, 3.0))
    u = prepare(
        t, rssi, np.full(t.shape, -20.0), dist, None, ("R", "T"), EngineConfig(regime="dense")
    )
    assert u.truth[0] == 1.0
    assert np.isnan(u.truth[1])
    assert u.truth[2] == 3.0
    assert u.weight_s.tolist() == [60.0, 60.0, 60.0]
    assert (u.rx_model, u.tx_model) == ("R", "T")
    # sparse: scans 250 s apart
    ts = np.concatenate([t0 + 250.0 * k + np.array([0.0, 1.0, 2.0]) for k in range(3)])
    ds = np.repeat([0.5, 2.5, np.nan], 3)
    us = prepare(
        ts,
        np.full(ts.shape, -70.0),
        np.full(ts.shape, -24.0),
        ds,
        np.repeat([120.0, 250.0, 250.0], 3),
        ("R", "T"),
        EngineConfig(regime="sparse"),
    )
    assert us.truth[:2].tolist() == [0.5, 2.5]
    assert np.isnan(us.truth[2])
    assert us.weight_s.tolist() == [120.0, 250.0, 250.0]


def test_bounds_and_tracking_oracle() -> None:
    pairs, scen, truth = _pairs(n=60)
    half = pairs[0].truth.copy()
    half[: half.size // 2] = np.nan
    masked = tracked_only(replace(pairs[0], truth=half))
    assert masked.weight_s[: half.size // 2].sum() == 0.0
    assert masked.weight_s[half.size // 2 :].sum() > 0.0
    b = bounds(pairs, scen, truth, 2.0, 15.0, EngineConfig())
    assert set(b) == {
        "in-sample/none",
        "tracking-oracle/none",
        "in-sample/rx_tx_model",
        "tracking-oracle/rx_tx_model",
    }
    assert all(0.0 <= v <= 2.0 for v in b.values())
    assert b["in-sample/rx_tx_model"] <= 0.2


def test_evaluate_reports_engine_baselines_variants_and_bounds() -> None:
    pairs = track_pairs()
    r = evaluate("exp05", pairs, 2.0, 15.0)
    assert r.variants[ENGINE_VARIANT] == r.engine
    assert set(r.variants) == {
        "pathloss/none",
        "pathloss/rx_model",
        "pathloss/rx_tx_model",
        OFFSETS_VARIANT,
        ENGINE_VARIANT,
    }
    assert set(r.chosen[ENGINE_VARIANT]) == {"a", "b", "c"}
    assert all("sigma" in v for v in r.chosen[ENGINE_VARIANT].values())
    assert r.engine.decision.n == len(pairs)
    assert r.engine.decision.ndcf <= r.cwa.decision.ndcf
    assert {"engine", "naive", "cwa"} <= set(r.symmetric_ndcf)
    assert r.bounds
    assert r.score is not None
    assert sum(b.n for b in r.score.bins) == len(pairs)
    assert 0.0 <= r.score.brier <= 1.0
    assert r.score.skill > 0  # the fitted probability beats the training prevalence
    vs_cwa = r.versus["CWA v2"]["ndcf"]
    assert vs_cwa.difference == pytest.approx(r.engine.decision.ndcf - r.cwa.decision.ndcf)
    assert vs_cwa.ci[0] <= vs_cwa.difference <= vs_cwa.ci[1]
    vs_naive = r.versus["naive"]["mae"]
    assert vs_naive.difference == pytest.approx(r.engine.duration_mae - r.naive.duration_mae)
    lo, hi = r.engine.duration_mae_ci
    assert lo <= r.engine.duration_mae <= hi
    assert set(r.well_tracked) == {"engine", "naive", "cwa", "pairs"}
    assert 0 < r.well_tracked["pairs"] <= len(pairs)
    assert r.band["pairs"] == len(pairs)
    assert 0.0 <= r.band["median_accuracy"] <= 1.0
    assert r.default_score is not None
    for cover in (r.interval, r.default_interval):
        assert 0.0 <= cover["coverage"] <= 1.0
        assert cover["median_width"] >= 0.0
    full = evaluate("exp05", pairs, 2.0, 15.0, variants=True)
    assert NDCF_VARIANT in full.variants
    assert LOGISTIC_VARIANT in full.variants
    assert full.engine == r.engine


def test_interval_coverage_counts_truths_inside_and_the_median_width() -> None:
    interval = np.array([[0.0, 4.0], [5.0, 10.0], [2.0, 3.0], [1.0, 1.0]])
    truth = np.array([4.0, 11.0, 2.5, 1.0])
    assert interval_coverage(interval, truth) == {"coverage": 0.75, "median_width": 2.5}


def test_band_agreement_scores_median_and_most_probable_band() -> None:
    def unit(distances: list[float], seconds: list[float]) -> PairUnits:
        n = len(distances)
        return PairUnits(np.zeros((n, 1)), np.array(seconds), np.array(distances), "", "")

    units = [
        # Time-weighted median 2.5 m (the untracked unit does not count): band 2-3 m.
        unit([2.5, 2.5, 0.5, np.nan], [120.0, 60.0, 60.0, 600.0]),
        # 0.8 m: band < 1 m.
        unit([0.8], [60.0]),
    ]
    probs = np.array(
        [
            [0.1, 0.3, 0.2, 0.4],  # median band 2-3 m, most probable > 3 m
            [0.3, 0.3, 0.0, 0.4],  # median band 1-2 m, most probable > 3 m
        ]
    )
    got = band_agreement(probs, units)
    assert got == {
        "pairs": 2.0,
        "median_accuracy": 0.5,
        "median_error": 0.5,
        "modal_accuracy": 0.0,
        "modal_error": 2.0,
    }


def test_shipped_presets_are_what_the_bench_fits() -> None:
    """The presets in bluezoned.exposure.presets are regenerated by ``--fit-presets``."""
    from bench.accuracy import data
    from bench.accuracy.tracks import dense_pairs, fit_preset, gaen_pairs
    from bluezoned.exposure.presets import DP3T_EXP05_2M_15MIN, DP3T_EXP34_2M_15MIN

    if not (data.rssi_dir() / "bt-measurements").is_dir():
        pytest.skip("shared DP-3T data not present")
    for shipped, track, loader in (
        (DP3T_EXP05_2M_15MIN, "exp05", dense_pairs),
        (DP3T_EXP34_2M_15MIN, "exp34", gaen_pairs),
    ):
        fitted = fit_preset(track, loader(), 2.0, 15.0)
        assert fitted.att_at_1m == shipped.att_at_1m
        assert fitted.decision_att_at_1m == shipped.decision_att_at_1m
        assert fitted.decision_minutes == shipped.decision_minutes
        assert fitted.sigma_db == pytest.approx(shipped.sigma_db, abs=0.01)
        assert fitted.score_map == pytest.approx(shipped.score_map, abs=1e-4)
        assert dict(fitted.rx_model_offsets) == pytest.approx(dict(shipped.rx_model_offsets))
        assert dict(fitted.tx_model_offsets) == pytest.approx(dict(shipped.tx_model_offsets))


def test_distance_per_segment_recovers_planted_distances() -> None:
    rng = np.random.default_rng(5)
    units, scen, median_rssi = [], [], []
    for k in range(80):
        d = float(rng.choice([0.6, 1.5, 2.4, 5.0]))  # between the thresholds 1.2, 1.8, 3 m
        rx, tx = str(rng.choice(list(RX_OFFSET))), str(rng.choice(list(TX_OFFSET)))
        n = int(rng.integers(10, 40))
        level = 50 + 20 * np.log10(d) + RX_OFFSET[rx] + TX_OFFSET[tx] + rng.normal(0, 1, n)
        f = np.zeros((n, len(UNIT_FEATURES)))
        f[:, 0] = level
        units.append(PairUnits(f, np.full(n, 60.0), np.full(n, d), rx, tx))
        scen.append(f"s{k % 4}")
        # the naive statistic sees the same distance through a noisier RSSI
        median_rssi.append(-(50 + 20 * np.log10(d) + rng.normal(0, 12, n)))
    result = evaluate_distance(units, median_rssi, scen, EngineConfig())
    assert set(result) == {"engine", "engine, tuned", "naive", "segments"}
    assert result["segments"]["n"] == sum(u.truth.size for u in units)
    for row in (result["engine"], result["engine, tuned"], result["naive"]):
        assert set(row) == {"1.2 m", "1.8 m", "3 m", "total"}
        assert row["total"] == pytest.approx(row["1.2 m"] + row["1.8 m"] + row["3 m"])
    # tuned on the engine's level, with the model offsets removed, nearly every segment is on
    # its side; the naive RSSI carries 12 dB of noise and no offsets are removed from it
    assert result["engine, tuned"]["total"] < 0.5
    assert result["naive"]["total"] > 2 * result["engine, tuned"]["total"]
    # the model's own estimate is a posterior under a wide prior: worse than tuned, far from
    # always-wrong (3)
    assert result["engine, tuned"]["total"] <= result["engine"]["total"] < 1.5


def test_distance_levels_are_fitted_on_the_other_scenarios() -> None:
    """Relabelling scenario s3 moves every other scenario's fit but none of s3's own."""
    pairs, scen, _ = _pairs(n=48)
    level, fitted = held_out_levels(pairs, scen, EngineConfig())
    moved = [
        replace(u, truth=u.truth * 3.0) if s == "s3" else u
        for u, s in zip(pairs, scen, strict=True)
    ]
    level2, fitted2 = held_out_levels(moved, scen, EngineConfig())
    unit_scen = np.concatenate([np.full(u.truth.size, s) for u, s in zip(pairs, scen, strict=True)])
    own = unit_scen == "s3"
    assert np.array_equal(level2[own], level[own])
    assert np.array_equal(fitted2[own], fitted[own])
    assert not np.allclose(fitted2[~own], fitted[~own])
    assert np.isfinite(level).all()


def test_distance_thresholds_are_tuned_on_the_other_scenarios() -> None:
    """Scenario s3's RSSI reads 15 dB high: held out, its threshold comes from s0-s2 only."""
    rng = np.random.default_rng(6)
    units, scen, median_rssi = [], [], []
    for k in range(80):
        d = float(rng.choice([0.6, 1.5, 2.4, 5.0]))
        level = 50 + 20 * np.log10(d) + rng.normal(0, 1, 20)
        f = np.zeros((20, len(UNIT_FEATURES)))
        f[:, 0] = level
        units.append(PairUnits(f, np.full(20, 60.0), np.full(20, d), "RX-A", "TX-A"))
        scen.append(f"s{k % 4}")
        median_rssi.append(-level + (15.0 if k % 4 == 3 else 0.0))
    result = evaluate_distance(units, median_rssi, scen, EngineConfig())
    scen_units = np.repeat(np.asarray(scen), 20)
    rssi, truth = np.concatenate(median_rssi), np.concatenate([u.truth for u in units])
    for d in (1.2, 1.8, 3.0):
        close = truth <= d
        pred = held_out_decisions(rssi, close, scen_units, NAIVE_GRID)
        assert result["naive"][f"{d:g} m"] == pytest.approx(ndcf(pred, close))
    assert result["naive"]["1.8 m"] > 0.1  # s3's shifted segments cost it what LOSO must
