"""Seeded RSSI simulator of exposure.md §10, its validation against the real-data statistics,
and engine-versus-naive diagnostics on simulated contacts (never the headline: §10 rule 4).

Per packet: ``rssi = P0_pair − 10·n·log10(max(d, 0.1)) − L_body − L_wall + X_shadow + F_k``,
rounded to 1 dB and dropped below the receiver floor. Logical time step 1 s; packets per
second follow the advertising rate and the scan profile. In a metal enclosure (tram) the power
law gives way to a direct ray plus a diffuse field (:func:`_reverberant_db`).

Validation (§10 rule 1) compares like with like: DP-3T's sample statistics on a simulated
DP-3T fleet (one phone family, 1-m RSSI −80 dBm), MITRE's between-home spread on the default
fleet, Leith's tram r on metal episodes; it is printed before any simulator result.
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
NEAR_KINDS: Final = ("static", "table", "queue", "office", "party")
"""Line-of-sight kinds with people standing or sitting: the situations the real fits pool."""
WINDOW_S: Final = 60.0
DP3T_P0_DBM: Final = -80.0
"""RSSI at 1 m of the DP-3T Samsung fleet (lunch medians: −80 dBm below 1 m; fit P0 −82.7,
exposure.md §4.3). With the −100 dBm floor this truncates the far tail as the real data does."""


@dataclass(frozen=True, slots=True)
class SimParams:
    """Knobs swept by the diagnostics; defaults are the §10 table."""

    sigma_range: tuple[float, float] = (4.0, 8.0)
    """Shadowing σ, §10's U[4, 8] dB. An earlier U[2, 5] compensated a validation that compared
    the iBeacon −59 dBm fleet with DP-3T's −80 dBm phones (no floor truncation there, so the
    spread looked too wide); validated on the DP-3T level the §10 value fits (sample σ 7-8)."""
    body_scale: float = 1.0
    tx_sd: float = 8.0
    rx_sd: float = 4.0
    n_range: tuple[float, float] = (0.8, 2.2)
    """Per-episode exponent, §10's U[0.8, 2.2]. The pooled sample-level fit comes out near 1.2, not
    at the range's centre 1.5, because at DP-3T's 1-m level (−80 dBm) the −100 dBm floor drops
    far weak packets and flattens the fit, as it does in the real data. (An earlier U[0.6, 1.8]
    was tuned against one 60-episode seed whose pooled n alone varies by ±0.2 between seeds.)"""
    p0_dbm: float = -59.0
    """Mean RSSI at 1 m before the pair offsets (§10: the iBeacon convention)."""
    metal: bool = False
    """A metal carriage (tram): a direct ray plus a distance-independent diffuse field
    (:func:`_reverberant_db`) instead of the power law, so little distance dependence."""
    critical_m: tuple[float, float] = (0.5, 1.5)
    """Metal only: the critical distance where the direct ray and the diffuse field are equally
    strong, i.e. Rician K ≈ 0 dB at about 1 m, as reported for 2.4 GHz links inside vehicles
    (approximate; unverified prior). The one free parameter of the metal model: 1-3 m gives
    r ≈ 0.28, 0.5-1.5 m gives r ≈ 0.16 (tram 0.14), so it was set with r in view; the engine's
    results played no part."""
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
    p0 = p.p0_dbm + float(np.clip(rng.normal(0, p.tx_sd), -15, 15)) + float(rng.normal(0, p.rx_sd))
    n = 2.0 if kind == "passby" else float(rng.uniform(*p.n_range))
    carriage = rng.choice(["hand", "front", "back"], p=[0.4, 0.35, 0.25])
    l_max = {"hand": 0.0, "front": float(rng.uniform(3, 10)), "back": float(rng.uniform(10, 20))}[
        str(carriage)
    ]
    angle = rng.uniform(0, 2 * np.pi)
    # indoors multipath fills in 30-50 % of the body shadow; in a metal enclosure the fill-in is
    # the diffuse term of _reverberant_db, so the body takes its full toll on the direct ray only
    fill_in = 1.0 if p.metal else float(rng.uniform(0.5, 0.7))
    shadowing = p.body_scale * l_max * max(0.0, float(np.cos(angle))) * fill_in
    swap = float(rng.uniform(-5, 5))  # person swap: a whole-link offset
    body = shadowing + swap
    sigma = float(rng.uniform(*p.sigma_range))
    tau = float(rng.uniform(30, 120))
    rho = np.exp(-1.0 / tau)
    shadow = np.empty(seconds)
    shadow[0] = rng.normal(0, sigma)
    eps = rng.normal(0, sigma * np.sqrt(1 - rho**2), seconds)
    for i in range(1, seconds):
        shadow[i] = rho * shadow[i - 1] + eps[i]
    if p.metal:
        gain = _reverberant_db(d, shadowing, float(rng.uniform(*p.critical_m)))
        mean = p0 + gain - swap - wall + shadow
    else:
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
        # a scan covers the whole seconds from int(start): its first packets may come before
        # the fractional start itself, and must not take the previous scan's weight
        sid = np.searchsorted(np.floor(starts), t, side="right") - 1
        gaps = np.r_[120.0, np.minimum(np.diff(np.asarray(starts)), 300.0)]
        scan_seconds = gaps[sid]
    return Episode(kind, t, rssi, d, scan_seconds, body, str(carriage), float(np.cos(angle)))


def _reverberant_db(d: FloatArray, body_db: float, critical_m: float) -> FloatArray:
    """Path gain (dB re 1 m) in a reverberant metal enclosure: a free-space direct ray (n = 2)
    that the body attenuates, plus a diffuse field of constant power ``−20·log10(critical_m)``
    arriving from all directions (so the body barely shadows it: it is the multipath fill-in).
    Near the phone the direct ray dominates; beyond the critical distance the level is flat, which
    is why a metal tram shows almost no distance dependence (exposure.md §4.3)."""
    direct = 10 ** (-(20 * np.log10(np.maximum(d, 0.1)) + body_db) / 10)
    diffuse = critical_m**-2.0
    return np.asarray(10 * np.log10(direct + diffuse), dtype=np.float64)


def _trajectory(rng: np.random.Generator, kind: str) -> tuple[FloatArray, np.ndarray, float]:
    """True distance per second, line-of-sight flags and wall loss for one scenario kind."""
    if kind == "metal":
        # tram placements: the Leith rows span 0.5-5 m; log-uniform, as the placements are
        # denser near (seat neighbours) than far
        d = np.full(int(rng.uniform(15, 30) * 60), np.exp(rng.uniform(np.log(0.5), np.log(5.0))))
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


@dataclass(frozen=True, slots=True)
class ValidationRow:
    """One real-data statistic of exposure.md §10 rule 1 and the simulator's value."""

    statistic: str
    simulator: float
    real: str
    low: float
    high: float

    @property
    def ok(self) -> bool:
        return self.low <= self.simulator <= self.high


def _window_sd(e: Episode) -> list[float]:
    """sd of the RSSI inside each full 60-s window of a static episode (fast fading + noise)."""
    w = (e.t // WINDOW_S).astype(np.int64)
    out = []
    for k in np.unique(w):
        sel = w == k
        if int(sel.sum()) >= 30:
            out.append(float(e.rssi[sel].std()))
    return out


def validation_stats(
    dp3t_like: list[Episode], fleet: list[Episode], metal: list[Episode], seed: int = 7
) -> list[ValidationRow]:
    """The real-data statistics of exposure.md §10 rule 1, each on the matching simulated set.

    ``dp3t_like``: the DP-3T fleet (one Samsung family, 1-m RSSI ≈ −80 dBm, exposure.md §4.3);
    sample-level n, σ and AUC(< 2 m) are DP-3T statistics and are computed on it. Samples are
    balanced (at most 300 per episode) so that a few long episodes with their random pair offsets
    do not dominate the fit, as no single DP-3T pair dominates exp34. ``fleet``: default
    parameters (any phones, any homes) for the between-setting σ of 60-s medians (MITRE) and the
    body loss. ``metal``: tram-like episodes; r over many episodes (the model's value; a 72-row
    sample like Leith's has a sampling sd of about 0.1).
    """
    rng = np.random.default_rng(seed)
    near = [e for e in dp3t_like if e.kind in NEAR_KINDS]
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
    sample_auc = auc(rssi[sel], d[sel] < 2.0)
    fading = float(np.median([v for e in dp3t_like if e.kind == "static" for v in _window_sd(e)]))
    # between settings: the first minute of every static fleet episode, median against log d
    meds, dm = [], []
    for e in fleet:
        first = e.t < WINDOW_S
        if e.kind in NEAR_KINDS and int(first.sum()) >= 10:
            meds.append(float(np.median(e.rssi[first])))
            dm.append(float(e.true_d[0]))
    xm = -10 * np.log10(np.asarray(dm))
    coef = np.polyfit(xm, np.asarray(meds), 1)
    between = float(np.sqrt(np.mean((np.asarray(meds) - np.polyval(coef, xm)) ** 2)))
    blocked = np.array([e.body_loss for e in fleet if e.carriage == "back" and e.facing > 0.8])
    blocked_median = float(np.median(blocked)) if blocked.size else float("nan")
    metal_mean = np.array([float(np.mean(-e.rssi)) if e.rssi.size else np.nan for e in metal])
    metal_d = np.array([float(np.median(e.true_d)) for e in metal])
    ok = np.isfinite(metal_mean)
    r_metal = float(np.corrcoef(metal_mean[ok], metal_d[ok])[0, 1])
    return [
        ValidationRow(
            "sample path-loss exponent n", float(slope), "1.19 (DP-3T exp34); 1.2 pooled", 0.9, 1.5
        ),
        ValidationRow(
            "sample sigma about the fit (dB)", float(resid.std()), "7.5 (exp34); 6.5-8.1", 6.0, 8.5
        ),
        ValidationRow("sample AUC(< 2 m)", sample_auc, "0.69 (exp34)", 0.64, 0.74),
        ValidationRow(
            "fading sd within 60 s, static (dB)", fading, "3.9-6.3 (Ng); 3-6 (MIT LL)", 3.9, 6.3
        ),
        ValidationRow(
            "between-setting sigma of 60-s medians (dB)", between, "10.1 (MITRE homes)", 8.0, 12.0
        ),
        ValidationRow(
            "back pocket, body between, indoors (dB)",
            blocked_median,
            "front-back 12 (MIT LL); 6-14 indoors",
            6.0,
            14.0,
        ),
        ValidationRow(
            "metal r(mean attenuation, distance)", r_metal, "0.14 (Leith tram, 72 rows)", 0.1, 0.2
        ),
    ]


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


def validation_sets(per_kind: int = 40) -> tuple[list[Episode], list[Episode], list[Episode]]:
    """The three simulated sets the validation compares with real data (reporting seeds)."""
    base = SimParams()
    dp3t = replace(base, tx_sd=3.0, rx_sd=2.0, p0_dbm=DP3T_P0_DBM)
    dp3t_like = [e for s in REPORTING_SEEDS for e in simulate_set(s, dp3t, per_kind)]
    fleet = simulate_set(REPORTING_SEEDS[0] + 500, base, per_kind)
    rng = np.random.default_rng(REPORTING_SEEDS[0] + 1000)
    metal = [simulate_episode(rng, "metal", replace(base, metal=True)) for _ in range(10 * 72)]
    return dp3t_like, fleet, metal


SURFACE_PROFILES: Final = ("dense", "gaen")
SURFACE_TX_SD: Final = (3.0, 8.0, 12.0)
SURFACE_SIGMA: Final = ((2.0, 5.0), (4.0, 8.0), (6.0, 10.0))
SURFACE_BODY: Final = (0.5, 1.0, 2.0)
"""The grid of §10 rule 3: duty cycle (continuous scanning or GAEN's), device offsets (sd of
the transmitter offset, dB), shadowing σ (dB) and body loss (× the §10 table), every
combination: 54 points, each tuned on the tuning seeds and scored on the reporting seeds."""


def surface(per_kind: int = 8, base: SimParams = SimParams()) -> list[dict[str, Any]]:
    """Engine and naive nDCF and MAE at every point of the §10 sweep grid (2 m / 15 min)."""
    return [
        compare(
            replace(base, profile=profile, tx_sd=tx_sd, sigma_range=sigma, body_scale=body),
            per_kind=per_kind,
        )
        for profile in SURFACE_PROFILES
        for tx_sd in SURFACE_TX_SD
        for sigma in SURFACE_SIGMA
        for body in SURFACE_BODY
    ]


def surface_summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    """How often and by how much the engine beats the naive rule over the whole grid."""
    d_ndcf = np.array([p["engine_nDCF"] - p["naive_nDCF"] for p in points])
    d_mae = np.array([p["engine_MAE"] - p["naive_MAE"] for p in points])
    profiles = np.array([p["profile"] for p in points])
    return {
        "points": len(points),
        "engine_better_nDCF": int((d_ndcf < 0).sum()),
        "engine_better_nDCF_by_scanning": {
            profile: f"{int((d_ndcf[profiles == profile] < 0).sum())} of {int((profiles == profile).sum())}"
            for profile in dict.fromkeys(profiles.tolist())
        },
        "engine_better_MAE": int((d_mae < 0).sum()),
        "nDCF_difference_range": [float(d_ndcf.min()), float(d_ndcf.max())],
        "MAE_difference_range": [float(d_mae.min()), float(d_mae.max())],
    }


def run_diagnostics(per_kind: int = 8) -> dict[str, Any]:
    """Validation first, then the engine and the naive rule over the whole sweep grid."""
    validation = validation_stats(*validation_sets())
    points = surface(per_kind)
    return {
        "validation": [
            {
                "statistic": v.statistic,
                "simulator": round(v.simulator, 3),
                "real": v.real,
                "tolerance": [v.low, v.high],
                "pass": v.ok,
            }
            for v in validation
        ],
        "validated": all(v.ok for v in validation),
        "results": points,
        "summary": surface_summary(points),
    }
