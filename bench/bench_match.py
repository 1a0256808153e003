"""Matching throughput of every derivation backend, one and several processes, against the naive loop; same run.

The workload is ``benchdata.planted_day``: N keys of one day, 50,000 background sightings
and 100 planted contacts. Every measured path must find exactly the planted keys.
Run: ``python bench/bench_match.py [--keys N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bluezoned.const import MATCH_TOLERANCE_INTERVALS, SECONDS_PER_INTERVAL
from bluezoned.exposure import bulk
from bluezoned.exposure.benchdata import PlantedDay, planted_day
from bluezoned.exposure.matcher import (
    KeyArrays,
    MatchConfig,
    match,
    match_parallel,
    window_sightings,
)


def naive(day: PlantedDay, n_keys: int) -> set[int]:
    """The one-key-at-a-time port: HKDF object, one AES call per key, a dict lookup per RPI."""
    where: dict[bytes, list[int]] = {}
    for i, row in enumerate(day.sightings.rpi):
        where.setdefault(row.tobytes(), []).append(i)
    s_interval = (day.sightings.t // SECONDS_PER_INTERVAL).astype(np.int64)
    matched = set()
    keys = day.keys
    for k in range(n_keys):
        start, period = int(keys.rolling_start[k]), int(keys.rolling_period[k])
        rpik = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=b"EN-RPIK").derive(
            keys.key_data[k].tobytes()
        )
        encryptor = Cipher(algorithms.AES(rpik), modes.ECB()).encryptor()
        block = encryptor.update(bulk.padded_blocks(start, period))
        for j in range(period):
            for s in where.get(block[16 * j : 16 * j + 16], ()):
                if abs(int(s_interval[s]) - (start + j)) <= MATCH_TOLERANCE_INTERVALS:
                    matched.add(k)
    return matched


def timed(label: str, n_keys: int, run: Any, expected: set[int]) -> dict[str, Any]:
    """Run once, check the matched keys, return keys/s."""
    started = time.perf_counter()
    found = run()
    seconds = time.perf_counter() - started
    if set(found) != expected:
        raise SystemExit(f"{label}: matched {len(set(found))} keys, expected {len(expected)}")
    return {"path": label, "keys": n_keys, "seconds": seconds, "keys_per_s": n_keys / seconds}


def main() -> None:
    """Print one line per path with the speed-up over the naive loop measured in the same run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=300_000)
    parser.add_argument("--naive-keys", type=int, default=10_000)
    parser.add_argument("--windowing", type=int, default=5_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    day = planted_day(args.keys, n_planted=100, seed=1)
    planted = set(day.planted.tolist())
    workers = os.cpu_count() or 1
    jit_started = time.perf_counter()
    backends = bulk.available_backends()
    jit_seconds = time.perf_counter() - jit_started

    small = min(args.naive_keys, args.keys)
    small_planted = {k for k in planted if k < small}
    rows = [timed("naive loop", small, lambda: naive(day, small), small_planted)]
    for backend in backends:
        n = small if backend == bulk.BACKEND_CRYPTOGRAPHY else args.keys
        keys: KeyArrays = day.keys.subset(slice(0, n))
        expected = planted if n == args.keys else small_planted
        config = MatchConfig(backend=backend)
        rows.append(
            timed(
                f"{backend}, 1 process",
                n,
                lambda k=keys, c=config: match(k, day.sightings, c).key_index.tolist(),
                expected,
            )
        )
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(abs, range(workers)))
            for backend in backends[:2]:
                config = MatchConfig(backend=backend)
                rows.append(
                    timed(
                        f"{backend}, {workers} processes",
                        args.keys,
                        lambda c=config: match_parallel(
                            day.keys, day.sightings, c, executor=pool, tasks=2 * workers
                        ).key_index.tolist(),
                        planted,
                    )
                )
        with ThreadPoolExecutor(max_workers=workers) as threads:
            config = MatchConfig(backend=backends[0])
            rows.append(
                timed(
                    f"{backends[0]}, {workers} threads",
                    args.keys,
                    lambda: match_parallel(
                        day.keys, day.sightings, config, executor=threads, tasks=2 * workers
                    ).key_index.tolist(),
                    planted,
                )
            )
    base = rows[0]["keys_per_s"]
    for row in rows:
        row["speedup"] = row["keys_per_s"] / base

    rng = np.random.default_rng(2)
    n = args.windowing
    key_index = np.sort(rng.integers(0, max(1, n // 200), n)).astype(np.int64)
    times = 1.74e9 + rng.uniform(0, 14 * 86_400, n)
    order = np.lexsort((times, key_index))
    sorted_t, sorted_k = times[order], key_index[order]
    windowing: dict[str, float] = {}
    for label, t, k in (
        ("sorted", sorted_t, sorted_k),
        ("unsorted", times, rng.permutation(key_index)),
    ):
        started = time.perf_counter()
        window_sightings(t, k)
        windowing[f"{label}_sightings_per_s"] = n / (time.perf_counter() - started)

    report = {
        "jit_seconds": jit_seconds,
        "backends": list(backends),
        "paths": rows,
        "windowing": windowing,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"backend setup (numba compile when present): {jit_seconds:.1f} s, once per process, before the clock"
    )
    print(f"{'path':<28}{'keys':>10}{'seconds':>10}{'keys/s':>12}{'vs naive':>10}")
    for r in rows:
        print(
            f"{r['path']:<28}{r['keys']:>10,}{r['seconds']:>10.3f}{r['keys_per_s']:>12,.0f}{r['speedup']:>9.1f}x"
        )
    for label, rate in windowing.items():
        print(f"windowing {label:<28}{rate:>14,.0f}")


if __name__ == "__main__":
    main()
