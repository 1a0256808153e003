"""Match published diagnosis keys against stored sightings (protocol.md §4.6, §5.5 step 4).

Pure: arrays and a config in, frozen results out; no I/O, no clock, no store. For each key
whose validity widened by the ±12-interval tolerance touches the sightings, the RPIs of just
the touching intervals are derived in bulk (``bulk.derive_rpis_bulk``), joined against the
sighting RPIs through a 64-bit-prefix table confirmed on all 16 bytes, checked against the
RPI's own interval, and the matched sightings' AEMs are decrypted for the TX power. All
sightings of one key form one contact, linked across its RPI rotations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence, Set
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bluezoned.const import (
    AEM_LENGTH,
    EXPOSURE_WINDOW_SECONDS,
    MATCH_CHUNK_RPIS,
    MATCH_PARALLEL_MIN_KEYS,
    MATCH_TOLERANCE_INTERVALS,
    METADATA_MAJOR_VERSION,
    RETENTION_DAYS,
    RPI_LENGTH,
    SECONDS_PER_INTERVAL,
    TEK_LENGTH,
    TEK_ROLLING_PERIOD,
    TX_POWER_MAX_ACCEPTED,
    TX_POWER_MIN_ACCEPTED,
)
from bluezoned.errors import InvalidInput
from bluezoned.exposure.bulk import prefix_candidates, prefix_table
from bluezoned.exposure.keys import derive_aemk
from bluezoned.models import DiagnosisKey, Sighting, SightingBucket, Tek

U8Array = npt.NDArray[np.uint8]
I8Array = npt.NDArray[np.int8]
I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
F64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_PREFIX_TABLE_MIN_BITS: Final = 16
_PREFIX_TABLE_MAX_BITS: Final = 27
"""2^27 bits = 16 MiB: enough for ~500,000 distinct sighting RPIs at the full spare ratio."""
_PREFIX_TABLE_SPARE_BITS: Final = 8
"""2^8 table bits per distinct sighting RPI: under 1/256 of derived RPIs reach the exact check,
while the table (2 MiB for 50,000 RPIs) stays in cache beside the AES work."""


def _empty_i64() -> I64Array:
    return np.empty(0, dtype=np.int64)


# --- Inputs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class KeyArrays:
    """N published keys as columns: key bytes (N, 16), first interval, period, publication time (NaN: unknown)."""

    key_data: U8Array
    rolling_start: I64Array
    rolling_period: I64Array
    published_at: F64Array
    """Unix seconds at which the key became public; sightings at or after it are replays."""

    def __post_init__(self) -> None:
        """Check shapes and dtypes once so the hot path need not."""
        n = self.key_data.shape[0] if self.key_data.ndim == 2 else -1
        if self.key_data.shape != (n, TEK_LENGTH) or self.key_data.dtype != np.uint8:
            raise InvalidInput(f"key_data must be (N, {TEK_LENGTH}) uint8")
        for name in ("rolling_start", "rolling_period", "published_at"):
            if getattr(self, name).shape != (n,):
                raise InvalidInput(f"{name} must have shape ({n},)")

    def __len__(self) -> int:
        """Number of keys."""
        return int(self.key_data.shape[0])

    @classmethod
    def from_keys(
        cls,
        keys: Sequence[DiagnosisKey | Tek],
        published_at: float | Sequence[float] | None = None,
    ) -> KeyArrays:
        """Columns of model keys; ``published_at`` is one time for all, one per key, or None."""
        n = len(keys)
        data = np.frombuffer(b"".join(k.key_data for k in keys), dtype=np.uint8)
        if data.size != n * TEK_LENGTH:
            raise InvalidInput(f"every key must be {TEK_LENGTH} bytes")
        if published_at is None:
            published = np.full(n, np.nan)
        elif isinstance(published_at, int | float):
            published = np.full(n, float(published_at))
        else:
            published = np.asarray(published_at, dtype=np.float64)
        return cls(
            key_data=data.reshape(n, TEK_LENGTH).copy(),
            rolling_start=np.fromiter((k.rolling_start for k in keys), np.int64, n),
            rolling_period=np.fromiter((k.rolling_period for k in keys), np.int64, n),
            published_at=published,
        )

    @classmethod
    def from_columns(
        cls,
        key_data: U8Array,
        rolling_start: I64Array | int,
        rolling_period: I64Array | int = TEK_ROLLING_PERIOD,
        published_at: F64Array | float | None = None,
    ) -> KeyArrays:
        """Columns with scalars broadcast; the cheap way to build a national day of keys."""
        n = int(key_data.shape[0])
        published = np.nan if published_at is None else published_at
        return cls(
            key_data=np.ascontiguousarray(key_data, dtype=np.uint8),
            rolling_start=np.broadcast_to(np.asarray(rolling_start, dtype=np.int64), (n,)).copy(),
            rolling_period=np.broadcast_to(np.asarray(rolling_period, dtype=np.int64), (n,)).copy(),
            published_at=np.broadcast_to(np.asarray(published, dtype=np.float64), (n,)).copy(),
        )

    def subset(self, index: I64Array | slice | BoolArray) -> KeyArrays:
        """The keys at ``index``, in that order."""
        return KeyArrays(
            key_data=np.ascontiguousarray(self.key_data[index]),
            rolling_start=self.rolling_start[index],
            rolling_period=self.rolling_period[index],
            published_at=self.published_at[index],
        )


@dataclass(frozen=True, slots=True, eq=False)
class SightingArrays:
    """M stored sightings as columns: RPI (M, 16), unix time, AEM (M, 4); row i is sighting index i."""

    rpi: U8Array
    t: F64Array
    aem: U8Array

    def __post_init__(self) -> None:
        """Check shapes and dtypes once so the hot path need not."""
        m = self.t.shape[0] if self.t.ndim == 1 else -1
        if self.rpi.shape != (m, RPI_LENGTH) or self.rpi.dtype != np.uint8:
            raise InvalidInput(f"rpi must be (M, {RPI_LENGTH}) uint8 with M = len(t)")
        if self.aem.shape != (m, AEM_LENGTH) or self.aem.dtype != np.uint8:
            raise InvalidInput(f"aem must be (M, {AEM_LENGTH}) uint8 with M = len(t)")

    def __len__(self) -> int:
        """Number of sightings."""
        return int(self.t.shape[0])

    @classmethod
    def from_buckets(cls, buckets: Sequence[SightingBucket]) -> SightingArrays:
        """Columns of the store's per-(RPI, 10-s bucket) rows; a bucket's time is its first sighting."""
        return cls._build(
            [b.rpi for b in buckets], [b.first_seen for b in buckets], [b.aem for b in buckets]
        )

    @classmethod
    def from_sightings(cls, sightings: Sequence[Sighting]) -> SightingArrays:
        """Columns of raw sightings."""
        return cls._build(
            [s.rpi for s in sightings], [s.t for s in sightings], [s.aem for s in sightings]
        )

    @classmethod
    def _build(cls, rpis: list[bytes], times: list[float], aems: list[bytes]) -> SightingArrays:
        m = len(times)
        rpi = np.frombuffer(b"".join(rpis), dtype=np.uint8)
        aem = np.frombuffer(b"".join(aems), dtype=np.uint8)
        if rpi.size != m * RPI_LENGTH or aem.size != m * AEM_LENGTH:
            raise InvalidInput(f"every RPI must be {RPI_LENGTH} and every AEM {AEM_LENGTH} bytes")
        return cls(
            rpi=rpi.reshape(m, RPI_LENGTH).copy(),
            t=np.asarray(times, dtype=np.float64),
            aem=aem.reshape(m, AEM_LENGTH).copy(),
        )


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Matching rules: the ±tolerance in intervals, the accepted TX-power window, the chunk size."""

    tolerance_intervals: int = MATCH_TOLERANCE_INTERVALS
    tx_power_min: int = TX_POWER_MIN_ACCEPTED
    tx_power_max: int = TX_POWER_MAX_ACCEPTED
    chunk_rpis: int = MATCH_CHUNK_RPIS
    backend: str | None = None
    """Derivation backend of ``bulk`` (None: the fastest available)."""


# --- Outputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class KeyContact:
    """All accepted sightings of one key (one contact across its RPI rotations), in time order."""

    key_index: int
    sighting_index: I64Array
    rpi_interval: I64Array
    """The interval of the RPI each sighting matched (not the sighting's own time)."""
    tx_power: I8Array
    """Decrypted TX power per sighting, dBm, inside the accepted window."""
    calibration_confidence: U8Array


@dataclass(frozen=True, slots=True, eq=False)
class MatchResult:
    """Hits as flat arrays sorted by (key, time), cut per matched key by ``offsets`` (CSR).

    Only accepted sightings are in the hit arrays: before the key's publication and with a
    plausible decrypted AEM. Replays (sighted at or after publication) and AEM rejects
    (major version not 1 or TX power outside the window, protocol.md §2.5) are listed apart
    as (key index, sighting index) pairs and never count towards a contact.
    """

    key_index: I64Array
    """Matched keys (indices into the input keys), ascending; K entries."""
    offsets: I64Array
    """K + 1 entries: the hits of ``key_index[j]`` are ``offsets[j]:offsets[j + 1]``."""
    sighting_index: I64Array
    rpi_interval: I64Array
    tx_power: I8Array
    calibration_confidence: U8Array
    replay_key_index: I64Array = field(default_factory=_empty_i64)
    replay_sighting_index: I64Array = field(default_factory=_empty_i64)
    rejected_key_index: I64Array = field(default_factory=_empty_i64)
    rejected_sighting_index: I64Array = field(default_factory=_empty_i64)
    keys_derived: int = 0
    """Keys whose validity touched the sightings, so their RPIs were derived."""
    rpis_derived: int = 0

    @property
    def hit_key_index(self) -> I64Array:
        """The key index of every hit, aligned with ``sighting_index``."""
        return np.repeat(self.key_index, np.diff(self.offsets))

    def __len__(self) -> int:
        """Number of matched keys (contacts)."""
        return int(self.key_index.shape[0])

    def contacts(self) -> list[KeyContact]:
        """One ``KeyContact`` per matched key, in key order."""
        return [self.contact(j) for j in range(len(self))]

    def contact(self, j: int) -> KeyContact:
        """The ``j``-th matched key's contact."""
        lo, hi = int(self.offsets[j]), int(self.offsets[j + 1])
        return KeyContact(
            key_index=int(self.key_index[j]),
            sighting_index=self.sighting_index[lo:hi],
            rpi_interval=self.rpi_interval[lo:hi],
            tx_power=self.tx_power[lo:hi],
            calibration_confidence=self.calibration_confidence[lo:hi],
        )


# --- Key selection (protocol.md §5.5 step 3) ----------------------------------------------


def select_keys(
    keys: KeyArrays,
    *,
    now_interval: int,
    oldest_sighting_interval: int | None,
    known: Set[bytes] = frozenset(),
    retention_days: int = RETENTION_DAYS,
    tolerance_intervals: int = MATCH_TOLERANCE_INTERVALS,
) -> BoolArray:
    """Mask of keys worth matching: inside retention, not ended (+tolerance) before the oldest sighting, not in ``known``."""
    keep = keys.rolling_start >= now_interval - retention_days * TEK_ROLLING_PERIOD
    if oldest_sighting_interval is None:
        keep &= False
    else:
        last = keys.rolling_start + keys.rolling_period - 1
        keep &= last + tolerance_intervals >= oldest_sighting_interval
    keep &= keys.rolling_period > 0
    if known:
        candidates = np.flatnonzero(keep)
        flat = keys.key_data[candidates].tobytes()
        is_known = np.fromiter(
            (flat[j : j + TEK_LENGTH] in known for j in range(0, len(flat), TEK_LENGTH)),
            dtype=bool,
            count=candidates.size,
        )
        keep[candidates[is_known]] = False
    return keep


# --- Matching --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _SightingIndex:
    """Distinct sighting RPIs sorted by (first 8 bytes, last 8 bytes), with a prefix table."""

    hi: U64Array
    lo: U64Array
    first: I64Array
    """Start of each distinct RPI's run in ``order``."""
    count: I64Array
    order: I64Array
    """Sighting indices sorted by RPI."""
    table: U8Array
    """One bit per 64-bit-prefix slot (``bulk.prefix_table``)."""
    shift: int
    shared_prefix: bool
    """Whether two distinct RPIs share their first 8 bytes (then confirmation scans runs)."""


def _index_sightings(sightings: SightingArrays) -> _SightingIndex:
    words = sightings.rpi.view("<u8")
    hi_all, lo_all = words[:, 0], words[:, 1]
    order = np.lexsort((lo_all, hi_all)).astype(np.int64)
    hi_sorted, lo_sorted = hi_all[order], lo_all[order]
    new = np.ones(order.shape[0], dtype=bool)
    new[1:] = (hi_sorted[1:] != hi_sorted[:-1]) | (lo_sorted[1:] != lo_sorted[:-1])
    first = np.flatnonzero(new).astype(np.int64)
    count = np.diff(np.append(first, order.shape[0])).astype(np.int64)
    distinct = first.shape[0]
    bits = math.ceil(math.log2(max(distinct, 1))) + _PREFIX_TABLE_SPARE_BITS
    bits = min(max(bits, _PREFIX_TABLE_MIN_BITS), _PREFIX_TABLE_MAX_BITS)
    hi = hi_sorted[first]
    table, shift = prefix_table(sightings.rpi[order[first]], bits)
    shared_prefix = bool((hi[1:] == hi[:-1]).any())
    return _SightingIndex(hi, lo_sorted[first], first, count, order, table, shift, shared_prefix)


def match(
    keys: KeyArrays, sightings: SightingArrays, config: MatchConfig = MatchConfig()
) -> MatchResult:
    """Match every key against every sighting; the caller has already dropped old and known keys."""
    if len(keys) == 0 or len(sightings) == 0:
        return _empty_result()
    if not bool(np.isfinite(sightings.t).all()):
        raise InvalidInput("sighting times must be finite unix seconds")
    tol = config.tolerance_intervals
    s_interval = np.floor_divide(sightings.t, SECONDS_PER_INTERVAL).astype(np.int64)
    smin, smax = int(s_interval.min()), int(s_interval.max())
    # Only intervals with some sighting within ±tol can match: the rest need no crypto.
    first = np.maximum(keys.rolling_start, smin - tol)
    last = np.minimum(keys.rolling_start + keys.rolling_period - 1, smax + tol)
    live = np.flatnonzero((last >= first) & (keys.rolling_period > 0))
    if live.size == 0:
        return _empty_result()
    first, count = first[live], (last - first + 1)[live]
    index = _index_sightings(sightings)

    hit_keys: list[I64Array] = []
    hit_sightings: list[I64Array] = []
    hit_intervals: list[I64Array] = []
    ends = np.cumsum(count)
    chunk = max(int(config.chunk_rpis), TEK_ROLLING_PERIOD)
    cut = 0
    while cut < live.size:
        stop = int(np.searchsorted(ends, (ends[cut - 1] if cut else 0) + chunk, side="right"))
        stop = max(stop, cut + 1)
        k, s, i = _join_chunk(keys, live[cut:stop], first[cut:stop], count[cut:stop], index, config)
        hit_keys.append(k)
        hit_sightings.append(s)
        hit_intervals.append(i)
        cut = stop

    key_hit = np.concatenate(hit_keys)
    sid = np.concatenate(hit_sightings)
    rpi_int = np.concatenate(hit_intervals)
    near = np.abs(s_interval[sid] - rpi_int) <= tol
    key_hit, sid, rpi_int = key_hit[near], sid[near], rpi_int[near]
    return _finish(keys, sightings, key_hit, sid, rpi_int, config, int(live.size), int(count.sum()))


def _join_chunk(
    keys: KeyArrays,
    key_idx: I64Array,
    first: I64Array,
    count: I64Array,
    index: _SightingIndex,
    config: MatchConfig,
) -> tuple[I64Array, I64Array, I64Array]:
    """Derive one chunk's RPIs and return (key index, sighting index, RPI interval) per candidate pair."""
    cand, cand_rpi = prefix_candidates(
        keys.key_data[key_idx], first, count, index.table, index.shift, backend=config.backend
    )
    if cand.size == 0:
        return _empty_i64(), _empty_i64(), _empty_i64()
    words = cand_rpi.view("<u8")
    c_hi, c_lo = words[:, 0], words[:, 1]
    left = np.searchsorted(index.hi, c_hi, side="left")
    safe = np.minimum(left, index.hi.shape[0] - 1)
    unique = np.where((index.hi[safe] == c_hi) & (index.lo[safe] == c_lo), left, -1)
    if index.shared_prefix:
        # Distinct sighting RPIs sharing 64 bits (p ~ 2^-64 per pair): scan their run.
        right = np.searchsorted(index.hi, c_hi, side="right")
        for j in np.flatnonzero((right - left > 1) & (unique < 0)):
            same = np.flatnonzero(index.lo[left[j] : right[j]] == c_lo[j])
            if same.size:
                unique[j] = left[j] + same[0]
    found = unique >= 0
    cand, unique = cand[found], unique[found]
    if cand.size == 0:
        return _empty_i64(), _empty_i64(), _empty_i64()
    ends = np.cumsum(count)
    owner = np.searchsorted(ends, cand, side="right")
    starts = ends - count
    interval = first[owner] + (cand - starts[owner])
    # Expand each matched distinct RPI to all its stored sightings.
    reps = index.count[unique]
    pair_owner = np.repeat(owner, reps)
    pair_interval = np.repeat(interval, reps)
    run_start = np.repeat(index.first[unique], reps)
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    sid = index.order[run_start + within]
    return key_idx[pair_owner], sid, pair_interval


def _finish(
    keys: KeyArrays,
    sightings: SightingArrays,
    key_hit: I64Array,
    sid: I64Array,
    rpi_int: I64Array,
    config: MatchConfig,
    keys_derived: int,
    rpis_derived: int,
) -> MatchResult:
    """Decrypt AEMs, split off replays and rejects, sort by (key, time)."""
    meta = _decrypt_metadata(keys, sightings, key_hit, sid)
    tx = meta[:, 1].view(np.int8)
    plausible = (
        (meta[:, 0] >> 6 == METADATA_MAJOR_VERSION)
        & (tx >= config.tx_power_min)
        & (tx <= config.tx_power_max)
    )
    published = keys.published_at[key_hit]
    replay = ~np.isnan(published) & (sightings.t[sid] >= published)
    accepted = plausible & ~replay
    rejected = ~plausible & ~replay

    order = np.lexsort((sid, sightings.t[sid], key_hit))
    order = order[accepted[order]]
    key_sorted = key_hit[order]
    matched, starts = np.unique(key_sorted, return_index=True)
    return MatchResult(
        key_index=matched.astype(np.int64),
        offsets=np.append(starts, key_sorted.shape[0]).astype(np.int64),
        sighting_index=sid[order],
        rpi_interval=rpi_int[order],
        tx_power=tx[order].copy(),
        calibration_confidence=((meta[order, 0] >> 2) & 0b11).astype(np.uint8),
        replay_key_index=key_hit[replay],
        replay_sighting_index=sid[replay],
        rejected_key_index=key_hit[rejected],
        rejected_sighting_index=sid[rejected],
        keys_derived=keys_derived,
        rpis_derived=rpis_derived,
    )


def _decrypt_metadata(
    keys: KeyArrays, sightings: SightingArrays, key_hit: I64Array, sid: I64Array
) -> U8Array:
    """Metadata = AEM XOR AES-ECB(AEMK, RPI)[:4] per hit (protocol.md §2.4), one cipher call per key."""
    meta = np.empty((sid.shape[0], AEM_LENGTH), dtype=np.uint8)
    if sid.size == 0:
        return meta
    by_key = np.argsort(key_hit, kind="stable")
    bounds = np.flatnonzero(np.diff(key_hit[by_key])) + 1
    for group in np.split(by_key, bounds):
        aemk = derive_aemk(keys.key_data[key_hit[group[0]]].tobytes())
        encryptor = Cipher(algorithms.AES(aemk), modes.ECB()).encryptor()  # noqa: S305 - CTR's first block is ECB of the RPI
        stream = np.frombuffer(encryptor.update(sightings.rpi[sid[group]].tobytes()), np.uint8)
        meta[group] = sightings.aem[sid[group]] ^ stream.reshape(-1, RPI_LENGTH)[:, :AEM_LENGTH]
    return meta


def _empty_result() -> MatchResult:
    return MatchResult(
        key_index=_empty_i64(),
        offsets=np.zeros(1, dtype=np.int64),
        sighting_index=_empty_i64(),
        rpi_interval=_empty_i64(),
        tx_power=np.empty(0, dtype=np.int8),
        calibration_confidence=np.empty(0, dtype=np.uint8),
    )


# --- Several processes -----------------------------------------------------------------


def match_parallel(
    keys: KeyArrays,
    sightings: SightingArrays,
    config: MatchConfig = MatchConfig(),
    *,
    executor: Executor | None,
    tasks: int,
    min_keys: int = MATCH_PARALLEL_MIN_KEYS,
) -> MatchResult:
    """``match`` split into ``tasks`` key ranges on ``executor``; one process when small or no executor. Same result."""
    if executor is None or tasks <= 1 or len(keys) < min_keys:
        return match(keys, sightings, config)
    bounds = np.linspace(0, len(keys), tasks + 1).astype(np.int64).tolist()
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    futures = [
        executor.submit(match, keys.subset(slice(a, b)), sightings, config) for a, b in ranges
    ]
    parts = [f.result() for f in futures]
    starts = [a for a, _ in ranges]
    return merge_results(parts, starts)


def merge_results(parts: Iterable[MatchResult], key_offsets: Iterable[int]) -> MatchResult:
    """Concatenate results of consecutive key ranges starting at ``key_offsets``; keys stay ascending."""
    parts = list(parts)
    shifts = list(key_offsets)
    if not parts:
        return _empty_result()
    hit_counts = [int(p.offsets[-1]) for p in parts]
    base = np.cumsum([0, *hit_counts[:-1]])
    return MatchResult(
        key_index=np.concatenate([p.key_index + s for p, s in zip(parts, shifts, strict=True)]),
        offsets=np.concatenate(
            [np.zeros(1, np.int64)] + [p.offsets[1:] + b for p, b in zip(parts, base, strict=True)]
        ),
        sighting_index=np.concatenate([p.sighting_index for p in parts]),
        rpi_interval=np.concatenate([p.rpi_interval for p in parts]),
        tx_power=np.concatenate([p.tx_power for p in parts]),
        calibration_confidence=np.concatenate([p.calibration_confidence for p in parts]),
        replay_key_index=np.concatenate(
            [p.replay_key_index + s for p, s in zip(parts, shifts, strict=True)]
        ),
        replay_sighting_index=np.concatenate([p.replay_sighting_index for p in parts]),
        rejected_key_index=np.concatenate(
            [p.rejected_key_index + s for p, s in zip(parts, shifts, strict=True)]
        ),
        rejected_sighting_index=np.concatenate([p.rejected_sighting_index for p in parts]),
        keys_derived=sum(p.keys_derived for p in parts),
        rpis_derived=sum(p.rpis_derived for p in parts),
    )


# --- Windowing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Windows:
    """Sightings grouped per (key, aligned time window): ``order[offsets[w]:offsets[w + 1]]`` is window w."""

    order: I64Array
    """Positions into the input arrays, sorted by (key, time)."""
    offsets: I64Array
    key_index: I64Array
    """Key of each window."""
    start: F64Array
    """Unix second at which each window begins (a multiple of the width)."""

    def __len__(self) -> int:
        """Number of windows."""
        return int(self.key_index.shape[0])


def window_sightings(
    times: F64Array,
    key_index: I64Array,
    *,
    window_seconds: float = EXPOSURE_WINDOW_SECONDS,
) -> Windows:
    """Group sightings into per-key windows aligned on multiples of ``window_seconds``; O(n) when already sorted by (key, time)."""
    if window_seconds <= 0:
        raise InvalidInput(f"window width must be positive, got {window_seconds}")
    if times.shape != key_index.shape or times.ndim != 1:
        raise InvalidInput("times and key_index must be 1-D arrays of one length")
    n = times.shape[0]
    if n == 0:
        return Windows(_empty_i64(), np.zeros(1, np.int64), _empty_i64(), np.empty(0))
    sorted_already = bool(
        np.all(
            (key_index[1:] > key_index[:-1])
            | ((key_index[1:] == key_index[:-1]) & (times[1:] >= times[:-1]))
        )
    )
    if sorted_already:
        order = np.arange(n, dtype=np.int64)
        t, k = times, key_index
    else:
        order = np.lexsort((times, key_index)).astype(np.int64)
        t, k = times[order], key_index[order]
    bucket = np.floor_divide(t, window_seconds)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=new[1:])
    new[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(new)
    return Windows(
        order=order,
        offsets=np.append(starts, n).astype(np.int64),
        key_index=k[starts].astype(np.int64),
        start=bucket[starts] * window_seconds,
    )
