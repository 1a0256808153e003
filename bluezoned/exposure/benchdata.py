"""Seeded synthetic matching workloads: a day of published keys, some planted among random sightings.

Pure: the seed is an argument and everything else follows from it. Used by ``bluezoned bench
match``, ``bench/bench_match.py`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from bluezoned.const import SECONDS_PER_INTERVAL, TEK_LENGTH, TEK_ROLLING_PERIOD
from bluezoned.exposure.keys import (
    Metadata,
    derive_aemk,
    derive_rpik,
    derive_rpis,
    encrypt_aem,
    pack_metadata,
)
from bluezoned.exposure.matcher import I64Array, KeyArrays, SightingArrays

BENCH_DAY_START: Final = 2_900_016
"""An aligned UTC midnight (2025-02-20) as ENIN: 144 * 20139."""
PLANTED_INTERVALS: Final = 3
"""Consecutive intervals (RPI rotations) in each planted contact."""
PLANTED_SIGHTINGS_PER_INTERVAL: Final = 4


@dataclass(frozen=True, slots=True, eq=False)
class PlantedDay:
    """Keys of one day, sightings (background noise plus the planted keys' beacons), and which keys were planted."""

    keys: KeyArrays
    sightings: SightingArrays
    planted: I64Array
    """Indices into ``keys`` whose beacons are among the sightings, ascending."""


def planted_day(
    n_keys: int,
    *,
    n_planted: int,
    seed: int = 0,
    background: int = 50_000,
    day_start: int = BENCH_DAY_START,
) -> PlantedDay:
    """N random 144-interval keys of day ``day_start`` and ``background`` random sightings over that day, ``n_planted`` keys planted."""
    rng = np.random.default_rng(seed)
    key_data = rng.integers(0, 256, size=(n_keys, TEK_LENGTH), dtype=np.uint8)
    planted = np.sort(rng.choice(n_keys, size=min(n_planted, n_keys), replace=False)).astype(
        np.int64
    )

    day_seconds = TEK_ROLLING_PERIOD * SECONDS_PER_INTERVAL
    t_background = day_start * SECONDS_PER_INTERVAL + rng.uniform(0, day_seconds, background)
    rpi_parts = [rng.integers(0, 256, size=(background, 16), dtype=np.uint8)]
    aem_parts = [rng.integers(0, 256, size=(background, 4), dtype=np.uint8)]
    t_parts = [t_background]
    per_key = PLANTED_INTERVALS * PLANTED_SIGHTINGS_PER_INTERVAL
    for k in planted.tolist():
        tek = key_data[k].tobytes()
        first = day_start + int(rng.integers(0, TEK_ROLLING_PERIOD - PLANTED_INTERVALS + 1))
        rpis = derive_rpis(derive_rpik(tek), first, PLANTED_INTERVALS)
        aemk = derive_aemk(tek)
        metadata = pack_metadata(Metadata(tx_power=int(rng.integers(-30, 0))))
        rows = np.empty((per_key, 16), dtype=np.uint8)
        aems = np.empty((per_key, 4), dtype=np.uint8)
        times = np.empty(per_key)
        for j in range(per_key):
            step = j // PLANTED_SIGHTINGS_PER_INTERVAL
            rpi = rpis[16 * step : 16 * step + 16]
            rows[j] = np.frombuffer(rpi, dtype=np.uint8)
            aems[j] = np.frombuffer(encrypt_aem(aemk, rpi, metadata), dtype=np.uint8)
            times[j] = (first + step) * SECONDS_PER_INTERVAL + rng.uniform(0, SECONDS_PER_INTERVAL)
        rpi_parts.append(rows)
        aem_parts.append(aems)
        t_parts.append(times)
    sightings = SightingArrays(
        rpi=np.ascontiguousarray(np.concatenate(rpi_parts)),
        t=np.concatenate(t_parts),
        aem=np.ascontiguousarray(np.concatenate(aem_parts)),
    )
    keys = KeyArrays.from_columns(key_data, day_start, TEK_ROLLING_PERIOD)
    return PlantedDay(keys=keys, sightings=sightings, planted=planted)
