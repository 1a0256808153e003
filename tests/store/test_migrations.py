"""The migration ladder: from an empty file, from every older schema, failure and refusal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlite_utils import Database

from bluezoned.errors import InvalidInput, StoreError
from bluezoned.models import Tek
from bluezoned.store import MIGRATION_NAMES, ExposureRecord, Store
from bluezoned.store.migrations import MIGRATION_SET, MIGRATIONS

RPI = bytes(range(16))
AEM = b"\x01\x02\x03\x04"
EXPECTED_TABLES = {
    "store_meta",
    "own_keys",
    "sightings",
    "diagnosis_keys",
    "processed_files",
    "sync_state",
    "exposures",
}


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection that commits on success and is always closed."""
    with closing(sqlite3.connect(path)) as conn, conn:
        yield conn


def schema(path: Path) -> dict[str, str]:
    with connect(path) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        return {name: sql for name, sql in rows}


def applied(path: Path) -> list[str]:
    with connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
            (MIGRATION_SET,),
        )
        return [name for (name,) in rows]


def older_store(path: Path, stop_before: str) -> None:
    """A store as an older bluezoned left it, holding an own key and a sighting bucket."""
    db = Database(path, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before=stop_before)
    db.execute("INSERT INTO store_meta VALUES ('bucket_seconds', '10')")
    db.execute("INSERT INTO own_keys VALUES (?, 2900000, 144, 1.5, NULL)", (b"k" * 16,))
    db.execute(
        "INSERT INTO sightings VALUES (?, 1000, 3, 1000.5, 1009.0, -40, -150, ?)", (RPI, AEM)
    )
    db.close()


def test_migrations_are_numbered_in_registration_order() -> None:
    assert len(MIGRATION_NAMES) >= 3
    assert list(MIGRATION_NAMES) == sorted(MIGRATION_NAMES)
    numbers = [int(name.split("_")[0]) for name in MIGRATION_NAMES]
    assert numbers == list(range(1, len(MIGRATION_NAMES) + 1))


def test_empty_file_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        assert store.applied_migrations() == list(MIGRATION_NAMES)
        assert store.pending_migrations() == []
        assert store.schema_version() == len(MIGRATION_NAMES)
    objects = schema(path)
    assert set(objects) >= EXPECTED_TABLES
    assert "WITHOUT ROWID" in objects["sightings"]
    assert "PRIMARY KEY (rpi, bucket)" in objects["sightings"]
    assert {"sightings_bucket", "diagnosis_keys_rolling_start", "exposures_end_time"} <= set(
        objects
    )
    assert applied(path) == list(MIGRATION_NAMES)


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    Store.open(path).close()
    assert applied(path) == list(MIGRATION_NAMES)


@pytest.mark.parametrize("stop_before", MIGRATION_NAMES[1:])
def test_older_schema_is_migrated_with_data_intact(tmp_path: Path, stop_before: str) -> None:
    path = tmp_path / "s.db"
    older_store(path, stop_before)
    assert applied(path) == list(MIGRATION_NAMES[: MIGRATION_NAMES.index(stop_before)])

    with Store.open(path) as store:
        assert store.applied_migrations() == list(MIGRATION_NAMES)
        [own] = store.own_keys()
        assert own.tek == Tek(b"k" * 16, 2_900_000, 144)
        assert own.created == 1.5
        [bucket] = store.sighting_buckets()
        assert (bucket.rpi, bucket.bucket, bucket.count, bucket.rssi_sum) == (RPI, 1000, 3, -150)
        # The tables of the newer migrations work.
        store.add_exposure(ExposureRecord(b"k" * 16, 2_900_000, 1000.0, 1060.0, 60.0, 3, 2e3))
        assert len(store.exposures()) == 1


def test_failing_migration_rolls_back_and_can_be_retried(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    older_store(path, "0003_exposures")
    # An index already holding a name that 0003 creates after its table: the migration
    # fails half-way, and the table it had created must disappear with it.
    with connect(path) as conn:
        conn.execute("CREATE TABLE squatter (x)")
        conn.execute("CREATE INDEX exposures_end_time ON squatter (x)")

    with pytest.raises(StoreError, match="exposures_end_time already exists") as excinfo:
        Store.open(path)
    assert str(path) in str(excinfo.value)
    assert "exposures" not in schema(path)
    assert applied(path) == ["0001_own_keys_and_sightings", "0002_diagnosis_keys_files_sync"]

    with connect(path) as conn:
        conn.execute("DROP INDEX exposures_end_time")
    with Store.open(path) as store:
        assert store.pending_migrations() == []
        assert len(store.own_keys()) == 1


def test_read_only_open_never_migrates(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    older_store(path, "0003_exposures")
    with Store.open(path, read_only=True) as store:
        assert store.pending_migrations() == list(MIGRATION_NAMES[2:])
        summary = store.summary(now=5.0)
    assert (summary.schema_version, summary.schema_pending) == (2, len(MIGRATION_NAMES) - 2)
    assert (summary.own_keys, summary.sighting_buckets, summary.exposures) == (1, 1, 0)
    assert applied(path) == list(MIGRATION_NAMES[:2])


def test_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    before = schema(path)
    with pytest.raises(StoreError, match="not a bluezoned store"):
        Store.open(path)
    with pytest.raises(StoreError, match="not a bluezoned store"):
        Store.open(path, read_only=True)
    assert schema(path) == before


def test_schema_from_a_newer_bluezoned_is_read_but_not_written(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
            " VALUES (?, '0099_from_the_future', 'x')",
            (MIGRATION_SET,),
        )
    with pytest.raises(StoreError, match="newer bluezoned"):
        Store.open(path)
    with Store.open(path, read_only=True) as store:
        assert store.schema_version() == len(MIGRATION_NAMES) + 1


def test_exposures_from_before_the_engine_estimate_read_back_without_one(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    older_store(path, "0005_exposure_estimate")
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO exposures (key_data, rolling_start, start_time, end_time,"
            " duration_seconds, sightings, min_attenuation, risk_level, risk_score, created)"
            " VALUES (?, 2900000, 1000.0, 1900.0, 900.0, 90, 55, 2, 16.8, 2000.0)",
            (b"k" * 16,),
        )
    with Store.open(path) as store:
        [old] = store.exposures()
        assert (old.risk_level, old.min_attenuation, old.duration_seconds) == (2, 55, 900.0)
        assert old.minutes_close is None
        assert old.close_contact is None
        assert old.distance_m is None
        # matching the same key again fills the estimate in, keeping the row
        store.add_exposure(
            replace(
                old,
                id=None,
                distance_m=2.0,
                threshold_minutes=15.0,
                minutes_close=12.5,
                minutes_close_low=9.0,
                minutes_close_high=14.0,
                close_contact=False,
                close_score=0.3,
            )
        )
        [new] = store.exposures()
        assert new.id == old.id
        assert (new.minutes_close, new.close_contact, new.close_score) == (12.5, False, 0.3)
        with pytest.raises(InvalidInput, match="not a probability"):
            store.add_exposure(replace(new, close_score=1.5))
        with pytest.raises(sqlite3.IntegrityError), connect(path) as conn:
            conn.execute("UPDATE exposures SET close_contact = 2")
