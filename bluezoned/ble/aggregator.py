"""Fold Sightings into (RPI, bucket) rows in memory and hand closed buckets to a writer in batches.

Pure: no asyncio, no clock, no I/O; the caller passes ``now`` (unix seconds, the time base of
``Sighting.t``). The fold is the store's (``store.fold_sightings``): count, first/last seen,
RSSI max and sum, the AEM of the latest sighting (ties: the later one). A sighting arriving
after its bucket was handed over opens a new partial row, which the store's upsert merges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from bluezoned.const import AEM_LENGTH, RPI_LENGTH, SECONDS_PER_INTERVAL, SIGHTING_BUCKET_SECONDS
from bluezoned.errors import InvalidInput
from bluezoned.models import BucketFold, Sighting, SightingBucket

Writer = Callable[[list[SightingBucket]], object]
"""Receives each batch of closed buckets; the batch is no longer held by the aggregator."""

DEFAULT_GRACE_SECONDS: Final = 2.0
"""A bucket stays open this long after its end, for adverts queued just before the boundary."""
DEFAULT_MAX_OPEN_BUCKETS: Final = 50_000
"""About 10 MB of open rows: 500 devices for 100 buckets, or a 10,000-RPI flood, fit easily."""
DEFAULT_BATCH_SIZE: Final = 5_000
"""Rows per writer call, so one store transaction stays short."""


@dataclass(slots=True)
class AggregatorStats:
    """What the aggregator has done so far."""

    sightings: int = 0
    invalid: int = 0
    buckets_written: int = 0
    batches: int = 0
    forced_flushes: int = 0


class Aggregator:
    """Accumulates sightings per (RPI, bucket) and writes buckets once they are closed."""

    def __init__(
        self,
        writer: Writer,
        *,
        bucket_seconds: int = SIGHTING_BUCKET_SECONDS,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        max_open_buckets: int = DEFAULT_MAX_OPEN_BUCKETS,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if bucket_seconds <= 0 or SECONDS_PER_INTERVAL % bucket_seconds:
            raise InvalidInput(
                f"bucket width {bucket_seconds!r} must divide {SECONDS_PER_INTERVAL}"
            )
        if max_open_buckets < 1 or batch_size < 1 or grace_seconds < 0:
            raise InvalidInput("max_open_buckets and batch_size must be >= 1, grace >= 0")
        self._writer = writer
        self._width = bucket_seconds
        self._grace = grace_seconds
        self._max_open = max_open_buckets
        self._batch_size = batch_size
        self._open: dict[int, dict[bytes, BucketFold]] = {}
        self._open_count = 0
        self.stats = AggregatorStats()

    @property
    def open_buckets(self) -> int:
        """Rows currently held in memory."""
        return self._open_count

    def add(self, s: Sighting) -> None:
        """Fold one sighting; malformed ones are counted and dropped; may force a flush."""
        rpi, aem, t = s.rpi, s.aem, s.t
        if len(rpi) != RPI_LENGTH or len(aem) != AEM_LENGTH or not math.isfinite(t):
            self.stats.invalid += 1
            return
        self.stats.sightings += 1
        start = int(t // self._width) * self._width
        row = self._open.get(start)
        if row is None:
            row = self._open[start] = {}
        fold = row.get(rpi)
        if fold is not None:
            fold.add(t, s.rssi, aem)
            return
        row[rpi] = BucketFold(t, s.rssi, aem)
        self._open_count += 1
        if self._open_count > self._max_open:
            self._force_flush()

    def add_many(self, sightings: Iterable[Sighting]) -> None:
        """Fold several sightings."""
        for s in sightings:
            self.add(s)

    def tick(self, now: float) -> int:
        """Write every bucket that ended at least ``grace`` seconds before ``now``; returns rows."""
        limit = now - self._grace - self._width
        closed = [start for start in self._open if start <= limit]
        return self._write(sorted(closed))

    def flush(self) -> int:
        """Write every open bucket (shutdown); returns rows."""
        return self._write(sorted(self._open))

    def _force_flush(self) -> None:
        # Oldest buckets first: they are the likeliest to be complete already.
        self.stats.forced_flushes += 1
        starts = sorted(self._open)
        chosen: list[int] = []
        remaining = self._open_count
        for start in starts:
            if remaining <= self._max_open // 2:
                break
            chosen.append(start)
            remaining -= len(self._open[start])
        self._write(chosen)

    def _write(self, starts: list[int]) -> int:
        rows: list[SightingBucket] = []
        for start in starts:
            row = self._open.pop(start)
            self._open_count -= len(row)
            rows.extend(fold.bucket(rpi, start) for rpi, fold in row.items())
        for i in range(0, len(rows), self._batch_size):
            batch = rows[i : i + self._batch_size]
            self.stats.batches += 1
            self.stats.buckets_written += len(batch)
            self._writer(batch)
        return len(rows)
