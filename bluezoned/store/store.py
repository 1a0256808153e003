"""The SQLite store: typed synchronous methods over sqlite-utils; the only module holding SQL.

One ``Store`` owns one connection and is used from one thread (the daemon's single-thread
executor). Every write is one transaction; sqlite3 errors leave this module only as
:class:`~bluezoned.errors.StoreError` naming the database and what failed.

Downloaded keys (migration 0004): the store keeps a record of every processed key file
(hash, name, size, key count, when processed, when matched) but not the strangers' keys in
it. A verified file is recorded together with its bytes (:meth:`Store.add_pending_key_file`),
unmatched, in one transaction; matching then stores the exposures, the keys that matched
(they back the exposures) and the file's ``matched_at`` in one transaction and drops the bytes
(:meth:`Store.complete_matching`). A crash in between leaves the file pending: the next run
matches it from its stored bytes without downloading it again. Keys that matched nothing are
never written: a key can only match sightings made before its publication (later ones are
replays), so once its file was matched it has no further use on the device, and writing a
national day's million rows would cost about ten seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from sqlite_utils import Database

from bluezoned.const import (
    AEM_LENGTH,
    RETENTION_CHUNK_ROWS,
    RISK_LEVEL_HIGH,
    RPI_LENGTH,
    SECONDS_PER_INTERVAL,
    SIGHTING_BUCKET_SECONDS,
    TEK_LENGTH,
    TEK_ROLLING_PERIOD,
)
from bluezoned.errors import InvalidInput, StoreError
from bluezoned.models import BucketFold, DiagnosisKey, ReportType, Sighting, SightingBucket, Tek
from bluezoned.store.migrations import MIGRATION_NAMES, MIGRATIONS

_log = logging.getLogger(__name__)

"""The store's file name inside the state directory."""
BUSY_TIMEOUT_SECONDS: Final = 5.0
"""How long a statement waits for another connection's lock: the daemon's write batches and
retention chunks are sub-second, so waiting longer than this means something is stuck."""
SHA256_LENGTH: Final = 32
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700
_SIDE_FILE_SUFFIXES: Final = ("-wal", "-shm", "-journal")
_SELECT_FILES: Final = (
    "SELECT sha256, source, name, size, keys, processed_at, etag, matched_at FROM processed_files"
)

_UPSERT_BUCKET: Final = """
INSERT INTO sightings (rpi, bucket, count, first_seen, last_seen, rssi_max, rssi_sum, aem)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (rpi, bucket) DO UPDATE SET
    count = count + excluded.count,
    first_seen = min(first_seen, excluded.first_seen),
    last_seen = max(last_seen, excluded.last_seen),
    rssi_max = max(rssi_max, excluded.rssi_max),
    rssi_sum = rssi_sum + excluded.rssi_sum,
    aem = CASE WHEN excluded.last_seen >= last_seen THEN excluded.aem ELSE aem END
"""

# A republished key overwrites its metadata (e.g. a revocation) but an identical copy changes
# nothing, so re-adding a file is a no-op and the row keeps the file that first carried it.
_UPSERT_DIAGNOSIS_KEY: Final = """
INSERT INTO diagnosis_keys (key_data, rolling_start, rolling_period, transmission_risk_level,
                            report_type, days_since_onset, source, file_sha256, added_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key_data, rolling_start) DO UPDATE SET
    rolling_period = excluded.rolling_period,
    transmission_risk_level = excluded.transmission_risk_level,
    report_type = excluded.report_type,
    days_since_onset = excluded.days_since_onset,
    source = excluded.source,
    file_sha256 = excluded.file_sha256,
    added_at = excluded.added_at
WHERE rolling_period IS NOT excluded.rolling_period
   OR transmission_risk_level IS NOT excluded.transmission_risk_level
   OR report_type IS NOT excluded.report_type
   OR days_since_onset IS NOT excluded.days_since_onset
"""

# sqlite3 primary result codes -> what they mean for the person reading the error.
_PROBLEMS: Final = {
    "SQLITE_BUSY": "the database is locked by another process or connection",
    "SQLITE_LOCKED": "the database is locked by another process or connection",
    "SQLITE_FULL": "the disk is full (or the database reached its size limit)",
    "SQLITE_NOTADB": "the file is not a SQLite database (or is encrypted or corrupt)",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_CANTOPEN": "the database file cannot be opened",
    "SQLITE_IOERR": "an I/O error occurred",
    "SQLITE_PERM": "permission denied",
    "SQLITE_CONSTRAINT": "a value broke a table constraint",
}


@dataclass(frozen=True, slots=True)
class OwnKey:
    """One of this device's TEKs as stored: when it was created and when it was reported."""

    tek: Tek
    created: float
    reported_at: float | None = None

    @property
    def reported(self) -> bool:
        """True once the key was uploaded as part of a diagnosis."""
        return self.reported_at is not None


@dataclass(frozen=True, slots=True)
class StoredDiagnosisKey:
    """A downloaded diagnosis key with where it came from."""

    key: DiagnosisKey
    source: str
    file_sha256: bytes
    added_at: float


@dataclass(frozen=True, slots=True)
class ProcessedFile:
    """A key file that was fully ingested; ``sha256`` identifies it across re-downloads."""

    sha256: bytes
    source: str
    name: str
    size: int
    keys: int
    processed_at: float
    etag: str | None = None
    matched_at: float | None = None
    """When its keys were matched against the sightings; None while matching is pending."""


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    """A stored match of a diagnosis key against sightings; ``id`` is None until stored."""

    key_data: bytes
    rolling_start: int
    start: float
    end: float
    duration_seconds: float
    sightings: int
    created: float
    min_attenuation: int | None = None
    risk_level: int | None = None
    risk_score: float | None = None
    alerted_at: float | None = None
    id: int | None = None
    distance_m: float | None = None
    """The close-contact rule the engine's estimate below was made for: within ``distance_m``
    for at least ``threshold_minutes``. None (with the estimate) for older exposures."""
    threshold_minutes: float | None = None
    minutes_close: float | None = None
    """The engine's expected minutes within ``distance_m``, with its 80 % interval."""
    minutes_close_low: float | None = None
    minutes_close_high: float | None = None
    close_contact: bool | None = None
    """The engine's decision for the rule."""
    close_score: float | None = None
    """The engine's probability of a close contact (calibrated only with a calibration)."""
    cwa_days: tuple[tuple[int, float], ...] | None = None
    """(UTC day number, CWA normalized time) of the contact's windows, per day; None when CWA
    could not score the key or the exposure predates migration 0005."""


_SELECT_EXPOSURES: Final = (
    "SELECT id, key_data, rolling_start, start_time AS start, end_time AS end,"
    " duration_seconds, sightings, created, min_attenuation, risk_level, risk_score,"
    " alerted_at, distance_m, threshold_minutes, minutes_close, minutes_close_low,"
    " minutes_close_high, close_contact, close_score, cwa_days"
    " FROM exposures WHERE alerted_at IS NULL OR NOT ? ORDER BY start_time, id"
)
_SELECT_EXPOSURES_BEFORE_ESTIMATE: Final = (
    "SELECT id, key_data, rolling_start, start_time AS start, end_time AS end,"
    " duration_seconds, sightings, created, min_attenuation, risk_level, risk_score,"
    " alerted_at, NULL AS distance_m, NULL AS threshold_minutes, NULL AS minutes_close,"
    " NULL AS minutes_close_low, NULL AS minutes_close_high, NULL AS close_contact,"
    " NULL AS close_score, NULL AS cwa_days"
    " FROM exposures WHERE alerted_at IS NULL OR NOT ? ORDER BY start_time, id"
)
"""The same for a read-only store whose schema predates migration 0005."""


@dataclass(frozen=True, slots=True)
class SyncState:
    """Download bookkeeping for one key source (server or region)."""

    source: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    consecutive_failures: int = 0
    next_due: float | None = None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows deleted by one :meth:`Store.purge` call; ``finished`` is False when it ran out of chunks."""

    sightings: int
    own_keys: int
    diagnosis_keys: int
    exposures: int
    processed_files: int
    chunks: int
    finished: bool
    pending_key_files: int = 0

    @property
    def total(self) -> int:
        """All rows deleted."""
        return (
            self.sightings
            + self.own_keys
            + self.diagnosis_keys
            + self.exposures
            + self.processed_files
            + self.pending_key_files
        )


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """What the store holds at ``now``; sighting times are unix seconds, None when there are none."""

    path: Path
    size_bytes: int
    schema_version: int
    schema_pending: int
    bucket_seconds: int
    own_keys: int
    own_keys_reported: int
    sighting_buckets: int
    sightings: int
    distinct_rpis: int
    first_sighting: float | None
    last_sighting: float | None
    diagnosis_keys: int
    processed_files: int
    exposures: int
    exposures_alerted: int
    now: float
    exposures_high_risk: int = 0
    last_exposure_end: float | None = None
    files_awaiting_match: int = 0

    @property
    def exposures_unalerted(self) -> int:
        """Exposures nobody has been alerted about yet."""
        return self.exposures - self.exposures_alerted


def bucket_start(t: float, bucket_seconds: int = SIGHTING_BUCKET_SECONDS) -> int:
    """Start (unix seconds) of the bucket holding time ``t``."""
    return int(t // bucket_seconds) * bucket_seconds


def fold_sightings(
    sightings: Iterable[Sighting], bucket_seconds: int = SIGHTING_BUCKET_SECONDS
) -> list[SightingBucket]:
    """Fold sightings per (RPI, bucket); the AEM is the latest one (ties: the later sighting)."""
    _check_bucket_seconds(bucket_seconds)
    folds: dict[tuple[bytes, int], BucketFold] = {}
    for s in sightings:
        if len(s.rpi) != RPI_LENGTH or len(s.aem) != AEM_LENGTH:
            raise InvalidInput(f"sighting with a {len(s.rpi)}-byte RPI / {len(s.aem)}-byte AEM")
        if not math.isfinite(s.t):
            raise InvalidInput(f"sighting time {s.t!r} is not finite")
        key = (s.rpi, int(s.t // bucket_seconds) * bucket_seconds)
        fold = folds.get(key)
        if fold is None:
            folds[key] = BucketFold(s.t, s.rssi, s.aem)
        else:
            fold.add(s.t, s.rssi, s.aem)
    return [fold.bucket(rpi, bucket) for (rpi, bucket), fold in folds.items()]


class Store:
    """The bluezoned database; create it with :meth:`Store.open`, close it with :meth:`close`."""

    def __init__(self, db: Database, path: Path, *, read_only: bool, bucket_seconds: int) -> None:
        """Wrap an opened connection; use :meth:`Store.open` instead."""
        self._db = db
        self._path = path
        self._read_only = read_only
        self._bucket_seconds = bucket_seconds

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        bucket_seconds: int = SIGHTING_BUCKET_SECONDS,
        read_only: bool = False,
    ) -> Store:
        """Open (read-write: create, mode 0600, and migrate) the store at ``path``.

        Read-write creates a missing parent directory with mode 0700 and the file with mode
        0600 before SQLite touches it, tightens a looser mode on existing files, turns on WAL
        and applies pending migrations; it refuses a store whose bucket width differs from
        ``bucket_seconds``. Read-only never creates anything (a missing file is a
        StoreError), never migrates, and takes the bucket width the store was created with.
        """
        _check_bucket_seconds(bucket_seconds)
        db_path = Path(path)
        try:
            if read_only:
                if not db_path.is_file():
                    raise StoreError(f"{db_path}: no store here (nothing was created)")
            else:
                _prepare_file(db_path)
        except OSError as exc:
            raise StoreError(
                f"{db_path}: cannot create or access the store: {exc.strerror or exc}"
            ) from exc
        uri = f"file:{quote(str(db_path.absolute()))}?mode={'ro' if read_only else 'rw'}"
        conn: sqlite3.Connection | None = None
        try:
            with _translate(db_path, "opening the store"):
                conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS)
                db = Database(conn, execute_plugins=False, recursive_triggers=False)
                store = cls(db, db_path, read_only=read_only, bucket_seconds=bucket_seconds)
                store._setup()
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "ro" if self._read_only else "rw"
        return f"<Store {str(self._path)!r} {mode}>"

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def read_only(self) -> bool:
        """True when opened read-only."""
        return self._read_only

    @property
    def bucket_seconds(self) -> int:
        """Width of a sighting bucket in seconds."""
        return self._bucket_seconds

    # --- schema ---------------------------------------------------------------------------

    def applied_migrations(self) -> list[str]:
        """Names of the applied bluezoned migrations, oldest first (read-only)."""
        with self._errors("reading the schema version"):
            return [m.name for m in MIGRATIONS.applied(self._db)]

    def pending_migrations(self) -> list[str]:
        """Names of known migrations not yet applied (read-only)."""
        with self._errors("reading the schema version"):
            return [m.name for m in MIGRATIONS.pending(self._db)]

    def schema_version(self) -> int:
        """The number of applied migrations: migrations are append-only, so this orders schemas."""
        return len(self.applied_migrations())

    # --- sightings ------------------------------------------------------------------------

    def record_sightings(self, sightings: Iterable[Sighting]) -> int:
        """Fold raw sightings and merge them into the store in one transaction; returns buckets."""
        return self._upsert_buckets(
            fold_sightings(sightings, self._bucket_seconds), "recording sightings"
        )

    def add_buckets(self, buckets: Iterable[SightingBucket]) -> int:
        """Merge pre-folded buckets (as :meth:`record_sightings` does) in one transaction."""
        checked = []
        for b in buckets:
            _check_bucket(b, self._bucket_seconds)
            checked.append(b)
        return self._upsert_buckets(checked, "adding sighting buckets")

    def sighting_buckets(
        self, *, since: float | None = None, before: float | None = None
    ) -> list[SightingBucket]:
        """Buckets starting in ``[since, before)``, ordered by bucket then RPI."""
        rows = self._query(
            "reading sightings",
            "SELECT rpi, bucket, count, first_seen, last_seen, rssi_max, rssi_sum, aem"
            " FROM sightings WHERE bucket >= ? AND bucket < ? ORDER BY bucket, rpi",
            (-math.inf if since is None else since, math.inf if before is None else before),
        )
        return [SightingBucket(**row) for row in rows]

    # --- own keys -------------------------------------------------------------------------

    def add_own_key(self, tek: Tek, created: float) -> bool:
        """Store one own TEK durably (synchronous=FULL); False if it was already stored.

        Raises InvalidInput if the key is already stored with a different schedule.
        """
        _check_key(tek.key_data, tek.rolling_start, tek.rolling_period)
        with self._write("storing an own key", durable=True):
            inserted = self._db.execute(
                "INSERT INTO own_keys (key_data, rolling_start, rolling_period, created)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key_data) DO NOTHING",
                (tek.key_data, tek.rolling_start, tek.rolling_period, created),
            ).rowcount
            if not inserted:
                row = next(
                    self._db.query(
                        "SELECT rolling_start, rolling_period FROM own_keys WHERE key_data = ?",
                        (tek.key_data,),
                    )
                )
                if (row["rolling_start"], row["rolling_period"]) != (
                    tek.rolling_start,
                    tek.rolling_period,
                ):
                    raise InvalidInput("this key is already stored with another schedule")
        return bool(inserted)

    def own_keys(self, since_interval: int | None = None) -> list[OwnKey]:
        """Own keys still valid at or after ``since_interval`` (all when None), oldest first."""
        rows = self._query(
            "reading own keys",
            "SELECT key_data, rolling_start, rolling_period, created, reported_at FROM own_keys"
            " WHERE rolling_start + rolling_period > ? ORDER BY rolling_start, created",
            (-1 if since_interval is None else since_interval,),
        )
        return [
            OwnKey(
                Tek(r["key_data"], r["rolling_start"], r["rolling_period"]),
                r["created"],
                r["reported_at"],
            )
            for r in rows
        ]

    def mark_reported(self, key_data: Iterable[bytes], at: float) -> int:
        """Durably mark own keys as reported at ``at``; returns how many were newly marked."""
        params = [(at, k) for k in key_data]
        with self._write("marking own keys reported", durable=True) as conn:
            return conn.executemany(
                "UPDATE own_keys SET reported_at = ? WHERE key_data = ? AND reported_at IS NULL",
                params,
            ).rowcount

    # --- diagnosis keys and key files -----------------------------------------------------

    def add_pending_key_file(self, file: ProcessedFile, data: bytes) -> bool:
        """Record a verified file, unmatched, with its bytes in ONE transaction; False if already recorded."""
        _check_processed_file(file)
        with self._write("storing a key file") as conn:
            if not self._insert_processed_file(file, None):
                return False
            conn.execute(
                "INSERT INTO pending_key_files (sha256, data) VALUES (?, ?)", (file.sha256, data)
            )
            return True

    def unmatched_files(self) -> list[ProcessedFile]:
        """Processed files whose keys are not matched yet, oldest first."""
        rows = self._query(
            "reading processed files",
            _SELECT_FILES + " WHERE matched_at IS NULL ORDER BY processed_at, name",
            (),
        )
        return [ProcessedFile(**row) for row in rows]

    def pending_key_file_data(self, sha256: bytes) -> bytes | None:
        """The stored bytes of an unmatched file, or None when there are none."""
        rows = self._query(
            "reading a pending key file",
            "SELECT data FROM pending_key_files WHERE sha256 = ?",
            (sha256,),
        )
        return bytes(rows[0]["data"]) if rows else None

    def complete_matching(
        self,
        files: Iterable[bytes],
        keys: Iterable[StoredDiagnosisKey],
        exposures: Sequence[ExposureRecord],
        at: float,
    ) -> list[int]:
        """In ONE transaction: store the matched keys and the exposures, mark ``files`` matched at ``at``, drop their bytes.

        Returns the exposures' ids in order; an exposure already stored is updated (see
        :meth:`add_exposure`).
        """
        shas = list(files)
        for sha in shas:
            _check_sha256(sha)
        rows = _diagnosis_key_rows(keys)
        for exposure in exposures:
            _check_exposure(exposure)
        with self._write("storing matches") as conn:
            conn.executemany(_UPSERT_DIAGNOSIS_KEY, rows)
            ids = [self._upsert_exposure(e) for e in exposures]
            conn.executemany(
                "UPDATE processed_files SET matched_at = ? WHERE sha256 = ? AND matched_at IS NULL",
                [(at, sha) for sha in shas],
            )
            conn.executemany(
                "DELETE FROM pending_key_files WHERE sha256 = ?", [(sha,) for sha in shas]
            )
        return ids

    def is_file_processed(self, sha256: bytes) -> bool:
        """True if a key file with this SHA-256 was already ingested."""
        return self.processed_file(sha256) is not None

    def processed_file(self, sha256: bytes) -> ProcessedFile | None:
        """The processed-file record for this SHA-256, if any."""
        rows = self._query(
            "reading processed files",
            _SELECT_FILES + " WHERE sha256 = ?",
            (sha256,),
        )
        return ProcessedFile(**rows[0]) if rows else None

    def processed_files(self, source: str | None = None) -> list[ProcessedFile]:
        """Records of the processed key files (of ``source``, or all), oldest first."""
        rows = self._query(
            "reading processed files",
            _SELECT_FILES + " WHERE source = ? OR ? IS NULL ORDER BY processed_at, name",
            (source, source),
        )
        return [ProcessedFile(**row) for row in rows]

    def processed_file_names(self, source: str) -> set[str]:
        """Names (the sync worker stores absolute URLs) of the files processed from ``source``."""
        rows = self._query(
            "reading processed files",
            "SELECT name FROM processed_files WHERE source = ?",
            (source,),
        )
        return {r["name"] for r in rows}

    def diagnosis_keys(self, since_interval: int | None = None) -> list[StoredDiagnosisKey]:
        """Stored diagnosis keys valid at or after ``since_interval`` (all when None)."""
        rows = self._query(
            "reading diagnosis keys",
            "SELECT key_data, rolling_start, rolling_period, transmission_risk_level,"
            " report_type, days_since_onset, source, file_sha256, added_at"
            " FROM diagnosis_keys WHERE rolling_start + rolling_period > ?"
            " ORDER BY rolling_start, key_data",
            (-1 if since_interval is None else since_interval,),
        )
        return [
            StoredDiagnosisKey(
                DiagnosisKey(
                    r["key_data"],
                    r["rolling_start"],
                    r["rolling_period"],
                    r["transmission_risk_level"],
                    None if r["report_type"] is None else ReportType(r["report_type"]),
                    r["days_since_onset"],
                ),
                r["source"],
                r["file_sha256"],
                r["added_at"],
            )
            for r in rows
        ]

    # --- exposures ------------------------------------------------------------------------

    def add_exposure(self, exposure: ExposureRecord) -> int:
        """Store an exposure, updating the one with the same key and start; returns its id.

        An update keeps ``alerted_at`` of the stored row.
        """
        _check_exposure(exposure)
        with self._write("storing an exposure"):
            return self._upsert_exposure(exposure)

    def exposures(self, *, unalerted_only: bool = False) -> list[ExposureRecord]:
        """Stored exposures (only those not yet alerted, if asked), oldest start first.

        Read-only on an older schema: no exposures table reads as none, and exposures from
        before migration 0005 read without the engine's estimate and day shares.
        """
        tables = self._table_names()
        if "exposures" not in tables:
            return []
        with self._errors("reading exposures"):
            estimated = "cwa_days" in self._db["exposures"].columns_dict
        rows = self._query(
            "reading exposures",
            _SELECT_EXPOSURES if estimated else _SELECT_EXPOSURES_BEFORE_ESTIMATE,
            (unalerted_only,),
        )
        for row in rows:
            if row["close_contact"] is not None:
                row["close_contact"] = bool(row["close_contact"])
            if row["cwa_days"] is not None:
                row["cwa_days"] = tuple(
                    (int(day), float(value)) for day, value in json.loads(row["cwa_days"])
                )
        return [ExposureRecord(**row) for row in rows]

    def mark_alerted(self, ids: Iterable[int], at: float) -> int:
        """Mark exposures as alerted at ``at``; returns how many were newly marked."""
        params = [(at, i) for i in ids]
        with self._write("marking exposures alerted") as conn:
            return conn.executemany(
                "UPDATE exposures SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL", params
            ).rowcount

    # --- sync state -----------------------------------------------------------------------

    def sync_state(self, source: str) -> SyncState | None:
        """The download bookkeeping of ``source``, if any."""
        rows = self._query(
            "reading sync state",
            "SELECT source, etag, last_modified, last_attempt, last_success,"
            " consecutive_failures, next_due FROM sync_state WHERE source = ?",
            (source,),
        )
        return SyncState(**rows[0]) if rows else None

    def put_sync_state(self, state: SyncState) -> None:
        """Insert or replace the download bookkeeping of ``state.source``."""
        if not state.source:
            raise InvalidInput("a sync source needs a name")
        with self._write("storing sync state"):
            self._db.execute(
                "INSERT OR REPLACE INTO sync_state (source, etag, last_modified, last_attempt,"
                " last_success, consecutive_failures, next_due) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    state.source,
                    state.etag,
                    state.last_modified,
                    state.last_attempt,
                    state.last_success,
                    state.consecutive_failures,
                    state.next_due,
                ),
            )

    # --- retention ------------------------------------------------------------------------

    def purge(
        self,
        before: float,
        chunk_rows: int = RETENTION_CHUNK_ROWS,
        max_chunks: int | None = None,
    ) -> PurgeResult:
        """Delete what is older than ``before`` in chunks of ``chunk_rows``, one transaction each.

        Deleted: sighting buckets that end at or before ``before``; own and diagnosis keys whose
        validity ended at or before it; exposures that ended and key files processed before it
        (with the bytes of any still unmatched).
        Stops after ``max_chunks`` chunks that deleted rows, with ``finished=False``; call
        again to resume.
        """
        if chunk_rows < 1:
            raise InvalidInput("chunk_rows must be at least 1")
        if max_chunks is not None and max_chunks < 1:
            raise InvalidInput("max_chunks must be at least 1 (or None)")
        # A key with rolling_period >= 1 that ended by `before` started before this interval,
        # which lets the rolling_start index narrow the scan.
        interval_bound = math.ceil(before / SECONDS_PER_INTERVAL)
        plans: list[tuple[str, str, tuple[Any, ...]]] = [
            (
                "sightings",
                "DELETE FROM sightings WHERE (rpi, bucket) IN (SELECT rpi, bucket FROM sightings"
                " WHERE bucket <= ? LIMIT ?)",
                (before - self._bucket_seconds,),
            ),
            (
                "own_keys",
                "DELETE FROM own_keys WHERE rowid IN (SELECT rowid FROM own_keys"
                " WHERE rolling_start < ? AND (rolling_start + rolling_period) * ? <= ? LIMIT ?)",
                (interval_bound, SECONDS_PER_INTERVAL, before),
            ),
            (
                "diagnosis_keys",
                "DELETE FROM diagnosis_keys WHERE (key_data, rolling_start) IN"
                " (SELECT key_data, rolling_start FROM diagnosis_keys WHERE rolling_start < ?"
                " AND (rolling_start + rolling_period) * ? <= ? LIMIT ?)",
                (interval_bound, SECONDS_PER_INTERVAL, before),
            ),
            (
                "exposures",
                "DELETE FROM exposures WHERE id IN (SELECT id FROM exposures"
                " WHERE end_time < ? LIMIT ?)",
                (before,),
            ),
            # The bytes of a file still unmatched after retention: its keys have expired.
            (
                "pending_key_files",
                "DELETE FROM pending_key_files WHERE sha256 IN (SELECT p.sha256"
                " FROM pending_key_files p JOIN processed_files f ON f.sha256 = p.sha256"
                " WHERE f.processed_at < ? LIMIT ?)",
                (before,),
            ),
            (
                "processed_files",
                "DELETE FROM processed_files WHERE rowid IN (SELECT rowid FROM processed_files"
                " WHERE processed_at < ? LIMIT ?)",
                (before,),
            ),
        ]
        deleted = dict.fromkeys((name for name, _, _ in plans), 0)
        chunks = 0
        finished = True
        for name, sql, params in plans:
            while True:
                if max_chunks is not None and chunks >= max_chunks:
                    finished = False
                    break
                with self._write(f"purging {name}"):
                    count = self._db.execute(sql, (*params, chunk_rows)).rowcount
                # Only chunks that deleted rows count: a probe of a drained table is cheap, and
                # counting it would let a small max_chunks starve the later tables forever.
                chunks += 1 if count else 0
                deleted[name] += count
                if count < chunk_rows:
                    break
            if not finished:
                break
        return PurgeResult(**deleted, chunks=chunks, finished=finished)

    # --- reporting ------------------------------------------------------------------------

    def summary(self, now: float) -> StoreSummary:
        """Counts of everything the store holds (read-only); a table that an older schema
        lacks counts as empty."""
        with self._errors("summarising the store"):
            applied = len(MIGRATIONS.applied(self._db))
            pending = len(MIGRATIONS.pending(self._db))
        tables = self._table_names()

        def scalar(table: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
            if table not in tables:
                return None
            return next(iter(self._query(f"summarising {table}", sql, params)[0].values()))

        def count(table: str, sql: str, params: tuple[Any, ...] = ()) -> int:
            return int(scalar(table, sql, params) or 0)

        buckets, adverts, rpis = 0, 0, 0
        if "sightings" in tables:
            row = self._query(
                "summarising sightings",
                "SELECT COUNT(*) AS n, COALESCE(SUM(count), 0) AS adverts,"
                " COUNT(DISTINCT rpi) AS rpis FROM sightings",
                (),
            )[0]
            buckets, adverts, rpis = row["n"], row["adverts"], row["rpis"]
        return StoreSummary(
            path=self._path,
            size_bytes=self._size_bytes(),
            schema_version=applied,
            schema_pending=pending,
            bucket_seconds=self._bucket_seconds,
            own_keys=count("own_keys", "SELECT COUNT(*) FROM own_keys"),
            own_keys_reported=count(
                "own_keys", "SELECT COUNT(*) FROM own_keys WHERE reported_at IS NOT NULL"
            ),
            sighting_buckets=buckets,
            sightings=adverts,
            distinct_rpis=rpis,
            # Both go through the bucket index: the extreme bucket holds the extreme time.
            first_sighting=scalar(
                "sightings",
                "SELECT MIN(first_seen) FROM sightings"
                " WHERE bucket = (SELECT MIN(bucket) FROM sightings)",
            ),
            last_sighting=scalar(
                "sightings",
                "SELECT MAX(last_seen) FROM sightings"
                " WHERE bucket = (SELECT MAX(bucket) FROM sightings)",
            ),
            diagnosis_keys=count("diagnosis_keys", "SELECT COUNT(*) FROM diagnosis_keys"),
            processed_files=count("processed_files", "SELECT COUNT(*) FROM processed_files"),
            exposures=count("exposures", "SELECT COUNT(*) FROM exposures"),
            exposures_alerted=count(
                "exposures", "SELECT COUNT(*) FROM exposures WHERE alerted_at IS NOT NULL"
            ),
            now=now,
            exposures_high_risk=count(
                "exposures",
                "SELECT COUNT(*) FROM exposures WHERE risk_level >= ?",
                (RISK_LEVEL_HIGH,),
            ),
            last_exposure_end=scalar("exposures", "SELECT MAX(end_time) FROM exposures"),
            files_awaiting_match=(
                count(
                    "processed_files",
                    "SELECT COUNT(*) FROM processed_files WHERE matched_at IS NULL",
                )
                if "matched_at" in self._columns("processed_files")
                else 0
            ),
        )

    def _columns(self, table: str) -> set[str]:
        if table not in self._table_names():
            return set()
        return {
            row["name"]
            for row in self._query("reading the schema", f"PRAGMA table_info({table})", ())
        }

    def storage_bytes(self) -> dict[str, int] | None:
        """Bytes of pages used per table and index (dbstat), or None without dbstat."""
        try:
            rows = list(
                self._db.query("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name")
            )
        except sqlite3.Error as exc:
            if "no such table: dbstat" in str(
                exc
            ):  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
                return None
            raise _store_error(self._path, "measuring storage", exc) from exc
        return {row["name"]: int(row["bytes"]) for row in rows}

    # --- internals ------------------------------------------------------------------------

    def _setup(self) -> None:
        applied = [m.name for m in MIGRATIONS.applied(self._db)]
        if not applied and self._table_names() - {MIGRATIONS.migrations_table}:
            raise StoreError(f"{self._path}: a SQLite database but not a bluezoned store")
        if self._read_only:
            stored = self._stored_bucket_seconds()
            if stored is not None:
                self._bucket_seconds = stored
            return
        unknown = set(applied) - set(MIGRATION_NAMES)
        if unknown:
            raise StoreError(
                f"{self._path}: written by a newer bluezoned (unknown migrations"
                f" {', '.join(sorted(unknown))}); refusing to write to it"
            )
        self._db.enable_wal()
        # NORMAL in WAL mode: a power cut can lose the last commits but never corrupts; own
        # keys are the exception and are written with FULL (see _write).
        self._db.execute("PRAGMA synchronous = NORMAL")
        pending = [m.name for m in MIGRATIONS.pending(self._db)]
        if pending:
            _log.info("%s: applying migrations %s", self._path, ", ".join(pending))
            MIGRATIONS.apply(self._db)
        self._db.execute(
            "INSERT INTO store_meta (key, value) VALUES ('bucket_seconds', ?)"
            " ON CONFLICT (key) DO NOTHING",
            (str(self._bucket_seconds),),
        )
        stored = self._stored_bucket_seconds()
        if stored != self._bucket_seconds:
            raise StoreError(
                f"{self._path}: sightings are stored in {stored}-second buckets, not"
                f" {self._bucket_seconds}; keep the bucket width or start a new store"
            )

    def _stored_bucket_seconds(self) -> int | None:
        if "store_meta" not in self._table_names():
            return None
        rows = list(self._db.query("SELECT value FROM store_meta WHERE key = 'bucket_seconds'"))
        return int(rows[0]["value"]) if rows else None

    def _table_names(self) -> set[str]:
        with self._errors("reading the schema"):
            return {
                row["name"]
                for row in self._db.query("SELECT name FROM sqlite_master WHERE type = 'table'")
            }

    def _size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(FileNotFoundError):
                total += os.stat(f"{self._path}{suffix}").st_size
        return total

    def _upsert_buckets(self, buckets: list[SightingBucket], action: str) -> int:
        rows = [
            (b.rpi, b.bucket, b.count, b.first_seen, b.last_seen, b.rssi_max, b.rssi_sum, b.aem)
            for b in buckets
        ]
        if not rows:
            return 0
        with self._write(action) as conn:
            conn.executemany(_UPSERT_BUCKET, rows)
        return len(rows)

    def _insert_processed_file(self, file: ProcessedFile, matched_at: float | None) -> bool:
        return bool(
            self._db.execute(
                "INSERT INTO processed_files (sha256, source, name, etag, size, keys,"
                " processed_at, matched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (sha256) DO NOTHING",
                (
                    file.sha256,
                    file.source,
                    file.name,
                    file.etag,
                    file.size,
                    file.keys,
                    file.processed_at,
                    matched_at,
                ),
            ).rowcount
        )

    def _upsert_exposure(self, exposure: ExposureRecord) -> int:
        row = next(
            self._db.query(
                "INSERT INTO exposures (key_data, rolling_start, start_time, end_time,"
                " duration_seconds, sightings, min_attenuation, risk_level, risk_score,"
                " created, alerted_at, distance_m, threshold_minutes, minutes_close,"
                " minutes_close_low, minutes_close_high, close_contact, close_score, cwa_days)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key_data, rolling_start, start_time) DO UPDATE SET"
                " end_time = excluded.end_time,"
                " duration_seconds = excluded.duration_seconds,"
                " sightings = excluded.sightings,"
                " min_attenuation = excluded.min_attenuation,"
                " risk_level = excluded.risk_level, risk_score = excluded.risk_score,"
                " distance_m = excluded.distance_m,"
                " threshold_minutes = excluded.threshold_minutes,"
                " minutes_close = excluded.minutes_close,"
                " minutes_close_low = excluded.minutes_close_low,"
                " minutes_close_high = excluded.minutes_close_high,"
                " close_contact = excluded.close_contact, close_score = excluded.close_score,"
                " cwa_days = excluded.cwa_days"
                " RETURNING id",
                (
                    exposure.key_data,
                    exposure.rolling_start,
                    exposure.start,
                    exposure.end,
                    exposure.duration_seconds,
                    exposure.sightings,
                    exposure.min_attenuation,
                    exposure.risk_level,
                    exposure.risk_score,
                    exposure.created,
                    exposure.alerted_at,
                    exposure.distance_m,
                    exposure.threshold_minutes,
                    exposure.minutes_close,
                    exposure.minutes_close_low,
                    exposure.minutes_close_high,
                    exposure.close_contact,
                    exposure.close_score,
                    None
                    if exposure.cwa_days is None
                    else json.dumps([[day, value] for day, value in exposure.cwa_days]),
                ),
            )
        )
        return int(row["id"])

    def _query(self, action: str, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._errors(action):
            return list(self._db.query(sql, params))

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        with _translate(self._path, action):
            yield

    @contextmanager
    def _write(self, action: str, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; ``durable`` commits with synchronous=FULL so it survives power loss."""
        if self._read_only:
            raise StoreError(f"{self._path}: {action}: the store was opened read-only")
        with self._errors(action):
            if durable:
                # SQLite refuses to change the safety level inside a transaction, so the
                # switch brackets BEGIN ... COMMIT.
                self._db.execute("PRAGMA synchronous = FULL")
            try:
                with self._db.atomic():
                    yield self._db.conn
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous = NORMAL")


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def _translate(path: Path, action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _store_error(path, action, exc) from exc


def _store_error(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    problem = _PROBLEMS.get("_".join(name.split("_")[:2]))
    detail = f"{problem} ({exc})" if problem else str(exc)
    return StoreError(f"{path}: {action} failed: {detail}")


def _prepare_file(path: Path) -> None:
    """Create the parent directory (0700) and an empty database file (0600), or tighten modes."""
    try:
        path.parent.mkdir(mode=_DIR_MODE, parents=True)
    except FileExistsError:
        pass
    else:
        os.chmod(path.parent, _DIR_MODE)  # mkdir's mode is filtered by the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, _FILE_MODE)
        finally:
            os.close(fd)
        return
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise StoreError(f"{path}: not a regular file")
    # SQLite gives -wal and -shm the database file's mode, so fixing all of them suffices.
    for candidate in (str(path), *(f"{path}{s}" for s in _SIDE_FILE_SUFFIXES)):
        try:
            mode = stat.S_IMODE(os.stat(candidate).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            _log.warning("%s: mode %o is too open for key material; setting 600", candidate, mode)
            os.chmod(candidate, _FILE_MODE)


def _check_bucket_seconds(bucket_seconds: int) -> None:
    # Buckets must tile the 10-minute interval so that no bucket straddles two RPIs' intervals.
    if (
        not isinstance(bucket_seconds, int)
        or bucket_seconds < 1
        or SECONDS_PER_INTERVAL % bucket_seconds
    ):
        raise InvalidInput(
            f"bucket width {bucket_seconds!r} s must be a whole divisor of {SECONDS_PER_INTERVAL}"
        )


def _check_bucket(b: SightingBucket, bucket_seconds: int) -> None:
    if len(b.rpi) != RPI_LENGTH or len(b.aem) != AEM_LENGTH:
        raise InvalidInput(f"bucket with a {len(b.rpi)}-byte RPI / {len(b.aem)}-byte AEM")
    if b.bucket % bucket_seconds:
        raise InvalidInput(f"bucket {b.bucket} is not a multiple of {bucket_seconds} s")
    if b.count < 1 or not b.bucket <= b.first_seen <= b.last_seen < b.bucket + bucket_seconds:
        raise InvalidInput(f"inconsistent bucket {b.bucket} (count {b.count})")


def _check_key(key_data: bytes, rolling_start: int, rolling_period: int) -> None:
    if len(key_data) != TEK_LENGTH:
        raise InvalidInput(f"a key is {len(key_data)} bytes, not {TEK_LENGTH}")
    if rolling_start < 0:
        raise InvalidInput(f"rolling start {rolling_start} is negative")
    if not 1 <= rolling_period <= TEK_ROLLING_PERIOD:
        raise InvalidInput(f"rolling period {rolling_period} is outside 1..{TEK_ROLLING_PERIOD}")


def _check_sha256(sha256: bytes) -> None:
    if len(sha256) != SHA256_LENGTH:
        raise InvalidInput(f"a SHA-256 digest is {SHA256_LENGTH} bytes, got {len(sha256)}")


def _check_exposure(exposure: ExposureRecord) -> None:
    if len(exposure.key_data) != TEK_LENGTH:
        raise InvalidInput(f"exposure key is {len(exposure.key_data)} bytes, not 16")
    if exposure.end < exposure.start:
        raise InvalidInput("exposure ends before it starts")
    if exposure.close_score is not None and not 0.0 <= exposure.close_score <= 1.0:
        raise InvalidInput(f"close-contact score {exposure.close_score} is not a probability")
    if exposure.distance_m is not None and not exposure.distance_m > 0:
        raise InvalidInput(f"close-contact distance {exposure.distance_m} m is not positive")


def _check_processed_file(file: ProcessedFile) -> None:
    _check_sha256(file.sha256)
    if not file.source:
        raise InvalidInput("a key file needs a source")
    if file.size < 0 or file.keys < 0:
        raise InvalidInput("a key file's size and key count cannot be negative")


def _diagnosis_key_rows(keys: Iterable[StoredDiagnosisKey]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for stored in keys:
        _check_sha256(stored.file_sha256)
        if not stored.source:
            raise InvalidInput("diagnosis keys need a source")
        k = stored.key
        _check_key(k.key_data, k.rolling_start, k.rolling_period)
        rows.append(
            (
                k.key_data,
                k.rolling_start,
                k.rolling_period,
                k.transmission_risk_level,
                None if k.report_type is None else int(k.report_type),
                k.days_since_onset,
                stored.source,
                stored.file_sha256,
                stored.added_at,
            )
        )
    return rows
