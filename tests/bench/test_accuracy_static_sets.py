"""Static-distance corpus loaders and leave-one-out scoring on made-up data (no real dataset)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.accuracy.metrics import ndcf
from bench.accuracy.static_sets import (
    FEET_TOL_M,
    MIN_SAMPLES,
    MITLL_DISTANCE_M,
    NAIVE_GRID,
    THRESHOLDS_M,
    StaticWindows,
    concat,
    evaluate_loo,
    evaluate_single_distance,
    mitll_rotation,
    mitll_rows,
    mitre_tester,
    mitre_window,
    parse_iphone_log,
    parse_pcng,
    train_mask,
    windows_of_run,
)
from tests.bench.synthetic import held_out_decisions


def test_windows_of_run_cuts_60s_and_keeps_a_half_tail() -> None:
    t = np.arange(0.0, 100.0, 1.0)  # 60 s + a 40-s tail
    r = np.where(t < 60, -50.0, -70.0)
    assert windows_of_run(t, r) == [(-50.0, -50.0), (-70.0, -70.0)]
    assert windows_of_run(np.arange(0.0, 75.0), np.zeros(75)) == [(0.0, 0.0)]  # 15-s tail dropped
    assert windows_of_run(np.arange(5.0), np.zeros(5)) == []  # too few reports
    # the edges: a tail spanning exactly half a window is kept; exactly MIN_SAMPLES reports do
    assert len(windows_of_run(np.r_[np.arange(60.0), 60.0 + np.arange(31.0)], np.zeros(91))) == 2
    assert len(windows_of_run(np.r_[np.arange(60.0), 60.0 + np.arange(30.0)], np.zeros(90))) == 1
    assert len(windows_of_run(np.arange(float(MIN_SAMPLES)), np.zeros(MIN_SAMPLES))) == 1
    assert windows_of_run(np.arange(MIN_SAMPLES - 1.0), np.zeros(MIN_SAMPLES - 1)) == []


def test_parse_pcng_splits_devices_and_runs() -> None:
    rows = []
    for dev in ("A", "B"):
        for i in range(120):
            dist = "100" if i < 60 else "300"
            rows.append(
                {"device": dev, "elapsed": str(i), "rss": str(-50 - i // 60 * 10), "dist": dist}
            )
    w = parse_pcng(rows, "HandHand")
    assert w.size == 4
    assert sorted(zip(w.receiver.tolist(), w.transmitter.tolist(), strict=True)) == [
        ("A", "B"),
        ("A", "B"),
        ("B", "A"),
        ("B", "A"),
    ]
    assert sorted(w.distance.tolist()) == [1.0, 1.0, 3.0, 3.0]
    assert set(w.median_rssi.tolist()) == {-50.0, -60.0}


def test_iphone_log_and_mitre_window() -> None:
    lines = [
        "2021-01-01T09:21:59.1Z,self_tester,Phone X,my phone",
        "2021-01-01T09:21:59.1Z,partner_tester,,Phone Y",
        "2021-01-01T09:21:59.1Z,partner_on_body_location,in hand",
        "2021-01-01T09:21:59.1Z,Range,6",
        "2021-01-01T09:21:59.4Z,Accelerometer,0.1,0.2,0.3",
    ] + [
        f"2021-01-01T09:22:{i:02d}.0Z,Bluetooth,U,{-60 - i % 3},BlueProxTx,-11.0,1.0"
        for i in range(12)
    ]
    lines.append("2021-01-01T09:23:00.0Z,Bluetooth,V,-40,Other,8.0,1.0")
    lines.append("2021-01-01T09:23:00.0Z,Bluetooth,U,127,BlueProxTx,-11.0,1.0")  # invalid
    log = parse_iphone_log(lines)
    assert len(log.rssi_by_name["BlueProxTx"]) == 12
    row = mitre_window(log, "XX1")
    assert row is not None
    group, rx, tx, dist, med, mx, _ = row
    assert (group, rx, tx) == ("XX1", "Phone X", "Phone Y")
    assert dist == pytest.approx(6 * 0.3048)
    assert (med, mx) == (-61.0, -60.0)
    assert mitre_window(parse_iphone_log(lines[:4]), "XX1") is None  # < 10 sightings
    assert (mitre_tester("SL12"), mitre_tester("TF1"), mitre_tester("X")) == ("SL", "TF", "X")


def test_mitll_names() -> None:
    assert mitll_rotation("log_2020-05-05_15.20.20.134_135.txt.gz") == 135
    assert mitll_rotation("ubertooth_capture_135_2.csv.gz") == 135
    assert mitll_rotation("notes.txt") is None
    rows = mitll_rows(
        {"TestPhone1": [-60.0] * 12, "TestPhone\x1a": [-50.0] * 12, "TestPhone2": [-1.0]},
        "Courtyard",
        "iPhone",
        90,
    )
    assert [r[0] for r in rows] == ["TestPhone1"]
    assert rows[0][3] == MITLL_DISTANCE_M


def _synthetic(groups: list[str], seed: int = 0) -> StaticWindows:
    """Windows whose RSSI falls 20 dB per decade of distance, a per-group offset and noise."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, g in enumerate(groups):
        d = np.repeat(np.array([0.5, 1.0, 1.5, 2.5, 4.0]), 6)
        med = -60 - 20 * np.log10(d) + (k - 1.5) * 2 + rng.normal(0, 1, d.size)
        parts.append(
            StaticWindows(
                np.full(d.size, g),
                np.full(d.size, g),
                np.full(d.size, "tx-" + g),
                d,
                med,
                med + 3,
                np.full(d.size, ""),
            )
        )
    return concat(parts)


def test_leave_one_group_out_beats_chance_on_clean_data() -> None:
    w = _synthetic(["a", "b", "c", "d"])
    res = evaluate_loo("synthetic", w)
    assert res.n_folds == 4
    assert res.n_windows == w.size
    for method in ("engine", "engine-fit", "naive"):
        assert res.ndcf[method]["total"] < 1.5, method
    assert res.ndcf["naive"]["1.8 m"] < 0.3
    assert res.distance_mae_m["engine-fit"] < 1.0


def test_each_group_is_decided_by_the_other_groups_thresholds() -> None:
    """Group d reads 15 dB high: held out, its windows meet thresholds tuned on a-c only."""
    w = _synthetic(["a", "b", "c", "d"])
    shift = np.where(w.group == "d", 15.0, 0.0)
    w = replace(w, median_rssi=w.median_rssi + shift, max_rssi=w.max_rssi + shift)
    res = evaluate_loo("shifted", w)
    for d in THRESHOLDS_M:
        truth = w.distance <= d + FEET_TOL_M
        pred = held_out_decisions(w.median_rssi, truth, w.group, NAIVE_GRID)
        assert res.ndcf["naive"][f"{d:g} m"] == pytest.approx(ndcf(pred, truth))
    assert res.ndcf["naive"]["1.8 m"] > 0.2  # d's far windows read as close, as they must


def test_strict_device_mask_drops_the_partner_phone() -> None:
    w = _synthetic(["a", "b"])
    w = StaticWindows(
        w.group, w.receiver, np.where(w.group == "a", "b", "a"), *(w.distance, w.median_rssi),
        w.max_rssi, w.label,
    )  # fmt: skip
    assert not train_mask(w, "a", strict_devices=True).any()
    assert train_mask(w, "a", strict_devices=False).sum() == (w.group == "b").sum()


def test_single_distance_recall() -> None:
    rng = np.random.default_rng(1)
    n = 40
    groups = np.repeat(np.array(["TestPhone1", "TestPhone2"]), n)
    med = np.where(groups == "TestPhone1", -60.0, -75.0) + rng.normal(0, 1, 2 * n)
    w = StaticWindows(
        groups, np.full(2 * n, "iPhone"), groups, np.full(2 * n, MITLL_DISTANCE_M), med,
        med + 2, np.full(2 * n, ""),
    )  # fmt: skip
    res = evaluate_single_distance(w)
    assert res.n_windows == {"iPhone": 2 * n}
    # trained on the weak phone, the strong one is always "close"; the reverse misses.
    assert res.recall_by_phone["TestPhone1"]["naive"] == 1.0
    assert res.recall_by_phone["TestPhone2"]["naive"] == 0.0
    assert 0.0 <= res.recall_2m["iPhone"]["engine"] <= 1.0
