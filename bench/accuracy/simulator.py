"""Seeded RSSI simulator of exposure.md §10, its validation against the real-data statistics,
and engine-versus-naive diagnostics on simulated contacts (never the headline: §10 rule 4).

Per packet: ``rssi = P0_pair − 10·n·log10(max(d, 0.1)) − L_body − L_wall + X_shadow + F_k``,
rounded to 1 dB and dropped below the receiver floor. Logical time step 1 s; packets per
second follow the advertising rate and the scan profile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from bench.accuracy.data import FloatArray
from bench.accuracy.metrics import auc, ndcf
from bluezoned.exposure.contacts import (
    EngineConfig,
    Units,
    attenuation,
    observation_units,
    p_within,
)

TUNING_SEEDS: Final = (101, 102)
REPORTING_SEEDS: Final = (201, 202, 203)
"""Fixed seed lists, separate for tuning and reporting (§10 honesty rule 2)."""
RX_FLOOR_DBM: Final = -100.0
SIM_TX_DBM: Final = -26.0
"""The engine sees the fleet TX reference: the simulated phones have unknown calibration."""
KINDS: Final = ("static", "table", "queue", "office", "wall", "passby", "party")


@dataclass(frozen=True, slots=True)
class SimParams:
    """Knobs swept by the diagnostics; defaults are the §10 table."""

    sigma_range: tuple[float, float] = (2.0, 5.0)
    """Shadowing σ. §10 says U[4, 8] dB, but with fading (≈ 5.6 dB) and pair offsets on top that
    gave a sample σ of 10 dB against the measured 6-8: validation lowered it to U[2, 5]."""
    body_scale: float = 1.0
    tx_sd: float = 8.0
    rx_sd: float = 4.0
    n_range: tuple[float, float] = (0.6, 1.8)
    """§10 says U[0.8, 2.2]; the sample-level fit then gave n ≈ 1.9 against the measured 1.2, so
    validation centred the range on 1.2."""
    metal: bool = False
    """A metal carriage (tram): little distance dependence, no multipath fill-in of body loss."""
    profile: str = "dense"
    """dense: continuous BlueZ scan at 4 adverts/s with 10-30 % loss; gaen: 4 s every 210-300 s."""


@dataclass(frozen=True, slots=True)
class Episode:
    """One simulated contact: sightings seen by the receiver and the true distance per second."""

    kind: str
    t: FloatArray
    rssi: FloatArray
    true_d: FloatArray
    scan_seconds: FloatArray | None
    body_loss: float
    carriage: str
    facing: float
    """cos of the angle between the body's blocking direction and the line to the receiver."""


def simulate_episode(rng: np.random.Generator, kind: str, p: SimParams) -> Episode:
    """Draw one episode of ``kind`` (§10 scenario generator) and its received packets."""
    d, los, wall = _trajectory(rng, kind)
    seconds = d.size
    p0 = -59.0 + float(np.clip(rng.normal(0, p.tx_sd), -15, 15)) + float(rng.normal(0, p.rx_sd))
    n = 2.0 if kind == "passby" else float(rng.uniform(*p.n_range))
    carriage = rng.choice(["hand", "front", "back"], p=[0.4, 0.35, 0.25])
    l_max = {"hand": 0.0, "front": float(rng.uniform(3, 10)), "back": float(rng.uniform(10, 20))}[
        str(carriage)
    ]
    angle = rng.uniform(0, 2 * np.pi)
    fill_in = 1.0 if p.metal else float(rng.uniform(0.5, 0.7))
    body = p.body_scale * l_max * max(0.0, float(np.cos(angle))) * fill_in
    body += float(rng.uniform(-5, 5))  # person swap
    sigma = float(rng.uniform(*p.sigma_range))
    tau = float(rng.uniform(30, 120))
    rho = np.exp(-1.0 / tau)
    shadow = np.empty(seconds)
    shadow[0] = rng.normal(0, sigma)
    eps = rng.normal(0, sigma * np.sqrt(1 - rho**2), seconds)
    for i in range(1, seconds):
        shadow[i] = rho * shadow[i - 1] + eps[i]
    mean = p0 - 10 * n * np.log10(np.maximum(d, 0.1)) - body - wall + shadow
    if p.profile == "gaen":
        active = np.zeros(seconds, dtype=bool)
        start = float(rng.uniform(0, 300))
        starts = []
        while start < seconds:
            starts.append(start)
            active[int(start) : int(start) + 4] = True
            start += float(rng.uniform(210, 300))
        per_s = np.where(active, 4, 0)
        loss = 0.2
    else:
        per_s = np.full(seconds, 4)
        loss = float(rng.uniform(0.1, 0.3))
    sec = np.repeat(np.arange(seconds), per_s)
    t = sec + rng.uniform(0, 1, sec.size)
    k_lin = 10 ** (rng.uniform(0, 6) / 10)
    rician = los & (d < 2.0)
    k = np.where(rician[sec], k_lin, 0.0)
    h = np.sqrt(k / (k + 1)) + np.sqrt(1 / (k + 1)) * (
        rng.normal(0, np.sqrt(0.5), sec.size) + 1j * rng.normal(0, np.sqrt(0.5), sec.size)
    )
    fading = 10 * np.log10(np.maximum(np.abs(h) ** 2, 1e-6))
    rssi = np.round(mean[sec] + fading)
    keep = (rssi >= RX_FLOOR_DBM) & (rng.uniform(0, 1, sec.size) >= loss)
    t, rssi = t[keep], rssi[keep]
    scan_seconds = None
    if p.profile == "gaen":
        sid = np.searchsorted(np.asarray(starts), t, side="right") - 1
        gaps = np.r_[120.0, np.minimum(np.diff(np.asarray(starts)), 300.0)]
        scan_seconds = gaps[sid]
    return Episode(kind, t, rssi, d, scan_seconds, body, str(carriage), float(np.cos(angle)))


def _trajectory(rng: np.random.Generator, kind: str) -> tuple[FloatArray, np.ndarray, float]:
    """True distance per second, line-of-sight flags and wall loss for one scenario kind."""
    if kind == "metal":
        d = np.full(int(rng.uniform(15, 30) * 60), rng.uniform(1.0, 3.5))
    elif kind == "static":
        minutes = rng.uniform(5, 60)
        d = np.full(int(minutes * 60), rng.uniform(0.5, 5.0))
    elif kind == "table":
        d = np.full(int(rng.uniform(15, 60) * 60), rng.uniform(0.8, 2.0))
    elif kind == "queue":
        gap = float(rng.integers(1, 4))
        d = np.full(int(rng.uniform(10, 30) * 60), gap) + rng.normal(0, 0.1)
    elif kind == "office":
        d = np.full(int(rng.uniform(60, 120) * 60), rng.uniform(2.0, 3.0))
    elif kind == "wall":
        d = np.full(int(rng.uniform(20, 60) * 60), rng.uniform(0.5, 1.0))
        return d, np.zeros(d.size, dtype=bool), float(rng.uniform(5, 20))
    elif kind == "passby":
        b = rng.uniform(0.5, 3.0)
        tt = np.arange(-60, 60, 1.0)
        d = np.sqrt(b**2 + (1.2 * tt) ** 2)
    else:  # party: a new partner every 5 min, this one close in some rounds
        rounds = int(rng.integers(3, 10))
        seg = [
            np.full(300, rng.uniform(0.5, 1.5) if rng.uniform() < 0.4 else rng.uniform(2.0, 6.0))
            for _ in range(rounds)
        ]
        d = np.concatenate(seg)
    return d.astype(np.float64), np.ones(d.size, dtype=bool), 0.0


def simulate_set(seed: int, p: SimParams, per_kind: int = 20) -> list[Episode]:
    """``per_kind`` episodes of every scenario kind from one seed."""
    rng = np.random.default_rng(seed)
    return [simulate_episode(rng, k, p) for k in KINDS for _ in range(per_kind)]


def validation_stats(
    episodes: list[Episode], metal: list[Episode], seed: int = 7
) -> dict[str, Any]:
    """Sample-level n, σ and AUC(< 2 m), body offsets, and r in a metal setting (§10 rule 1).

    Samples are balanced (at most 300 per episode) so that a few long episodes with their
    random pair offsets do not dominate the fit, as no single DP-3T pair dominates exp34.
    """
    rng = np.random.default_rng(seed)
    near = [e for e in episodes if e.kind in ("static", "table", "queue", "office", "party")]
    rs, ds = [], []
    for e in near:
        take = rng.permutation(e.t.size)[:300]
        rs.append(e.rssi[take])
        ds.append(e.true_d[np.minimum(e.t[take].astype(np.int64), e.true_d.size - 1)])
    rssi, d = np.concatenate(rs), np.concatenate(ds)
    sel = (d >= 0.2) & (d <= 5.0)
    x = -10 * np.log10(d[sel])
    slope, icpt = np.polyfit(x, rssi[sel], 1)
    resid = rssi[sel] - (slope * x + icpt)
    blocked = np.array([e.body_loss for e in near if e.carriage == "back" and e.facing > 0.8])
    metal_mean = np.array([float(np.mean(-e.rssi)) if e.rssi.size else np.nan for e in metal])
    metal_d = np.array([float(np.median(e.true_d)) for e in metal])
    ok = np.isfinite(metal_mean)
    blocked_median = float(np.median(blocked)) if blocked.size else float("nan")
    r_metal = float(np.corrcoef(metal_mean[ok], metal_d[ok])[0, 1])
    sample_auc = auc(rssi[sel], d[sel] < 2.0)
    # (value, within tolerance of the real-data statistic)
    return {
        "sample path-loss exponent n (real ~1.2)": (round(float(slope), 2), 0.9 <= slope <= 1.5),
        "sample sigma dB (real 6-8)": (round(float(resid.std()), 1), 6.0 <= resid.std() <= 8.5),
        "sample AUC(<2 m) (real 0.69)": (round(sample_auc, 3), 0.64 <= sample_auc <= 0.74),
        "back pocket blocked, indoors, median dB (real 6-14)": (
            round(blocked_median, 1),
            6.0 <= blocked_median <= 14.0,
        ),
        "metal r(mean att, distance) (real 0.1-0.2)": (round(r_metal, 2), 0.0 <= r_metal <= 0.3),
    }


def _features(episodes: list[Episode], d: float) -> tuple[FloatArray, list[Units | None]]:
    """Truth minutes within d, and the engine's observation units (None: never heard)."""
    truth = np.array([float((e.true_d <= d).sum()) / 60.0 for e in episodes])
    units: list[Units | None] = []
    cfg = EngineConfig()
    for e in episodes:
        if e.t.size == 0:
            units.append(None)
            continue
        order = np.argsort(e.t)
        att, _ = attenuation(e.rssi[order], None, default_tx=SIM_TX_DBM, rx_correction=0.0)
        ss = None if e.scan_seconds is None else e.scan_seconds[order]
        units.append(observation_units(e.t[order], att, cfg, ss))
    return truth, units


def _scores(units: list[Units | None], d: float, a1: float) -> FloatArray:
    out = np.zeros(len(units))
    model = replace(EngineConfig().model, att_at_1m=a1)
    for i, u in enumerate(units):
        if u is not None:
            out[i] = float((u.weight_s * p_within(u.level, d, model)).sum()) / 60.0
    return out


def _naive(units: list[Units | None], th_att: float) -> FloatArray:
    # Naive baseline on the same units: minutes whose median attenuation ≤ threshold; units'
    # mean attenuation stands in for the median (the engine units keep min and mean).
    out = np.zeros(len(units))
    for i, u in enumerate(units):
        if u is not None:
            out[i] = float(u.weight_s[u.mean_att <= th_att].sum()) / 60.0
    return out


def compare(
    p: SimParams, d: float = 2.0, minutes: float = 15.0, per_kind: int = 20
) -> dict[str, Any]:
    """Engine vs naive at (d, T): tuned on the tuning seeds, scored on the reporting seeds."""
    tune = [e for s in TUNING_SEEDS for e in simulate_set(s, p, per_kind)]
    test = [e for s in REPORTING_SEEDS for e in simulate_set(s, p, per_kind)]
    y_tune_min, u_tune = _features(tune, d)
    y_test_min, u_test = _features(test, d)
    y_tune, y_test = y_tune_min >= minutes, y_test_min >= minutes
    a1_grid = np.arange(15.0, 80.5, 2.5)
    th_grid = np.arange(0.0, 40.5, 0.5)
    e_tune = [_scores(u_tune, d, float(a)) for a in a1_grid]
    a_mae = int(np.argmin([np.abs(e - y_tune_min).mean() for e in e_tune]))
    _, a_dec, th = min(
        (ndcf(e_tune[a] >= t, y_tune), a, float(t)) for a in range(a1_grid.size) for t in th_grid
    )
    est = _scores(u_test, d, float(a1_grid[a_mae]))
    dec = _scores(u_test, d, float(a1_grid[a_dec])) >= th
    naive_grid = np.arange(40.0, 100.5, 1.0)
    n_tune = [_naive(u_tune, float(g)) for g in naive_grid]
    k = int(np.argmin([ndcf(n >= minutes, y_tune) for n in n_tune]))
    n_test = _naive(u_test, float(naive_grid[k]))
    return {
        "profile": p.profile,
        "sigma": f"{p.sigma_range[0]:g}-{p.sigma_range[1]:g}",
        "body_x": p.body_scale,
        "tx_sd": p.tx_sd,
        "prev": round(float(y_test.mean()), 2),
        "engine_nDCF": round(ndcf(dec, y_test), 3),
        "naive_nDCF": round(ndcf(n_test >= minutes, y_test), 3),
        "engine_MAE": round(float(np.abs(est - y_test_min).mean()), 1),
        "naive_MAE": round(float(np.abs(n_test - y_test_min).mean()), 1),
    }


def run_diagnostics(per_kind: int = 12) -> dict[str, Any]:
    """Validation first, then a small sweep of σ, body loss, device offsets and duty cycle."""
    base = SimParams()
    # DP-3T's phones were one Samsung family: validate with a same-fleet TX spread (3 dB).
    episodes = simulate_set(REPORTING_SEEDS[0], replace(base, tx_sd=3.0, rx_sd=2.0), per_kind)
    metal_params = replace(base, metal=True, n_range=(0.0, 0.8))
    rng = np.random.default_rng(REPORTING_SEEDS[0] + 1000)
    metal = [simulate_episode(rng, "metal", metal_params) for _ in range(72)]
    validation = validation_stats(episodes, metal)
    sweep = [
        base,
        replace(base, sigma_range=(4.0, 8.0)),
        replace(base, body_scale=2.0),
        replace(base, tx_sd=3.0),
        replace(base, profile="gaen"),
        replace(base, profile="gaen", sigma_range=(4.0, 8.0)),
    ]
    return {"validation": validation, "results": [compare(p, per_kind=per_kind) for p in sweep]}
