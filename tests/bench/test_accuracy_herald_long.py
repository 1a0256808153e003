"""Synthetic long contacts from Herald-like dwells (bench/accuracy/herald_long.py), on made-up data."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.accuracy import herald_long as hl
from bench.accuracy import learned
from bench.accuracy.herald_long import (
    SEGMENT_MIN_S,
    LongContact,
    Segment,
    evaluate_long,
    load_segments,
    make_sequence,
    make_sequences,
    split_segments,
)

DISTANCES_M = (0.2, 0.5, 0.8, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4)
MODEL_OFFSET_DB = {"A": 0.0, "B": -6.0, "C": 4.0, "D": -2.0}


def _segments(
    rx: str,
    tx: str,
    rng: np.random.Generator,
    minutes: float = 12.0,
    per_second: int = 2,
    offsets: bool = True,
) -> list[Segment]:
    """Dwells at every distance: RSSI = −55 − 20·log10 d + model offsets + 3 dB noise."""
    out = []
    for d in DISTANCES_M:
        t = np.repeat(np.arange(minutes * 60.0), per_second)
        level = -55.0 - 20.0 * np.log10(d)
        if offsets:
            level += MODEL_OFFSET_DB[rx] + MODEL_OFFSET_DB[tx]
        out.append(Segment(rx, tx, d, t, np.round(level + rng.normal(0.0, 3.0, t.size))))
    return out


def _all_segments(seed: int = 1, minutes: float = 20.0, offsets: bool = True) -> list[Segment]:
    rng = np.random.default_rng(seed)
    pairs = [("A", "B"), ("B", "A"), ("A", "C"), ("C", "A"), ("B", "D"), ("D", "B"), ("C", "D")]
    return [s for rx, tx in pairs for s in _segments(rx, tx, rng, minutes, 1, offsets)]


def test_split_segments_keeps_long_positive_dwells() -> None:
    t = np.arange(0.0, 1500.0)
    dist = np.r_[np.zeros(100), np.full(300, 1.0), np.full(100, 2.0), np.full(1000, 3.0)]
    rssi = -60.0 - dist
    segs = split_segments(t, rssi, dist, "A", "B")
    # the parked start (0 m) and the 100-s dwell at 2 m are dropped
    assert [s.distance for s in segs] == [1.0, 3.0]
    assert segs[0].duration_s == 300.0
    assert segs[1].duration_s == 1000.0
    assert segs[0].t[0] == 0.0
    assert (segs[1].rssi == -63.0).all()
    assert split_segments(np.zeros(0), np.zeros(0), np.zeros(0), "A", "B") == []


def test_sequence_is_one_pair_with_exact_truth() -> None:
    rng = np.random.default_rng(0)
    segs = _segments("A", "B", rng, minutes=30.0)
    for seed in range(30):
        seq = make_sequence(segs, np.random.default_rng(seed))
        assert seq is not None
        assert (seq.receiver, seq.transmitter) == ("A", "B")
        assert 30.0 <= seq.minutes <= 90.0
        assert len(seq.seg_distance) >= 2
        assert all(a != b for a, b in zip(seq.seg_distance, seq.seg_distance[1:], strict=False))
        assert all(SEGMENT_MIN_S <= s <= 1800.0 for s in seq.seg_seconds)
        # sighting times lie on one continuous clock, each with its dwell's true distance
        edges = np.cumsum((0.0, *seq.seg_seconds))
        assert seq.t.min() >= 0.0
        assert seq.t.max() < edges[-1]
        seg_of = np.searchsorted(edges, seq.t, side="right") - 1
        assert np.allclose(seq.distance, np.asarray(seq.seg_distance)[seg_of])
        for d in (1.5, 2.0):
            exact = sum(s for x, s in zip(seq.seg_distance, seq.seg_seconds, strict=True) if x <= d)
            assert seq.truth_minutes(d) == pytest.approx(exact / 60.0)
        # real RSSI: every value comes from the dwells
        assert np.isin(seq.rssi, np.concatenate([s.rssi for s in segs])).all()


def test_truth_counts_dwells_at_the_distance_itself_and_one_second_stamps() -> None:
    t = np.arange(3.0)
    contact = LongContact(
        "A", "B", t, np.zeros(3), np.ones(3), (1.0, 2.0, 2.5), (600.0, 300.0, 900.0)
    )
    assert contact.truth_minutes(2.0) == 15.0  # a dwell at exactly 2 m is within 2 m
    assert contact.truth_minutes(1.5) == 10.0
    assert contact.minutes == 30.0
    # a dwell stamped at whole seconds 10..19 lasted 10 s
    assert Segment("A", "B", 1.0, np.arange(10.0, 20.0), np.zeros(10)).duration_s == 10.0


def test_sequence_refuses_mixed_pairs() -> None:
    rng = np.random.default_rng(0)
    mixed = _segments("A", "B", rng)[:3] + _segments("B", "A", rng)[:3]
    with pytest.raises(ValueError, match="one"):
        make_sequence(mixed, rng)
    assert make_sequence([], rng) is None


def test_sequences_are_seeded_and_never_mix_pairs() -> None:
    segs = _all_segments()
    a, b = make_sequences(segs, seed=3), make_sequences(segs, seed=3)
    assert len(a) == len(b) > 7
    assert all(
        np.array_equal(x.t, y.t) and np.array_equal(x.rssi, y.rssi)
        for x, y in zip(a, b, strict=True)
    )
    c = make_sequences(segs, seed=4)
    assert any(x.seg_seconds != y.seg_seconds for x, y in zip(a, c, strict=False))
    for seq in a:
        pool = np.concatenate(
            [s.rssi for s in segs if (s.receiver, s.transmitter) == (seq.receiver, seq.transmitter)]
        )
        assert np.isin(seq.rssi, pool).all()
    # the generator's near/far mix gives both classes at 2 m / 15 min
    y = np.array([s.truth_minutes(2.0) >= 15.0 for s in a])
    assert 0 < y.sum() < y.size


def test_evaluation_never_trains_on_the_held_out_model(monkeypatch: pytest.MonkeyPatch) -> None:
    seqs = make_sequences(_all_segments(), seed=5)
    real_fit = learned.fit_pathloss
    seen: list[set[str]] = []

    def spy(units: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        seen.append({u.rx_model for u in units} | {u.tx_model for u in units})
        return real_fit(units, *args, **kwargs)

    monkeypatch.setattr(hl, "fit_pathloss", spy)
    applied: list[set[str]] = []
    real_apply = hl._apply

    def spy_apply(fit: Any, base: Any, test: Sequence[Any], *args: Any) -> None:
        applied.append({s.receiver for s in test})
        real_apply(fit, base, test, *args)

    monkeypatch.setattr(hl, "_apply", spy_apply)
    results = evaluate_long(seqs, [(2.0, 15.0)])
    assert len(applied) == len(seen) > 0
    for models, held in zip(seen, applied, strict=True):
        assert len(held) == 1
        assert not held & models
    (res,) = results
    assert set(res.methods) == {"engine", "naive", "CWA v2", "engine+offsets"}
    for m in res.methods.values():
        assert 0.0 <= m.decision.ndcf <= 2.0
        assert m.duration_mae >= 0.0
    assert set(res.per_model_ndcf["engine"]) <= {"A", "B", "C", "D"}


def test_a_model_in_every_pair_has_no_fold_and_is_not_scored() -> None:
    rng = np.random.default_rng(2)
    segs = [seg for rx, tx in ("AD", "DA", "BD", "DB") for seg in _segments(rx, tx, rng)]
    seqs = make_sequences(segs, seed=1)
    (res,) = evaluate_long(seqs, [(2.0, 15.0)])
    # D takes part in every pair: holding it out leaves nothing to train on
    scored = sum(seq.receiver in ("A", "B") for seq in seqs)
    assert 0 < scored < len(seqs)
    for name in ("engine", "naive", "CWA v2"):
        assert res.methods[name].decision.n == scored
        assert set(res.per_model_ndcf[name]) == {"A", "B"}


def test_engine_beats_chance_when_models_agree() -> None:
    """Without between-model offsets a held-out model is no harder than a training one."""
    seqs = make_sequences(_all_segments(seed=2, minutes=60.0, offsets=False), seed=6)
    (res,) = evaluate_long(seqs, [(2.0, 15.0)], variant_conditions=())
    assert set(res.methods) == {"engine", "naive", "CWA v2"}
    assert res.methods["engine"].decision.ndcf < 0.5
    assert res.methods["naive"].decision.ndcf < 0.6
    # σ = 10 dB keeps unit probabilities soft: even here minutes within d are off by ~14 min
    assert res.methods["engine"].duration_mae < 20.0


def test_load_segments_reads_herald_layout(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text(
        "testid,date,phoneaname,phonebname,distfrom,distto,diststep,durationmins,"
        "filenamephonea,filenamephoneb\n"
        "1,20210101,X,Y,0,100,50,5,,t1-B.csv\n"
    )
    lines = ["time,rssi,distance"]
    for k in range(900):
        cm = 0 if k < 60 else (50 if k < 480 else 100)
        lines.append(f"2021-01-01 10:{k // 60:02d}:{k % 60:02d},{-60 - cm // 10}.0,{cm}")
        lines.append(f"2021-01-01 10:{k // 60:02d}:{k % 60:02d},{-61 - cm // 10}.0,{cm}")
    with gzip.open(tmp_path / "t1-B.csv.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    segs = load_segments(tmp_path)
    assert [(s.receiver, s.transmitter, s.distance) for s in segs] == [
        ("Y", "X", 0.5),
        ("Y", "X", 1.0),
    ]
    assert segs[0].duration_s == 420.0
    assert segs[0].t.size == 840
    assert set(segs[1].rssi.tolist()) == {-70.0, -71.0}


def test_replicas_score_independent_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each further seed is a fresh draw of sequences scored at 2 m / 15 min like the main one."""
    segs = _all_segments(seed=2, minutes=60.0, offsets=False)
    monkeypatch.setattr(hl, "load_segments", lambda folder=None: segs)
    track = hl.run_herald_long(quick=True, seed=10, replicas=2)
    assert sorted(track.replicas) == [11, 12]
    (head,) = track.results
    assert set(track.replicas[11]) == set(head.methods)
    (again,) = evaluate_long(make_sequences(segs, seed=12), [(2.0, 15.0)])
    assert track.replicas[12] == {k: m.decision.ndcf for k, m in again.methods.items()}
    assert hl.run_herald_long(quick=True, seed=10).replicas == {}
