"""Synthetic long contacts from Herald dwell segments (exposure.md §7.2 track 4, second half).

Each Herald log holds a robot-held phone pair dwelling 4-30 min at each of a series of known
distances. A *segment* is one such dwell (constant distance > 0, at least 4 min). A seeded
generator concatenates random sub-windows (4-30 min) of segments of ONE ordered (receiver model,
transmitter model) pair into a 30-90-min sequence whose distance changes at every segment
boundary, on a continuous clock: real RSSI, exact ground-truth minutes within d.

Evaluation, leave-one-receiver-model-out as the Herald static track: a sequence is scored in
the fold of its receiver model, and that fold trains only on sequences whose receiver AND
transmitter models both differ from it (the held-out model never leaks). The engine's 1-m
attenuations and decision threshold (``learned.fit_pathloss``, offset mode "none": the unknown
phone situation) and the naive baseline's RSSI threshold are tuned on those training sequences;
the CWA v2 rule is fixed. Herald logs no TX power: every method sees the fleet reference (the
engine's shifted by ENGINE_TX_SHIFT_DB to fit its calibration grid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from bench.accuracy.data import FloatArray, herald_logs
from bench.accuracy.learned import OffsetMode, PairUnits, PathLossFit, fit_pathloss, prepare
from bench.accuracy.metrics import ndcf
from bench.accuracy.tracks import (
    CWA_INFECTIOUSNESS,
    CWA_REPORT_TYPE,
    DISTANCES,
    MINUTES,
    MethodResult,
    method_result,
)
from bluezoned.const import FLEET_TX_REFERENCE_DB
from bluezoned.exposure.contacts import (
    EngineConfig,
    analyze_contact,
    calibrated_config,
    exposure_windows,
)
from bluezoned.exposure.presets import CWA_V2, RISK_HIGH
from bluezoned.exposure.risk import cwa_risk

SEGMENT_MIN_S: Final = 240.0
SEGMENT_MAX_S: Final = 1800.0
SEQUENCE_MIN_S: Final = 1800.0
SEQUENCE_MAX_S: Final = 5400.0
MINUTE_S: Final = 60.0
NEAR_SPLIT_M: Final = 2.0
"""Dwells within this distance are 'near' for the generator's per-sequence mix (the headline d)."""
NAIVE_GRID: Final = np.arange(-110.0, -29.0, 1.0)
"""Naive per-minute median-RSSI thresholds scanned (dBm), as the Herald static track."""
SEQUENCE_MINUTES_PER_SEGMENT_MINUTE: Final = 1.0
"""Sequences drawn per pair: about as many sequence-minutes as the pair has segment-minutes."""
MAX_SEQUENCES_PER_PAIR: Final = 40
SEED: Final = 20260
ENGINE_TX_SHIFT_DB: Final = 25.0
"""Added to the fleet TX reference for the engine only: Herald's ``−26 − RSSI`` strongest-packet
attenuations sit at about 20-50 dB at 1 m, below ``learned.A1_GRID`` (40-80 dB, DP-3T's scale),
so the fitted 1-m attenuation would clamp at 40. A fixed shift is the same as searching the 1-m
attenuation over 15-55 dB; every fitted value still comes from training models only."""
ENGINE: Final = "engine"
OFFSETS: Final = "engine+offsets"
"""Engine with per-model offsets (rx and tx model) fitted on training models: the held-out
model gets 0, its partner model (known to the fleet) its fitted offset. A variant."""
MODES: Final[dict[str, OffsetMode]] = {ENGINE: "none", OFFSETS: "rx_tx_model"}


@dataclass(frozen=True, slots=True)
class Segment:
    """One dwell: receiver and transmitter model, distance (m), times (s, from 0) and RSSI."""

    receiver: str
    transmitter: str
    distance: float
    t: FloatArray
    rssi: FloatArray

    @property
    def duration_s(self) -> float:
        """Span of the dwell in seconds (1-s timestamps: last − first + 1)."""
        return float(self.t[-1] - self.t[0] + 1.0)


@dataclass(frozen=True, slots=True)
class LongContact:
    """A synthetic contact: one model pair, concatenated segments, exact per-segment truth."""

    receiver: str
    transmitter: str
    t: FloatArray
    rssi: FloatArray
    distance: FloatArray
    """True distance (m) per sighting."""
    seg_distance: tuple[float, ...]
    seg_seconds: tuple[float, ...]

    def truth_minutes(self, d: float) -> float:
        """Exact minutes spent within ``d`` (the dwell durations, observed or not)."""
        return sum(
            s for x, s in zip(self.seg_distance, self.seg_seconds, strict=True) if x <= d
        ) / (MINUTE_S)

    @property
    def minutes(self) -> float:
        """Total length in minutes."""
        return sum(self.seg_seconds) / MINUTE_S


@dataclass(frozen=True, slots=True)
class LongResult:
    """One (d, T) condition: prevalence and every method's metrics."""

    distance: float
    minutes: float
    methods: dict[str, MethodResult]
    per_model_ndcf: dict[str, dict[str, float]] = field(default_factory=dict)
    """Method → held-out receiver model → nDCF on its sequences."""


@dataclass(frozen=True, slots=True)
class LongTrack:
    """The whole track: what was generated and the per-condition results."""

    n_segments: int
    n_sequences: int
    n_pairs: int
    models: tuple[str, ...]
    mean_minutes: float
    seed: int
    results: list[LongResult]
    replicas: dict[int, dict[str, float]] = field(default_factory=dict)
    """Further seed → method → nDCF at 2 m / 15 min: the same evaluation on independently drawn
    sequences, so that one draw's luck is visible."""


def load_segments(folder: Path | None = None) -> list[Segment]:
    """Every dwell of every Herald log as a segment (distance > 0, ≥ 4 min). Tests 23-26 step
    1 cm with about 3 min logged per step, so none of their dwells (models P3, 6S+, 8+) qualify."""
    out: list[Segment] = []
    for log in herald_logs(folder):
        out.extend(split_segments(log.t, log.rssi, log.distance, log.receiver, log.transmitter))
    return out


def split_segments(
    t: FloatArray, rssi: FloatArray, distance: FloatArray, receiver: str, transmitter: str
) -> list[Segment]:
    """Constant-distance runs of one log (in time order), distance > 0 and at least 4 min."""
    if t.size == 0:
        return []
    order = np.argsort(t, kind="stable")
    t, rssi, distance = t[order], rssi[order], distance[order]
    cut = np.flatnonzero(np.diff(distance) != 0) + 1
    out: list[Segment] = []
    for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, t.size].tolist(), strict=True):
        d = float(distance[lo])
        seg_t = t[lo:hi]
        if d <= 0 or seg_t[-1] - seg_t[0] + 1.0 < SEGMENT_MIN_S:
            continue
        out.append(Segment(receiver, transmitter, d, seg_t - seg_t[0], rssi[lo:hi].copy()))
    return out


def make_sequence(segments: Sequence[Segment], rng: np.random.Generator) -> LongContact | None:
    """One 30-90-min contact from segments of one model pair; None if they cannot make one.

    Length L ~ U(34, 90) min; random segments (never the same one twice, never the distance of
    the previous one) contribute a random sub-window of 4-30 min, trimmed to what is left of L; the fill stops when less than 4 min is
    left, so the total lies in about [L − 4, L]. Each segment is a dwell within NEAR_SPLIT_M
    with a per-sequence probability q = u², u ~ U(0, 1), else one beyond it (either side when
    the other has none left): drawn uniformly over dwells, nearly every contact would hold
    ≥ 15 min within 2 m (Herald's range is 0-3.5 m) and the decision would have no negatives;
    with q = u² about half hold ≥ 15 min within 2 m.
    """
    if not segments:
        return None
    pair = (segments[0].receiver, segments[0].transmitter)
    if any((s.receiver, s.transmitter) != pair for s in segments):
        raise ValueError("a sequence draws from one (receiver, transmitter) model pair")
    length = float(rng.uniform(SEQUENCE_MIN_S + SEGMENT_MIN_S, SEQUENCE_MAX_S))
    q = float(rng.uniform()) ** 2
    used: set[int] = set()
    total, prev = 0.0, float("nan")
    ts: list[FloatArray] = []
    rs: list[FloatArray] = []
    ds: list[FloatArray] = []
    seg_d: list[float] = []
    seg_s: list[float] = []
    while length - total >= SEGMENT_MIN_S:
        left = length - total
        near = bool(rng.uniform() < q)
        ok = [i for i, s in enumerate(segments) if i not in used and s.distance != prev]
        cand = [i for i in ok if (segments[i].distance <= NEAR_SPLIT_M) == near] or ok
        if not cand:
            break
        i = int(cand[int(rng.integers(len(cand)))])
        used.add(i)
        s = segments[i]
        hi = min(s.duration_s, SEGMENT_MAX_S, left)
        dur = float(np.floor(rng.uniform(SEGMENT_MIN_S, hi))) if hi > SEGMENT_MIN_S else hi
        if left - dur < SEGMENT_MIN_S and s.duration_s >= left and left <= SEGMENT_MAX_S:
            dur = left  # fill the contact exactly rather than leave a sub-4-min remainder
        start = float(np.floor(rng.uniform(0.0, s.duration_s - dur + 1.0)))
        sel = (s.t >= start) & (s.t < start + dur)
        ts.append(total + s.t[sel] - start)
        rs.append(s.rssi[sel])
        ds.append(np.full(int(sel.sum()), s.distance))
        seg_d.append(s.distance)
        seg_s.append(dur)
        total += dur
        prev = s.distance
    if total < SEQUENCE_MIN_S or len(seg_d) < 2 or sum(a.size for a in ts) == 0:
        return None
    return LongContact(
        pair[0],
        pair[1],
        np.concatenate(ts),
        np.concatenate(rs),
        np.concatenate(ds),
        tuple(seg_d),
        tuple(seg_s),
    )


def make_sequences(segments: Sequence[Segment], seed: int = SEED) -> list[LongContact]:
    """Seeded sequences for every ordered model pair, about one sequence-minute per dwell-minute
    (capped at MAX_SEQUENCES_PER_PAIR per pair; segments recur across a pair's sequences)."""
    rng = np.random.default_rng(seed)
    by_pair: dict[tuple[str, str], list[Segment]] = {}
    for s in segments:
        by_pair.setdefault((s.receiver, s.transmitter), []).append(s)
    out: list[LongContact] = []
    for key in sorted(by_pair):
        segs = by_pair[key]
        seg_min = sum(s.duration_s for s in segs) / MINUTE_S
        mean_len = (SEQUENCE_MIN_S + SEQUENCE_MAX_S) / 2.0 / MINUTE_S
        n = int(np.clip(round(SEQUENCE_MINUTES_PER_SEGMENT_MINUTE * seg_min / mean_len), 1, None))
        for _ in range(min(n, MAX_SEQUENCES_PER_PAIR)):
            seq = make_sequence(segs, rng)
            if seq is not None:
                out.append(seq)
    return out


def _naive_minutes(seq: LongContact) -> FloatArray:
    """Minutes whose median RSSI ≥ each threshold of NAIVE_GRID (per-minute medians)."""
    minute = np.floor(seq.t / MINUTE_S).astype(np.int64)
    _, inv = np.unique(minute, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(int(inv.max()) + 2))
    med = np.array(
        [np.median(seq.rssi[order[bounds[u] : bounds[u + 1]]]) for u in range(bounds.size - 1)]
    )
    return np.asarray((med[None, :] >= NAIVE_GRID[:, None]).sum(axis=1), dtype=np.float64)


def evaluate_long(
    seqs: Sequence[LongContact],
    conditions: Sequence[tuple[float, float]],
    variant_conditions: Sequence[tuple[float, float]] = ((2.0, 15.0),),
) -> list[LongResult]:
    """Leave-one-receiver-model-out scores of engine, naive and CWA v2 (and engine+offsets in
    ``variant_conditions``: each engine method costs ~2 s per condition)."""
    n = len(seqs)
    rx = np.array([s.receiver for s in seqs])
    tx = np.array([s.transmitter for s in seqs])
    tx_power = [np.full(s.t.size, FLEET_TX_REFERENCE_DB) for s in seqs]
    base = EngineConfig(regime="dense")
    units: list[PairUnits] = [
        prepare(
            s.t, s.rssi, p + ENGINE_TX_SHIFT_DB, s.distance, None, (s.receiver, s.transmitter), base
        )
        for s, p in zip(seqs, tx_power, strict=True)
    ]
    naive_min = np.array([_naive_minutes(s) for s in seqs])
    cwa_pred = np.zeros(n, dtype=bool)
    cwa_est = np.zeros(n)
    for i, (s, p) in enumerate(zip(seqs, tx_power, strict=True)):
        windows = exposure_windows(
            s.t,
            s.rssi,
            p,
            config=base,
            report_type=CWA_REPORT_TYPE,
            infectiousness=CWA_INFECTIOUSNESS,
        )
        risk = cwa_risk(windows, CWA_V2)
        cwa_pred[i] = risk.total_risk_level == RISK_HIGH
        cwa_est[i] = sum(r.weighted_minutes for r in risk.windows if r is not None)
    models = np.unique(rx).tolist()
    out: list[LongResult] = []
    for d, minutes in conditions:
        truth = np.array([s.truth_minutes(d) for s in seqs])
        y = truth >= minutes
        cfg = EngineConfig(regime="dense", distance_m=d, minutes=minutes)
        modes = {
            k: v for k, v in MODES.items() if k == ENGINE or (d, minutes) in variant_conditions
        }
        pred = {k: np.zeros(n, dtype=bool) for k in (*modes, "naive")}
        est = {k: np.zeros(n) for k in (*modes, "naive")}
        for m in models:
            test = np.flatnonzero(rx == m)
            train = np.flatnonzero((rx != m) & (tx != m))
            if train.size == 0:
                continue
            tr_units = [units[i] for i in train.tolist()]
            for name, mode in modes.items():
                fit = fit_pathloss(tr_units, truth[train], d, minutes, mode, cfg)
                _apply(fit, cfg, [seqs[i] for i in test.tolist()], test, pred[name], est[name])
            q = int(
                np.argmin(
                    [ndcf(naive_min[train, q] >= minutes, y[train]) for q in range(NAIVE_GRID.size)]
                )
            )
            pred["naive"][test] = naive_min[test, q] >= minutes
            est["naive"][test] = naive_min[test, q]
        pred["CWA v2"], est["CWA v2"] = cwa_pred, cwa_est
        scored = np.isin(rx, [m for m in models if ((rx != m) & (tx != m)).any()])
        methods: dict[str, MethodResult] = {}
        per_model: dict[str, dict[str, float]] = {}
        for name in (ENGINE, "naive", "CWA v2", *[k for k in modes if k != ENGINE]):
            note = "weighted minutes" if name == "CWA v2" else ""
            methods[name] = method_result(
                pred[name][scored], est[name][scored], y[scored], truth[scored], note
            )
            per_model[name] = {
                m: ndcf(pred[name][rx == m], y[rx == m]) for m in models if scored[rx == m].any()
            }
        out.append(LongResult(d, minutes, methods, per_model))
    return out


def _apply(
    fit: PathLossFit,
    base: EngineConfig,
    seqs: Sequence[LongContact],
    idx: np.ndarray,
    pred: np.ndarray,
    est: FloatArray,
) -> None:
    """The engine itself, configured with a fold's calibration, on held-out sequences."""
    cal = fit.calibration("fold", "dense", base.distance_m, base.minutes)
    for k, s in zip(idx.tolist(), seqs, strict=True):
        cfg = calibrated_config(cal, base, rx_model=s.receiver, tx_model=s.transmitter)
        tx = np.full(s.t.size, FLEET_TX_REFERENCE_DB + ENGINE_TX_SHIFT_DB)
        c = analyze_contact(s.t, s.rssi, tx, config=cfg)
        pred[k] = c.tc4tl
        est[k] = c.minutes_close


def run_herald_long(*, quick: bool = False, seed: int = SEED, replicas: int = 0) -> LongTrack:
    """Load, generate and evaluate; ``quick`` keeps only 2 m / 15 min; ``replicas`` more seeds
    (seed + 1, ...) are drawn and scored at 2 m / 15 min only."""
    segments = load_segments()
    seqs = make_sequences(segments, seed)
    conditions = [(2.0, 15.0)] if quick else [(d, m) for d in DISTANCES for m in MINUTES]
    results = evaluate_long(seqs, conditions)
    replica_ndcf: dict[int, dict[str, float]] = {}
    for k in range(1, replicas + 1):
        (r,) = evaluate_long(make_sequences(segments, seed + k), [(2.0, 15.0)])
        replica_ndcf[seed + k] = {name: m.decision.ndcf for name, m in r.methods.items()}
    return LongTrack(
        len(segments),
        len(seqs),
        len({(s.receiver, s.transmitter) for s in seqs}),
        tuple(sorted({s.receiver for s in seqs} | {s.transmitter for s in seqs})),
        float(np.mean([s.minutes for s in seqs])) if seqs else 0.0,
        seed,
        results,
        replica_ndcf,
    )
