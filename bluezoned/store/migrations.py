"""The store's schema as an ordered ladder of sqlite-utils migrations.

Rules: a migration that has shipped is never edited; a change is a new migration appended at
the end (sqlite-utils applies them in registration order, each in a transaction together with
its row in ``_sqlite_migrations``). The number of applied migrations is the schema version.

Conventions: times are unix seconds (REAL), intervals are ENIntervalNumbers (INTEGER), keys,
RPIs, AEMs and hashes are raw bytes (BLOB) with their length checked by the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET: Final = "bluezoned"
MIGRATIONS: Final = Migrations(MIGRATION_SET)
_names: list[str] = []

_MigrationFn = Callable[[Database], None]


def _migration(name: str) -> Callable[[_MigrationFn], _MigrationFn]:
    def register(fn: _MigrationFn) -> _MigrationFn:
        _names.append(name)
        MIGRATIONS(name=name)(fn)
        return fn

    return register


def _run(db: Database, *statements: str) -> None:
    for statement in statements:
        db.execute(statement)


@_migration("0001_own_keys_and_sightings")
def _own_keys_and_sightings(db: Database) -> None:
    _run(
        db,
        # Settings the data depends on, e.g. the sighting bucket width.
        """
        CREATE TABLE store_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE own_keys (
            key_data BLOB PRIMARY KEY CHECK (length(key_data) = 16),
            rolling_start INTEGER NOT NULL CHECK (rolling_start >= 0),
            rolling_period INTEGER NOT NULL CHECK (rolling_period BETWEEN 1 AND 144),
            created REAL NOT NULL,
            reported_at REAL
        )
        """,
        "CREATE INDEX own_keys_rolling_start ON own_keys (rolling_start)",
        # One row per RPI per time bucket (microG's noteAdvertisement fold). WITHOUT ROWID:
        # the 16-byte RPI is the natural key and matching looks rows up by RPI, so a rowid
        # B-tree plus a (rpi, bucket) index would store every RPI twice.
        """
        CREATE TABLE sightings (
            rpi BLOB NOT NULL CHECK (length(rpi) = 16),
            bucket INTEGER NOT NULL,
            count INTEGER NOT NULL CHECK (count > 0),
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            rssi_max INTEGER NOT NULL,
            rssi_sum INTEGER NOT NULL,
            aem BLOB NOT NULL CHECK (length(aem) = 4),
            PRIMARY KEY (rpi, bucket)
        ) WITHOUT ROWID
        """,
        # Retention deletes by time and the engine scans by time window.
        "CREATE INDEX sightings_bucket ON sightings (bucket)",
    )


@_migration("0002_diagnosis_keys_files_sync")
def _diagnosis_keys_files_sync(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE diagnosis_keys (
            key_data BLOB NOT NULL CHECK (length(key_data) = 16),
            rolling_start INTEGER NOT NULL CHECK (rolling_start >= 0),
            rolling_period INTEGER NOT NULL CHECK (rolling_period BETWEEN 1 AND 144),
            transmission_risk_level INTEGER,
            report_type INTEGER,
            days_since_onset INTEGER,
            source TEXT NOT NULL,
            file_sha256 BLOB NOT NULL CHECK (length(file_sha256) = 32),
            added_at REAL NOT NULL,
            PRIMARY KEY (key_data, rolling_start)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX diagnosis_keys_rolling_start ON diagnosis_keys (rolling_start)",
        """
        CREATE TABLE processed_files (
            sha256 BLOB PRIMARY KEY CHECK (length(sha256) = 32),
            source TEXT NOT NULL,
            name TEXT NOT NULL,
            etag TEXT,
            size INTEGER NOT NULL CHECK (size >= 0),
            keys INTEGER NOT NULL CHECK (keys >= 0),
            processed_at REAL NOT NULL
        )
        """,
        "CREATE INDEX processed_files_processed_at ON processed_files (processed_at)",
        """
        CREATE TABLE sync_state (
            source TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            last_attempt REAL,
            last_success REAL,
            consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
            next_due REAL
        )
        """,
    )


@_migration("0003_exposures")
def _exposures(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE exposures (
            id INTEGER PRIMARY KEY,
            key_data BLOB NOT NULL CHECK (length(key_data) = 16),
            rolling_start INTEGER NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL NOT NULL CHECK (end_time >= start_time),
            duration_seconds REAL NOT NULL CHECK (duration_seconds >= 0),
            sightings INTEGER NOT NULL CHECK (sightings >= 0),
            min_attenuation INTEGER,
            risk_level INTEGER,
            risk_score REAL,
            created REAL NOT NULL,
            alerted_at REAL
        )
        """,
        # Re-running the matcher updates an exposure instead of duplicating it.
        """
        CREATE UNIQUE INDEX exposures_key_start
            ON exposures (key_data, rolling_start, start_time)
        """,
        "CREATE INDEX exposures_end_time ON exposures (end_time)",
    )


@_migration("0004_resumable_matching")
def _resumable_matching(db: Database) -> None:
    _run(
        db,
        # NULL until the file's keys were matched; files stored before this migration were
        # matched in the run that stored them.
        "ALTER TABLE processed_files ADD COLUMN matched_at REAL",
        "UPDATE processed_files SET matched_at = processed_at",
        "CREATE INDEX processed_files_unmatched ON processed_files (processed_at)"
        " WHERE matched_at IS NULL",
        # The verified bytes of a file whose keys are not matched yet: the journal that lets
        # matching resume after a crash without downloading the file again. A rowid table:
        # megabyte rows are what WITHOUT ROWID handles badly.
        """
        CREATE TABLE pending_key_files (
            sha256 BLOB PRIMARY KEY CHECK (length(sha256) = 32),
            data BLOB NOT NULL
        )
        """,
        # Keep only downloaded keys that back an exposure (the store module's docstring).
        """
        DELETE FROM diagnosis_keys WHERE NOT EXISTS (
            SELECT 1 FROM exposures e
            WHERE e.key_data = diagnosis_keys.key_data
              AND e.rolling_start = diagnosis_keys.rolling_start
        )
        """,
    )


@_migration("0005_exposure_estimate")
def _exposure_estimate(db: Database) -> None:
    _run(
        db,
        # The engine's close-contact estimate for the rule (distance_m, threshold_minutes) it
        # was made for; NULL for exposures stored before this migration.
        "ALTER TABLE exposures ADD COLUMN distance_m REAL CHECK (distance_m > 0)",
        "ALTER TABLE exposures ADD COLUMN threshold_minutes REAL CHECK (threshold_minutes >= 0)",
        "ALTER TABLE exposures ADD COLUMN minutes_close REAL CHECK (minutes_close >= 0)",
        "ALTER TABLE exposures ADD COLUMN minutes_close_low REAL",
        "ALTER TABLE exposures ADD COLUMN minutes_close_high REAL",
        "ALTER TABLE exposures ADD COLUMN close_contact INTEGER CHECK (close_contact IN (0, 1))",
        "ALTER TABLE exposures ADD COLUMN close_score REAL CHECK (close_score BETWEEN 0 AND 1)",
        # [[utc_day, normalized_time], ...]: the contact's share of CWA's per-day sums, so that
        # contacts matched apart add up per day as CWA adds up windows.
        "ALTER TABLE exposures ADD COLUMN cwa_days TEXT CHECK (cwa_days IS NULL OR json_valid(cwa_days))",
    )


MIGRATION_NAMES: Final = tuple(_names)
"""Every known migration, in the order they apply."""
