"""Dataset loaders reading ../shared/data/rssi in place (never copied: exposure.md §6 licence rule)."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
DP3T_SCENARIOS: Final = ("lunch", "train", "office", "queue", "party")
EXP34_SCENARIOS: Final = ("lunch", "train", "office", "queue", "party", "movement")


def shared_dir() -> Path:
    """The shared reference folder: $BLUEZONED_SHARED, else ../shared beside the repository."""
    return Path(os.environ.get("BLUEZONED_SHARED", REPO_ROOT.parent / "shared"))


def rssi_dir() -> Path:
    """Where the RSSI datasets live (may not exist)."""
    return shared_dir() / "data" / "rssi"


@dataclass(frozen=True, slots=True)
class Dp3tScenario:
    """One DP-3T scenario as columns; times in seconds, distance NaN when untracked."""

    name: str
    receiver: IntArray
    transmitter: IntArray
    t: FloatArray
    rssi: FloatArray
    tx_power: FloatArray
    distance: FloatArray
    models: dict[int, str] = field(default_factory=dict)
    """Phone id → model, from the receiver columns (exp34's transmitter_model is unreliable)."""


def load_dp3t(experiment: str, scenario: str) -> Dp3tScenario:
    """Read ``bt-measurements/<experiment>/scenarioNN-<scenario>.csv.gz`` (exp05 times are ms)."""
    folder = rssi_dir() / "bt-measurements" / experiment
    matches = sorted(folder.glob(f"scenario*-{scenario}.csv.gz"))
    if not matches:
        raise FileNotFoundError(f"{folder}/scenario*-{scenario}.csv.gz")
    rx: list[int] = []
    tx: list[int] = []
    ts: list[float] = []
    rs: list[float] = []
    pw: list[float] = []
    gd: list[float] = []
    models: dict[int, str] = {}
    with gzip.open(matches[0], "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            rssi = float(row["rssi"])
            if rssi >= 0:
                continue  # impossible values (bt-measurements README)
            rx.append(int(row["receiver_id"]))
            models[rx[-1]] = row["receiver_model"]
            tx.append(int(row["transmitter_id"]))
            ts.append(float(row["timestamp"]))
            rs.append(rssi)
            pw.append(float(row["tx_power"]))
            d = row["ground_truth_distance"]
            gd.append(float(d) if d else np.nan)
    t = np.asarray(ts)
    if experiment.startswith("exp05"):
        t = t / 1000.0
    return Dp3tScenario(
        scenario,
        np.asarray(rx, dtype=np.int64),
        np.asarray(tx, dtype=np.int64),
        t,
        np.asarray(rs),
        np.asarray(pw),
        np.asarray(gd),
        models,
    )


@dataclass(frozen=True, slots=True)
class Tram:
    """Leith & Farrell tram rows: minutes per attenuation bin, bin edges (dB), distance (m)."""

    minutes: FloatArray
    edges: FloatArray
    distance: FloatArray


TRAM_EDGES: Final = (
    48,
    50,
    52,
    54,
    56,
    58,
    60,
    62,
    64,
    66,
    68,
    70,
    72,
    74,
    76,
    78,
    80,
    85,
    90,
    100,
)


def load_tram() -> Tram:
    """Read the 72 tram histograms and their distances."""
    folder = rssi_dir() / "dublintram_gaen_dataset"
    minutes = np.loadtxt(folder / "dublintram_dataset_attenuations.txt", comments="#", ndmin=2)
    distance = np.loadtxt(folder / "dublintram_dataset_distances.txt", comments="#", ndmin=1)
    return Tram(minutes, np.asarray(TRAM_EDGES, dtype=np.float64), distance)


@dataclass(frozen=True, slots=True)
class HeraldLog:
    """One Herald robot log as seen by one phone: who heard whom, and per report the time (s),
    the RSSI (dBm) and the robot's distance (m)."""

    receiver: str
    transmitter: str
    t: FloatArray
    rssi: FloatArray
    distance: FloatArray


def herald_folder() -> Path:
    """Where the Herald raw RSSI logs are (read in place)."""
    return rssi_dir() / "herald-analysis" / "reference-data" / "rssi-raw-edison"


def herald_logs(folder: Path | None = None) -> Iterator[HeraldLog]:
    """Every phone's side of every Herald test in ``metadata.csv`` whose log is present."""
    folder = herald_folder() if folder is None else folder
    with open(folder / "metadata.csv", newline="") as fh:
        tests = list(csv.DictReader(fh))
    for test in tests:
        for side, other in (("a", "b"), ("b", "a")):
            name = test[f"filenamephone{side}"].strip()
            path = folder / (name + ".gz")
            if not name or not path.is_file():
                continue
            t, rssi, distance = read_herald_log(path)
            yield HeraldLog(test[f"phone{side}name"], test[f"phone{other}name"], t, rssi, distance)


HERALD_COLUMNS: Final = ["time", "rssi", "distance"]


def read_herald_log(path: Path) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(seconds, RSSI dBm, distance m) of one log; times parsed once per distinct second."""
    with gzip.open(path, "rt", newline="") as fh:
        lines = fh.read().splitlines()
    if not lines or lines[0].split(",") != HERALD_COLUMNS:
        raise ValueError(f"{path}: expected the columns {','.join(HERALD_COLUMNS)}")
    rows = [ln.split(",") for ln in lines[1:] if ln]
    if not rows:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    times, rssi, cm = zip(*rows, strict=True)
    uniq, inv = np.unique(np.asarray(times), return_inverse=True)
    secs = uniq.astype("datetime64[s]").astype(np.int64)
    t = secs[inv].astype(np.float64)
    return t, np.asarray(rssi, dtype=np.float64), np.asarray(cm, dtype=np.float64) / 100.0
