"""Static-distance corpora beyond Herald (exposure.md §6.3, §6.5, §6.6, §7.2 track 4).

* pc-ng ``rss_smartphone`` (MIT): two people at 0.2-5 m in six carriage combinations; 60-s
  windows inside each constant-distance run; leave-one-device-out over the four phones (a
  fold's training set drops every window the held-out phone received *or* transmitted). The
  paper's own task, "high risk" = ≤ 2 m (200 cm included), is reported beside the TC4TL
  thresholds.
* MITRE Range-Angle Unstructured (CC BY-NC 4.0, read in place only): one window per 60-s log,
  ranges 2-16 ft; leave-one-tester-out over the 11 testers with data (a tester's several sets
  share home and phones, so they leave together; exposure.md §7.2 counts 23 sets).
* MIT LL static configurations (CC BY 4.0): every collect is at 6 ft, so a distance threshold
  has a single class and the naive threshold cannot be tuned for nDCF. The report is the
  recall of "≤ 2 m" and the engine's distance error at the true 1.83 m, leave-one-TestPhone-out
  (each TestPhone is also one carriage) within each calibrated receiver (iPhone, nRF52;
  Ubertooth RSSI is uncalibrated, README). The naive rule there is the threshold that catches
  90 % of the training phones' windows.

Engine = ``PathLossModel`` + ``p_within`` (the engine's distance model) on the window level
``FLEET_TX_REFERENCE_DB − max RSSI`` (the engine's minimum attenuation, unknown TX as for a
Linux node), ``att_at_1m`` fitted on the training windows only (as static.py for Herald);
"engine-fit" also fits the exponent and σ on the training windows. Naive = window median RSSI
against the threshold that minimises nDCF on the training windows.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bench.accuracy.data import FloatArray, rssi_dir
from bench.accuracy.metrics import best_threshold, ndcf
from bluezoned.const import FLEET_TX_REFERENCE_DB
from bluezoned.exposure.contacts import PathLossModel, p_within

StrArray = npt.NDArray[np.str_]

THRESHOLDS_M: Final = (1.2, 1.8, 3.0)
"""TC4TL fine thresholds (exposure.md §5); their sum is the total nDCF."""
LABEL_M: Final = 2.0
"""pc-ng's label: high risk at ≤ 200 cm."""
FEET_TOL_M: Final = 0.05
"""TC4TL's 1.2/1.8/3.0 m are 4/6/10 ft rounded to 0.1 m; a window is "≤ d" when its distance
is within this tolerance, so 6 ft (1.83 m) counts as ≤ 1.8 m as in the challenge keys."""
WINDOW_S: Final = 60.0
MIN_SAMPLES: Final = 10
FT: Final = 0.3048
NAIVE_GRID: Final = np.arange(-110.0, -20.0, 1.0)


@dataclass(frozen=True, slots=True)
class StaticWindows:
    """One row per window: the leave-out group, receiver, transmitter, true distance (m),
    median and max RSSI (dBm), and a free label (carriage, environment...)."""

    group: StrArray
    receiver: StrArray
    transmitter: StrArray
    distance: FloatArray
    median_rssi: FloatArray
    max_rssi: FloatArray
    label: StrArray

    @property
    def size(self) -> int:
        return int(self.distance.size)


def _build(rows: list[tuple[str, str, str, float, float, float, str]]) -> StaticWindows:
    cols: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 7
    return StaticWindows(
        np.asarray(cols[0], dtype=np.str_),
        np.asarray(cols[1], dtype=np.str_),
        np.asarray(cols[2], dtype=np.str_),
        np.asarray(cols[3], dtype=np.float64),
        np.asarray(cols[4], dtype=np.float64),
        np.asarray(cols[5], dtype=np.float64),
        np.asarray(cols[6], dtype=np.str_),
    )


def windows_of_run(t: FloatArray, rssi: FloatArray) -> list[tuple[float, float]]:
    """(median, max) RSSI of each 60-s window of one constant-distance run; a short tail of at
    least half a window and MIN_SAMPLES reports is kept (pc-ng runs last about one minute)."""
    if t.size == 0:
        return []
    rel = t - t[0]
    idx = np.floor(rel / WINDOW_S).astype(np.int64)
    out: list[tuple[float, float]] = []
    for k in np.unique(idx):
        sel = idx == k
        span = float(rel[sel].max() - k * WINDOW_S)
        if int(sel.sum()) < MIN_SAMPLES or (k > 0 and span < WINDOW_S / 2):
            continue
        out.append((float(np.median(rssi[sel])), float(rssi[sel].max())))
    return out


# --- pc-ng rss_smartphone -------------------------------------------------------------------

PCNG_CARRIAGES: Final = (
    "HandHand",
    "HandPocket",
    "HandBackpack",
    "PocketBackpack",
    "PocketPocket",
    "BackpackBackpack",
)


def parse_pcng(rows: Iterable[dict[str, str]], carriage: str) -> StaticWindows:
    """Windows of one pc-ng file (columns device, elapsed, rss, dist in cm); the transmitter is
    the other phone of the file (each file holds one pair, both receiving)."""
    by_dev: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for row in rows:
        tl, rl, dl = by_dev.setdefault(row["device"].strip(), ([], [], []))
        tl.append(float(row["elapsed"]))
        rl.append(float(row["rss"]))
        dl.append(float(row["dist"]) / 100.0)
    devices = sorted(by_dev)
    out: list[tuple[str, str, str, float, float, float, str]] = []
    for dev, (tl, rl, dl) in by_dev.items():
        others = [o for o in devices if o != dev]
        other = others[0] if others else "?"
        order = np.argsort(np.asarray(tl), kind="stable")
        t: FloatArray = np.asarray(tl, dtype=np.float64)[order]
        r: FloatArray = np.asarray(rl, dtype=np.float64)[order]
        d: FloatArray = np.asarray(dl, dtype=np.float64)[order]
        run = np.r_[0, np.cumsum(np.diff(d) != 0)]
        for k in np.unique(run):
            sel = run == k
            for med, mx in windows_of_run(t[sel], r[sel]):
                out.append((dev, dev, other, float(d[sel][0]), med, mx, carriage))
    return _build(out)


def load_pcng() -> StaticWindows:
    """All six carriage folders of ``rss_smartphone`` (group = receiving phone)."""
    folder = rssi_dir() / "rss_smartphone"
    parts = []
    for carriage in PCNG_CARRIAGES:
        files = sorted((folder / carriage).glob("*.csv.gz"))
        if not files:
            raise FileNotFoundError(f"{folder / carriage}/*.csv.gz")
        with gzip.open(files[0], "rt", newline="") as fh:
            parts.append(parse_pcng(csv.DictReader(fh), carriage))
    return concat(parts)


def concat(parts: list[StaticWindows]) -> StaticWindows:
    """Row-wise concatenation."""
    return StaticWindows(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in StaticWindows.__slots__)
    )


# --- iPhone logs (MITRE BlueProx and MIT LL BluetoothProximity) ----------------------------


@dataclass(frozen=True, slots=True)
class IphoneLog:
    """Metadata values by key (first occurrence) and Bluetooth sightings by device name."""

    meta: dict[str, str]
    rssi_by_name: dict[str, list[float]]


def parse_iphone_log(lines: Iterable[str]) -> IphoneLog:
    """``<time>,<key>,<values…>`` lines; ``Bluetooth`` rows are ``uuid,rssi,name,tx,ct``."""
    meta: dict[str, str] = {}
    seen: dict[str, list[float]] = {}
    for line in lines:
        parts = line.rstrip("\r\n").split(",")
        if len(parts) < 3:
            continue
        key = parts[1]
        if key == "Bluetooth":
            if len(parts) < 5:
                continue
            try:
                rssi = float(parts[3])
            except ValueError:
                continue
            if rssi >= 0 or rssi <= -127:
                continue  # invalid readings (127 = unavailable on iOS)
            seen.setdefault(parts[4], []).append(rssi)
        elif key not in meta:
            meta[key] = ",".join(parts[2:]).strip()
    return IphoneLog(meta, seen)


def mitre_window(
    log: IphoneLog, group: str
) -> tuple[str, str, str, float, float, float, str] | None:
    """The one 60-s window of a MITRE log: ≥ MIN_SAMPLES BlueProxTx sightings and a numeric range."""
    rssi = log.rssi_by_name.get("BlueProxTx", [])
    try:
        feet = float(log.meta.get("Range", ""))
    except ValueError:
        return None
    if len(rssi) < MIN_SAMPLES or not math.isfinite(feet) or feet <= 0:
        return None
    r = np.asarray(rssi)
    rx = log.meta.get("self_tester", "").split(",")[0].strip() or "?"
    tx = log.meta.get("partner_tester", "").strip(", ") or "?"
    label = log.meta.get("partner_on_body_location", "")
    return (group, rx, tx, feet * FT, float(np.median(r)), float(r.max()), label)


def mitre_tester(folder: str) -> str:
    """The tester of a set folder: ``SL3`` → ``SL``. Several sets share one tester (12 testers,
    24 sets), their home and phones, so a fold holds out the tester, not just the set."""
    return folder.rstrip("0123456789") or folder


def load_mitre() -> StaticWindows:
    """Every usable MITRE log (group = tester, from the set folder's initials)."""
    folder = rssi_dir() / "MITRE-Range-Angle-Unstructured"
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    out = []
    for path in sorted(folder.glob("*/log*.txt.gz")):
        with gzip.open(path, "rt", errors="replace") as fh:
            row = mitre_window(parse_iphone_log(fh), mitre_tester(path.parent.name))
        if row is not None:
            out.append(row)
    return _build(out)


# --- MIT LL static configurations -------------------------------------------------------

MITLL_DISTANCE_M: Final = 6 * FT
_TESTPHONE = re.compile(r"TestPhone[1-4]")
"""The four carried phones; a few iPhone rows carry garbled names and are dropped."""
_ROTATION = re.compile(r"_(\d+)(?:_\d+)?\.(?:txt|csv)\.gz$")


def mitll_rotation(name: str) -> int | None:
    """Rotation in degrees from a file name (``…_135.txt.gz``, ``…_135_2.csv.gz``)."""
    m = _ROTATION.search(name)
    return int(m.group(1)) if m else None


def mitll_rows(
    by_name: dict[str, list[float]], env: str, receiver: str, rotation: int
) -> list[tuple[str, str, str, float, float, float, str]]:
    """One window per TestPhone of one collect (≈ 30 s, shorter than 60 s: the whole collect)."""
    out = []
    for name, values in sorted(by_name.items()):
        if not _TESTPHONE.fullmatch(name) or len(values) < MIN_SAMPLES:
            continue
        r = np.asarray(values)
        out.append(
            (name, receiver, name, MITLL_DISTANCE_M, float(np.median(r)), float(r.max()),
             f"{env}|{rotation}")
        )  # fmt: skip
    return out


def load_mitll() -> StaticWindows:
    """iPhone and nRF52 collects of every environment (group = TestPhone)."""
    folder = rssi_dir() / "BLE-RSSI-Various-Static-Configurations"
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    out = []
    for env_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        env = env_dir.name.split(" ", 1)[-1]
        for path in sorted((env_dir / "iPhone").glob("*.txt.gz")):
            rot = mitll_rotation(path.name)
            if rot is None:
                continue
            with gzip.open(path, "rt", errors="replace") as fh:
                log = parse_iphone_log(fh)
            out.extend(mitll_rows(log.rssi_by_name, env, "iPhone", rot))
        for path in sorted((env_dir / "nRF52").glob("*.csv.gz")):
            rot = mitll_rotation(path.name)
            if rot is None:
                continue
            by_name: dict[str, list[float]] = {}
            with gzip.open(path, "rt", newline="", errors="replace") as fh:
                for row in csv.DictReader(fh):
                    try:
                        by_name.setdefault(row["DeviceName"], []).append(float(row["RSSI"]))
                    except (KeyError, ValueError):
                        continue
            out.extend(mitll_rows(by_name, env, "nRF52", rot))
    return _build(out)


# --- evaluation --------------------------------------------------------------------------


def fit_model(level: FloatArray, distance: FloatArray, *, fit_exponent: bool) -> PathLossModel:
    """The engine's path-loss model calibrated on training windows: ``att_at_1m`` as the mean
    residual at the default exponent; with ``fit_exponent`` also n (clipped to 0.5-4, the
    physical range of exposure.md §4.2) and σ by least squares."""
    base = PathLossModel()
    x = 10 * np.log10(distance)
    if fit_exponent and np.unique(distance).size >= 2:
        n, a1 = np.polyfit(x, level, 1)
        n = float(np.clip(n, 0.5, 4.0))
        a1 = float(np.mean(level - n * x))
        sigma = float(max(np.sqrt(np.mean((level - a1 - n * x) ** 2)), 3.0))
        return PathLossModel(att_at_1m=a1, exponent=n, sigma_db=sigma)
    a1 = float(np.mean(level - base.exponent * x))
    return PathLossModel(att_at_1m=a1, exponent=base.exponent, sigma_db=base.sigma_db)


def train_mask(w: StaticWindows, group: str, *, strict_devices: bool) -> npt.NDArray[np.bool_]:
    """Training windows of the fold holding ``group`` out. With ``strict_devices`` (pc-ng, where
    the group is the receiving phone) also drop every window the held-out group's phones
    received or transmitted, so that no training window shares a radio with the test."""
    held = w.group == group
    if not strict_devices:
        return np.asarray(~held)
    devices = sorted(set(w.receiver[held].tolist()) | set(w.transmitter[held].tolist()))
    involved = np.isin(w.receiver, devices) | np.isin(w.transmitter, devices)
    return np.asarray(~held & ~involved)


@dataclass(frozen=True, slots=True)
class StaticResult:
    """nDCF per threshold (and total of the TC4TL three) per method, fold and window counts."""

    dataset: str
    n_windows: int
    n_folds: int
    ndcf: dict[str, dict[str, float]]
    p_miss_fa_2m: dict[str, tuple[float, float]]
    distance_mae_m: dict[str, float]


def evaluate_loo(name: str, w: StaticWindows, *, strict_devices: bool = False) -> StaticResult:
    """Leave-one-group-out distance-threshold decisions for engine, engine-fit and naive."""
    level = FLEET_TX_REFERENCE_DB - w.max_rssi
    thresholds = (*THRESHOLDS_M, LABEL_M)
    methods = ("engine", "engine-fit", "naive")
    pred = {(m, d): np.zeros(w.size, dtype=bool) for m in methods for d in thresholds}
    est = {m: np.full(w.size, np.nan) for m in methods[:2]}
    groups = [str(g) for g in np.unique(w.group)]
    folds = 0
    for g in groups:
        test = w.group == g
        train = train_mask(w, g, strict_devices=strict_devices)
        if not train.any():
            continue
        folds += 1
        for m, fit in (("engine", False), ("engine-fit", True)):
            model = fit_model(level[train], w.distance[train], fit_exponent=fit)
            est[m][test] = point_distance(level[test], model)
            for d in thresholds:
                pred[(m, d)][test] = p_within(level[test], d, model) >= 0.5
        for d in thresholds:
            truth_train = w.distance[train] <= d + FEET_TOL_M
            th = best_threshold(w.median_rssi[train], truth_train, NAIVE_GRID)
            pred[("naive", d)][test] = w.median_rssi[test] >= th
    scored = np.zeros(w.size, dtype=bool)
    for g in groups:
        if train_mask(w, g, strict_devices=strict_devices).any():
            scored |= w.group == g
    out: dict[str, dict[str, float]] = {}
    pm: dict[str, tuple[float, float]] = {}
    for m in methods:
        row = {}
        for d in thresholds:
            truth = w.distance[scored] <= d + FEET_TOL_M
            row[f"{d:g} m"] = ndcf(pred[(m, d)][scored], truth)
        row["total"] = sum(row[f"{d:g} m"] for d in THRESHOLDS_M)
        out[m] = row
        truth2 = w.distance[scored] <= LABEL_M + FEET_TOL_M
        p2 = pred[(m, LABEL_M)][scored]
        pm[m] = (
            float((~p2[truth2]).mean()) if truth2.any() else 0.0,
            float(p2[~truth2].mean()) if (~truth2).any() else 0.0,
        )
    mae = {m: float(np.nanmean(np.abs(est[m][scored] - w.distance[scored]))) for m in est}
    return StaticResult(name, int(scored.sum()), folds, out, pm, mae)


def point_distance(level: FloatArray, model: PathLossModel) -> FloatArray:
    """The model's distance for a level (inverse path loss), clipped to the prior's range."""
    d = 10 ** ((level - model.att_at_1m) / (10 * model.exponent))
    return np.asarray(np.clip(d, model.prior_min_m, model.prior_max_m), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SingleDistanceResult:
    """MIT LL (all at 6 ft): recall of "≤ 2 m" and distance error per method, per receiver."""

    n_windows: dict[str, int]
    recall_2m: dict[str, dict[str, float]]
    """receiver → method → fraction of windows decided ≤ 2 m (truth: all are)."""
    median_abs_err_m: dict[str, float]
    """receiver → median |d̂ − 1.83| of the engine."""
    recall_by_phone: dict[str, dict[str, float]]
    """TestPhone (carriage) → method → recall, pooled over receivers."""


NAIVE_RECALL: Final = 0.9


def evaluate_single_distance(w: StaticWindows) -> SingleDistanceResult:
    """Leave-one-TestPhone-out within each receiver."""
    level = FLEET_TX_REFERENCE_DB - w.max_rssi
    n_win: dict[str, int] = {}
    recall: dict[str, dict[str, float]] = {}
    err: dict[str, float] = {}
    eng_all = np.zeros(w.size, dtype=bool)
    nai_all = np.zeros(w.size, dtype=bool)
    done = np.zeros(w.size, dtype=bool)
    for rx in (str(r) for r in np.unique(w.receiver)):
        on = w.receiver == rx
        est = np.full(w.size, np.nan)
        for g in (str(x) for x in np.unique(w.group[on])):
            test = on & (w.group == g)
            train = on & (w.group != g)
            if not train.any():
                continue
            model = fit_model(level[train], w.distance[train], fit_exponent=False)
            eng_all[test] = p_within(level[test], LABEL_M, model) >= 0.5
            est[test] = point_distance(level[test], model)
            th = float(np.quantile(w.median_rssi[train], 1 - NAIVE_RECALL))
            nai_all[test] = w.median_rssi[test] >= th
            done |= test
        sel = on & done
        n_win[rx] = int(sel.sum())
        recall[rx] = {"engine": float(eng_all[sel].mean()), "naive": float(nai_all[sel].mean())}
        err[rx] = float(np.nanmedian(np.abs(est[sel] - w.distance[sel])))
    by_phone = {
        str(g): {
            "engine": float(eng_all[done & (w.group == g)].mean()),
            "naive": float(nai_all[done & (w.group == g)].mean()),
        }
        for g in np.unique(w.group[done])
    }
    return SingleDistanceResult(n_win, recall, err, by_phone)


def run_static_sets() -> dict[str, object]:
    """Every present corpus; a missing folder is reported, not fatal."""
    out: dict[str, object] = {}
    for name, loader, strict in (
        ("pc-ng rss_smartphone", load_pcng, True),
        ("MITRE unstructured", load_mitre, False),
    ):
        try:
            w = loader()
        except FileNotFoundError as exc:
            out[name] = f"missing {exc}"
            continue
        out[name] = evaluate_loo(name, w, strict_devices=strict)
    try:
        out["MIT LL static (6 ft)"] = evaluate_single_distance(load_mitll())
    except FileNotFoundError as exc:
        out["MIT LL static (6 ft)"] = f"missing {exc}"
    return out
