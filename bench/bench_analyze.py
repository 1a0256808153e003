"""``bluezoned analyze`` throughput: CSV parsing and the contact engine on a day of sightings.

A seeded capture of ``--rows`` sightings from ``--ids`` transmitters spread over one day is
parsed (rows/s) and analysed (contacts/s, sightings/s). The baseline, run in the same process
on the same contacts, is the engine's 30-minute running median computed window by window with
``np.median`` (the implementation before the vectorised one), against the vectorised
``contacts.running_median``; both are checked equal. The parsed ids' memory, with one id of 128
characters, is set against the fixed-width string column the parser used to build. Run:
``python bench/bench_analyze.py [--rows N] [--ids K] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np

from bluezoned.exposure.contacts import (
    EngineConfig,
    analyze_contacts,
    attenuation,
    observation_units,
    running_median,
)
from bluezoned.exposure.rssi_csv import parse_rssi_csv_bytes

T0 = 1_795_953_600
DAY_S = 86_400


def capture(rows: int, ids: int, seed: int = 0) -> bytes:
    """A CSV of ``rows`` sightings (id,t,rssi) from ``ids`` transmitters over one day."""
    rng = np.random.default_rng(seed)
    ident = rng.integers(0, ids, rows)
    t = T0 + rng.uniform(0, DAY_S, rows)
    rssi = rng.integers(-100, -40, rows)
    lines = ["id,t,rssi"]
    lines.extend(f"id{i},{s:.3f},{r}" for i, s, r in zip(ident, t, rssi, strict=True))
    return ("\n".join(lines) + "\n").encode("ascii")


def per_window_median(t: np.ndarray, x: np.ndarray, width_s: float) -> np.ndarray:
    """The baseline: one ``np.median`` call per window."""
    lo = np.searchsorted(t, t - width_s / 2.0, side="left")
    hi = np.searchsorted(t, t + width_s / 2.0, side="right")
    return np.asarray([np.median(x[a:b]) for a, b in zip(lo, hi, strict=True)])


def run(rows: int, ids: int) -> dict[str, Any]:
    """Measure parse, engine and the running-median baseline; the numbers as a dict."""
    data = capture(rows, ids)
    started = time.perf_counter()
    table = parse_rssi_csv_bytes(data)
    parse_s = time.perf_counter() - started
    config = EngineConfig()
    started = time.perf_counter()
    contacts = analyze_contacts(
        table.codes, table.t, table.rssi, table.tx_power, config=config, labels=table.labels
    )
    engine_s = time.perf_counter() - started
    # The smoothing step alone, on every contact's units, both ways.
    series = []
    order = np.lexsort((table.t, table.codes))
    by_id, t_all, rssi_all = table.codes[order], table.t[order], table.rssi[order]
    bounds = np.flatnonzero(np.r_[True, by_id[1:] != by_id[:-1], True])
    unsmoothed = EngineConfig(smoothing_s=0.0)
    for a, b in itertools.pairwise(bounds.tolist()):
        att, _ = attenuation(
            rssi_all[a:b], None, default_tx=config.default_tx_power, rx_correction=0.0
        )
        units = observation_units(t_all[a:b], att, unsmoothed)
        series.append((units.t, units.level))
    started = time.perf_counter()
    fast = [running_median(t, x, config.smoothing_s) for t, x in series]
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = [per_window_median(t, x, config.smoothing_s) for t, x in series]
    slow_s = time.perf_counter() - started
    if not all(np.allclose(a, b) for a, b in zip(fast, slow, strict=True)):
        raise SystemExit("the vectorised running median disagrees with the per-window one")
    units_total = sum(t.size for t, _ in series)
    # Memory of the parsed ids when one id is 128 characters long (hostile or just verbose):
    # codes into distinct labels, against the fixed-width string column they replaced.
    long_table = parse_rssi_csv_bytes(data + ("x" * 128 + f",{T0},-60\n").encode("ascii"))
    ids_bytes = long_table.codes.nbytes + sum(len(label) for label in long_table.labels)
    fixed_width_bytes = np.asarray(long_table.labels, dtype=np.str_)[long_table.codes].nbytes
    return {
        "rows": rows,
        "contacts": len(contacts),
        "parse_rows_per_s": rows / parse_s,
        "engine_contacts_per_s": len(contacts) / engine_s,
        "engine_sightings_per_s": rows / engine_s,
        "analyze_seconds": parse_s + engine_s,
        "smoothing_units": units_total,
        "smoothing_units_per_s": units_total / fast_s,
        "baseline_smoothing_units_per_s": units_total / slow_s,
        "smoothing_speedup": slow_s / fast_s,
        "ids_bytes_with_a_128_char_id": ids_bytes,
        "baseline_fixed_width_ids_bytes": fixed_width_bytes,
    }


def main() -> None:
    """Print the measurements as a table, or as JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ids", type=int, default=5_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.rows, args.ids)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"analyze, {result['rows']:,} sightings from {result['contacts']:,} transmitters, one day"
    )
    print(f"  CSV parsing                    {result['parse_rows_per_s']:>12,.0f} rows/s")
    print(f"  engine                         {result['engine_contacts_per_s']:>12,.0f} contacts/s")
    print(
        f"                                 {result['engine_sightings_per_s']:>12,.0f} sightings/s"
    )
    print(f"  whole analyze                  {result['analyze_seconds']:>12.2f} s")
    print(
        f"  30-min smoothing, vectorised   {result['smoothing_units_per_s']:>12,.0f} units/s  "
        f"(per-window np.median {result['baseline_smoothing_units_per_s']:,.0f}/s, "
        f"x{result['smoothing_speedup']:.1f})"
    )
    print(
        f"  ids, one of them 128 chars     {result['ids_bytes_with_a_128_char_id'] / 1e6:>12.1f} MB  "
        f"(a fixed-width string column {result['baseline_fixed_width_ids_bytes'] / 1e6:,.0f} MB)"
    )


if __name__ == "__main__":
    main()
