"""Store throughput and footprint: batched bucket inserts against one row per transaction.

Measured in one run, into file-backed stores in a temporary directory (WAL, synchronous=NORMAL,
as the daemon runs them): bucket rows/s for batches of ``--batch`` rows, merges into existing
rows, raw sightings/s through ``record_sightings`` (fold + upsert), the same inserts one row per
transaction as the baseline, and bytes per stored bucket row including its index (dbstat, else
the checkpointed file size). Run: ``python bench/bench_store.py [--rows N] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bluezoned.const import SECONDS_PER_INTERVAL, SIGHTING_BUCKET_SECONDS
from bluezoned.models import Sighting, SightingBucket
from bluezoned.store import DB_FILENAME, Store

T0 = 1_795_953_600
DEVICES = 50
"""Beacons in range at once: a busy room. Each bucket width holds one row per device."""
ADVERTS_PER_SECOND = 4.0
"""A GAEN beacon advertises every 200-270 ms."""


def rpi(device: int, t: float) -> bytes:
    """The device's RPI for the 10-minute interval holding ``t`` (random-looking, 16 bytes)."""
    interval = int(t) // SECONDS_PER_INTERVAL
    return hashlib.blake2b(f"{device}:{interval}".encode(), digest_size=16).digest()


def buckets(rows: int, rng: random.Random) -> list[SightingBucket]:
    """``rows`` buckets in time order, ``DEVICES`` per bucket width, like a scanner's output."""
    out: list[SightingBucket] = []
    width = SIGHTING_BUCKET_SECONDS
    for i in range(rows):
        start = T0 + (i // DEVICES) * width
        count = rng.randint(1, 40)
        rssi = [rng.randint(-95, -40) for _ in range(min(count, 4))]
        out.append(
            SightingBucket(
                rpi(i % DEVICES, start),
                start,
                count,
                start + 0.25,
                start + 9.75,
                max(rssi),
                sum(rssi) * count // len(rssi),
                rng.randbytes(4),
            )
        )
    return out


def sightings(adverts: int, rng: random.Random) -> list[Sighting]:
    """``adverts`` raw sightings of ``DEVICES`` beacons at ``ADVERTS_PER_SECOND`` each."""
    step = 1.0 / (ADVERTS_PER_SECOND * DEVICES)
    return [
        Sighting(T0 + i * step, rpi(i % DEVICES, T0 + i * step), b"aem!", rng.randint(-95, -40))
        for i in range(adverts)
    ]


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def run(rows: int, batch: int, baseline_rows: int, adverts: int) -> dict[str, Any]:
    """Every measurement, as one flat dict."""
    rng = random.Random(7)
    rows_data = buckets(rows, rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        with Store.open(root / "batched" / DB_FILENAME) as store:

            def insert_batched() -> None:
                for part in chunks(rows_data, batch):
                    store.add_buckets(part)

            insert_s = timed(insert_batched)
            merge_rows = rows_data[: min(rows, 100_000)]

            def merge_batched() -> None:
                for part in chunks(merge_rows, batch):
                    store.add_buckets(part)

            merge_s = timed(merge_batched)
            stored = store.summary(now=float(T0)).sighting_buckets
            sizes = store.storage_bytes()
        file_bytes = (root / "batched" / DB_FILENAME).stat().st_size  # checkpointed on close
        if sizes is not None:
            table, index = sizes["sightings"], sizes["sightings_bucket"]
            size_method = "dbstat"
        else:
            table, index, size_method = file_bytes, 0, "file size"

        with Store.open(root / "baseline" / DB_FILENAME) as store:
            baseline_data = rows_data[:baseline_rows]

            def insert_one_per_transaction() -> None:
                for bucket in baseline_data:
                    store.add_buckets([bucket])

            baseline_s = timed(insert_one_per_transaction)

        raw = sightings(adverts, rng)
        with Store.open(root / "raw" / DB_FILENAME) as store:
            folded = 0

            def record_raw() -> None:
                nonlocal folded
                for part in chunks(raw, batch * 40):
                    folded += store.record_sightings(part)

            raw_s = timed(record_raw)

    batched_rate = rows / insert_s
    baseline_rate = baseline_rows / baseline_s
    return {
        "sqlite_version": sqlite3.sqlite_version,
        "rows": rows,
        "batch": batch,
        "stored_rows": stored,
        "insert_seconds": insert_s,
        "insert_rows_per_s": batched_rate,
        "merge_rows": len(merge_rows),
        "merge_rows_per_s": len(merge_rows) / merge_s,
        "baseline_rows": baseline_rows,
        "baseline_rows_per_s": baseline_rate,
        "speedup": batched_rate / baseline_rate,
        "adverts": adverts,
        "adverts_buckets": folded,
        "adverts_per_s": adverts / raw_s,
        "size_method": size_method,
        "table_bytes_per_row": table / stored,
        "index_bytes_per_row": index / stored,
        "bytes_per_row": (table + index) / stored,
        "file_bytes_per_row": file_bytes / stored,
    }


def table(r: dict[str, Any]) -> str:
    lines = [
        f"store benchmark: SQLite {r['sqlite_version']}, WAL, synchronous=NORMAL,"
        f" batches of {r['batch']:,} rows",
        f"  {'add_buckets, batched (new rows)':<36}{r['rows']:>10,} rows"
        f"{r['insert_rows_per_s']:>12,.0f} rows/s",
        f"  {'add_buckets, batched (merges)':<36}{r['merge_rows']:>10,} rows"
        f"{r['merge_rows_per_s']:>12,.0f} rows/s",
        f"  {'add_buckets, one row per transaction':<36}{r['baseline_rows']:>10,} rows"
        f"{r['baseline_rows_per_s']:>12,.0f} rows/s  (baseline)",
        f"  {'speedup of batching':<36}{r['speedup']:>27.1f}x",
        f"  {'record_sightings (fold + upsert)':<36}{r['adverts']:>10,} adverts"
        f"{r['adverts_per_s']:>9,.0f} adverts/s -> {r['adverts_buckets']:,} buckets",
        f"  {'bytes per bucket row':<36}{r['bytes_per_row']:>10.1f} B"
        f"  (table {r['table_bytes_per_row']:.1f} + index {r['index_bytes_per_row']:.1f},"
        f" {r['size_method']}; whole file {r['file_bytes_per_row']:.1f} B)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="bucket rows to insert")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per transaction")
    parser.add_argument("--baseline-rows", type=int, default=5_000, help="one-per-txn rows")
    parser.add_argument("--adverts", type=int, default=400_000, help="raw sightings to record")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if min(args.rows, args.batch, args.baseline_rows, args.adverts) < 1:
        parser.error("every count must be at least 1")
    result = run(args.rows, args.batch, args.baseline_rows, args.adverts)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
