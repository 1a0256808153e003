"""The DP-3T tracks of exposure.md §7.2 built from files in the dataset's own format (made here),
the naive baseline of §8, and the leave-one-scenario-out discipline of ``evaluate``."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.accuracy import learned, tracks
from bench.accuracy.data import DP3T_SCENARIOS, EXP34_SCENARIOS, rssi_dir
from bench.accuracy.learned import PairUnits
from bench.accuracy.metrics import ndcf
from bench.accuracy.tracks import (
    SAMSUNG_TX,
    Pair,
    dense_pairs,
    evaluate,
    gaen_pairs,
    naive_rule,
)
from tests.bench.synthetic import track_pairs

Row = tuple[int, str, int, float, float, float | None]
"""(receiver, receiver model, transmitter, timestamp, rssi, camera distance or None)."""
T0 = 1_596_113_000.0


def write_scenario(root: Path, experiment: str, number: int, name: str, rows: list[Row]) -> None:
    folder = root / "data" / "rssi" / "bt-measurements" / experiment
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"scenario{number:02d}-{name}.csv.gz", "wt", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "receiver_id",
                "receiver_model",
                "transmitter_id",
                "transmitter_model",
                "timestamp",
                "rssi",
                "tx_power",
                "ground_truth_distance",
            ]
        )
        for rx, model, tx, t, rssi, dist in rows:
            out.writerow([rx, model, tx, "unreliable", t, rssi, 0, "" if dist is None else dist])


def scan(
    rx: int, tx: int, start: float, rssi: float, dist: float | None, model: str = "SM-A"
) -> list[Row]:
    """Three sightings within one 4-s GAEN scan."""
    return [(rx, model, tx, start + k, rssi - k, dist) for k in range(3)]


def test_gaen_track_weights_receiver_scans_and_counts_tracked_close_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Receiver 1 scans at +0, +250, +500 and +1100 s. Transmitter 2 is in every scan at 1 m,
    # untracked in the third; transmitter 3 is in the second and the last at 1.8 m, and
    # transmitter 4 only untracked (dropped: no ground truth at all).
    rows = (
        scan(1, 2, T0, -60, 1.0)
        + scan(1, 2, T0 + 250, -61, 1.0)
        + scan(1, 2, T0 + 500, -62, None)
        + scan(1, 2, T0 + 1100, -63, 1.0)
        + scan(1, 3, T0 + 250.5, -70, 1.8)
        + scan(1, 3, T0 + 1100.5, -71, 1.8)
        + scan(1, 4, T0, -80, None)
        # Receiver 5 scans on its own clock: its first scan weighs 120 s whatever 1 does, and
        # a scan's truth is the median of its camera distances (3 m here, not the 1 m minimum).
        + [(5, "SM-B", 2, T0 + 600 + k, -65, d) for k, d in enumerate((1.0, 3.0, 3.2))]
        # Receiver 3 names its model; transmitter 2's is known from no receiver column.
        + scan(3, 1, T0 + 40, -75, 2.5, model="SM-C")
    )
    for number, name in enumerate(EXP34_SCENARIOS, start=1):
        write_scenario(tmp_path, "exp34-epfl-soldiers", number, name, rows)
    monkeypatch.setenv("BLUEZONED_SHARED", str(tmp_path))

    pairs = [p for p in gaen_pairs() if p.scenario == "lunch"]
    by_link = {(p.link, p.models[0]): p for p in pairs}
    assert len(pairs) == 4  # (1,2), (1,3), (5,2), (3,1); (1,4) has no ground truth
    p12 = by_link[((1, 2), "SM-A")]
    assert p12.unit_weight_s.tolist() == [120.0, 250.0, 250.0, 300.0]  # the gap capped at 300 s
    assert p12.truth[2.0] == pytest.approx((120 + 250 + 300) / 60)  # the untracked scan is out
    assert p12.unit_median_rssi.tolist() == [-61.0, -62.0, -63.0, -64.0]
    assert p12.scan_seconds is not None
    assert p12.scan_seconds.tolist() == [120.0] * 3 + [250.0] * 3 + [250.0] * 3 + [300.0] * 3
    assert (p12.tx == SAMSUNG_TX).all()
    assert p12.models == ("SM-A", "")  # models come from the receiver column only
    p13 = by_link[((1, 3), "SM-A")]
    # Its scans weigh the time since the receiver's previous scan, not since its own.
    assert p13.unit_weight_s.tolist() == [250.0, 300.0]
    assert p13.truth[2.0] == pytest.approx(550 / 60)
    assert p13.truth[1.5] == 0.0
    assert p13.models == ("SM-A", "SM-C")
    p52 = by_link[((2, 5), "SM-B")]
    assert p52.unit_weight_s.tolist() == [120.0]
    assert p52.truth == {1.5: 0.0, 2.0: 0.0}


def test_dense_track_reads_milliseconds_and_counts_close_minutes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ms = T0 * 1000.0
    # Minute 0: 1.0 m; minute 1: median 2.5 m (1.0, 2.5, 3.0); minute 2: untracked; minute 3:
    # 1.4 m; minute 4: exactly 2 m. Receiver 1 hears transmitter 3, and 3 hears 1 once.
    rows: list[Row] = [
        (1, "SM-A", 3, ms + 1_000, -60, 1.0),
        (1, "SM-A", 3, ms + 61_000, -61, 1.0),
        (1, "SM-A", 3, ms + 62_000, -62, 2.5),
        (1, "SM-A", 3, ms + 63_000, -63, 3.0),
        (1, "SM-A", 3, ms + 121_000, -64, None),
        (1, "SM-A", 3, ms + 181_000, -65, 1.4),
        (1, "SM-A", 3, ms + 241_000, -66, 2.0),
        (3, "SM-B", 1, ms + 1_000, -70, 1.0),
    ]
    # Align the bins on whole minutes as the track does (floor of t / 60).
    rows = [(r, m, x, t - (T0 % 60) * 1000.0, s, d) for r, m, x, t, s, d in rows]
    for number, name in enumerate(DP3T_SCENARIOS, start=1):
        write_scenario(tmp_path, "exp05-epfl-soldiers", number, name, rows)
    monkeypatch.setenv("BLUEZONED_SHARED", str(tmp_path))

    pair, back = (p for p in dense_pairs() if p.scenario == "office")
    assert pair.t[0] == pytest.approx(T0 - T0 % 60 + 1.0)  # milliseconds became seconds
    assert pair.unit_weight_s.tolist() == [60.0] * 5
    assert pair.unit_median_rssi.tolist() == [-60.0, -62.0, -64.0, -65.0, -66.0]
    assert pair.truth == {1.5: 2.0, 2.0: 3.0}  # minutes 0 and 3; at 2 m also minute 4
    assert pair.scan_seconds is None
    assert pair.models == ("SM-A", "SM-B")
    # Both directions of one contact share the unordered link (the symmetric score groups them).
    assert pair.link == back.link == (1, 3)
    assert back.models == ("SM-B", "SM-A")
    assert back.truth == {1.5: 1.0, 2.0: 1.0}


def _naive_pairs(c_far: float = -85.0) -> list[Pair]:
    """Three scenarios of 15-minute contacts (exactly the threshold): close ones at -70 dBm, far
    ones at -85 dBm (scenario c's far ones at ``c_far``)."""
    out: list[Pair] = []
    for s in ("a", "b", "c"):
        for k in range(6):
            close = k % 2 == 0
            level = -70.0 if close else (c_far if s == "c" else -85.0)
            out.append(
                Pair(
                    s,
                    np.arange(15.0) * 60.0,
                    np.full(15, level),
                    np.full(15, -20.0),
                    None,
                    np.full(15, 60.0),
                    np.full(15, level),
                    {1.5: 15.0 * close, 2.0: 15.0 * close},
                    (k, 100 + k),
                )
            )
    return out


def test_naive_rule_tunes_each_scenario_on_the_others() -> None:
    close = np.array([k % 2 == 0 for _ in "abc" for k in range(6)])
    c = np.repeat(np.array(["a", "b", "c"]), 6) == "c"
    rule = naive_rule(_naive_pairs(), 2.0, 15.0)
    # exposure.md §9 scans from -100 dBm up: the first threshold that separates is kept.
    assert rule.threshold_dbm == {"a": -84.0, "b": -84.0, "c": -84.0}
    assert rule.pred.tolist() == close.tolist()
    assert rule.minutes.tolist() == np.where(close, 15.0, 0.0).tolist()
    assert rule.oracle_ndcf == 0.0
    # Scenario c's far contacts at -80 dBm: a and b learn from c to stay above them, but c's
    # own threshold comes from a and b alone, so c's far contacts are its false alarms.
    held_out = naive_rule(_naive_pairs(c_far=-80.0), 2.0, 15.0)
    assert held_out.threshold_dbm == {"a": -79.0, "b": -79.0, "c": -84.0}
    assert held_out.pred[c].tolist() == [True] * 6
    assert held_out.pred[~c].tolist() == close[~c].tolist()
    assert held_out.oracle_ndcf == 0.0  # one threshold tuned on everything separates all


def test_evaluate_fits_every_fold_on_the_other_scenarios_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pairs = track_pairs()
    units_of = tracks._prepared(
        "exp05", pairs, replace(tracks.engine_base_config("exp05"), distance_m=2.0, minutes=15.0)
    )
    scenario_of = {id(u): p.scenario for u, p in zip(units_of, pairs, strict=True)}
    counts = {s: sum(p.scenario == s for p in pairs) for s in {p.scenario for p in pairs}}
    held_out: list[str] = []

    def fold_of(units: Sequence[PairUnits]) -> str:
        seen = {scenario_of[id(u)] for u in units}
        (missing,) = set(counts) - seen
        assert len(units) == sum(n for s, n in counts.items() if s != missing)
        return missing

    real_fit = learned.fit_pathloss
    real_offsets = learned.choose_offsets_by_residual

    def fit_spy(units: Sequence[PairUnits], *args: Any, **kwargs: Any) -> Any:
        held_out.append(fold_of(units))
        return real_fit(units, *args, **kwargs)

    def offsets_spy(units: Sequence[PairUnits], *args: Any) -> Any:
        held_out.append(fold_of(units))
        return real_offsets(units, *args)

    monkeypatch.setattr(tracks, "fit_pathloss", fit_spy)
    monkeypatch.setattr(tracks, "choose_offsets_by_residual", offsets_spy)
    result = evaluate("exp05", pairs, 2.0, 15.0)
    # Per fold: the three fixed offset modes, the offsets chosen by residual, and two fits.
    assert sorted(set(held_out)) == ["a", "b", "c"]
    assert all(held_out.count(s) == 6 for s in "abc")
    assert result.engine.decision.n == len(pairs)


@pytest.fixture(scope="module")
def real_gaen_pairs() -> list[Pair]:
    """The DP-3T exp34 track read once for the parametrised rows."""
    return gaen_pairs()


@pytest.mark.skipif(
    not (rssi_dir() / "bt-measurements" / "exp34-epfl-soldiers").is_dir(),
    reason="../shared/data/rssi/bt-measurements not present (set BLUEZONED_SHARED)",
)
@pytest.mark.parametrize(
    ("distance", "minutes", "row"),
    [
        (2.0, 5.0, (0.41, 0.39, 0.25, 0.65, 4.8, 0.61)),
        (2.0, 10.0, (0.23, 0.26, 0.33, 0.59, 6.2, 0.54)),
        (2.0, 15.0, (0.13, 0.09, 0.33, 0.42, 8.3, 0.39)),
        (1.5, 15.0, (0.08, 0.07, 0.34, 0.41, 9.7, 0.39)),
    ],
)
def test_gaen_track_reproduces_the_published_naive_baseline(
    real_gaen_pairs: list[Pair], distance: float, minutes: float, row: tuple[float, ...]
) -> None:
    """exposure.md §8's exp34 rows as printed: prevalence, P_miss, P_fa, nDCF held out, duration
    MAE in minutes, and the oracle nDCF."""
    pairs = real_gaen_pairs
    truth = np.array([p.truth[distance] for p in pairs])
    y = truth >= minutes
    rule = naive_rule(pairs, distance, minutes)
    p_miss = float((~rule.pred & y).sum() / y.sum())
    p_fa = float((rule.pred & ~y).sum() / (~y).sum())
    mae = float(np.abs(rule.minutes - truth).mean())
    measured = (y.mean(), p_miss, p_fa, ndcf(rule.pred, y))
    assert tuple(round(float(v), 2) for v in measured) == row[:4]
    assert round(mae, 1) == row[4]
    assert round(rule.oracle_ndcf, 2) == row[5]
