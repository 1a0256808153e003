"""Frozen value types shared by every layer: keys, sightings and their aggregates."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bluezoned.const import TEK_ROLLING_PERIOD


class ReportType(enum.IntEnum):
    """Diagnosis report type of a published key (protocol.md §5.2)."""

    UNKNOWN = 0
    CONFIRMED_TEST = 1
    CONFIRMED_CLINICAL_DIAGNOSIS = 2
    SELF_REPORT = 3
    RECURSIVE = 4
    REVOKED = 5


@dataclass(frozen=True, slots=True)
class Tek:
    """A Temporary Exposure Key and the intervals it covers: ``[rolling_start, rolling_start + rolling_period)``."""

    key_data: bytes
    rolling_start: int
    rolling_period: int = TEK_ROLLING_PERIOD

    @property
    def rolling_end(self) -> int:
        """First interval no longer covered by this key."""
        return self.rolling_start + self.rolling_period


@dataclass(frozen=True, slots=True)
class DiagnosisKey:
    """A key as published in an export file, with the optional fields real files carry."""

    key_data: bytes
    rolling_start: int
    rolling_period: int = TEK_ROLLING_PERIOD
    transmission_risk_level: int | None = None
    report_type: ReportType | None = None
    days_since_onset: int | None = None

    @property
    def tek(self) -> Tek:
        """The key schedule part of this published key."""
        return Tek(self.key_data, self.rolling_start, self.rolling_period)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One received advertisement of an EN beacon: unix time, RPI, AEM and RSSI (dBm)."""

    t: float
    rpi: bytes
    aem: bytes
    rssi: int
    address: str | None = None
    adapter: str | None = None


@dataclass(frozen=True, slots=True)
class SightingBucket:
    """All sightings of one RPI within one time bucket, folded together.

    ``bucket`` is the bucket's start (unix seconds, a multiple of the bucket width);
    ``rssi_sum`` is kept instead of the mean so that buckets merge exactly.
    """

    rpi: bytes
    bucket: int
    count: int
    first_seen: float
    last_seen: float
    rssi_max: int
    rssi_sum: int
    aem: bytes

    @property
    def rssi_mean(self) -> float:
        """Mean RSSI of the folded sightings, dBm."""
        return self.rssi_sum / self.count


class BucketFold:
    """The running fold of one (RPI, bucket): what a SightingBucket holds, while it still grows.

    The one definition of how sightings merge, used by the radio's aggregator and the store:
    counts and RSSI sums add, first/last take the extremes, the AEM is the latest sighting's
    (on equal times, the later one's).
    """

    __slots__ = ("aem", "count", "first", "last", "rssi_max", "rssi_sum")

    def __init__(self, t: float, rssi: int, aem: bytes) -> None:
        """Start a fold with one sighting."""
        self.count = 1
        self.first = t
        self.last = t
        self.rssi_max = rssi
        self.rssi_sum = rssi
        self.aem = aem

    def add(self, t: float, rssi: int, aem: bytes) -> None:
        """Fold one more sighting in."""
        self.count += 1
        self.rssi_sum += rssi
        if rssi > self.rssi_max:
            self.rssi_max = rssi
        if t < self.first:
            self.first = t
        if t >= self.last:
            self.last = t
            self.aem = aem

    def bucket(self, rpi: bytes, start: int) -> SightingBucket:
        """The folded row."""
        return SightingBucket(
            rpi, start, self.count, self.first, self.last, self.rssi_max, self.rssi_sum, self.aem
        )
