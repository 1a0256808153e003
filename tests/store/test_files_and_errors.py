"""Opening the store: file modes, WAL, read-only, and sqlite3 failures as StoreError."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import bluezoned.store.store as store_module
from bluezoned.errors import InvalidInput, StoreError
from bluezoned.models import Sighting, Tek
from bluezoned.store import DB_FILENAME, Store


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def sightings(n: int, t0: float = 1_000.0) -> list[Sighting]:
    return [Sighting(t0 + i, i.to_bytes(16, "big"), b"aemx", -60) for i in range(n)]


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 000 so that only the store's own choices restrict modes."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_creates_state_dir_0700_and_database_wal_shm_0600(tmp_path: Path) -> None:
    state = tmp_path / "var" / "bluezoned"
    path = state / DB_FILENAME
    with Store.open(path) as store:
        store.record_sightings(sightings(10))
        assert mode(state) == 0o700
        for name in (DB_FILENAME, f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm"):
            assert mode(state / name) == 0o600, name


def test_existing_state_dir_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    Store.open(tmp_path / DB_FILENAME).close()
    assert mode(tmp_path) == 0o755


@pytest.mark.usefixtures("open_umask")
def test_loose_modes_of_existing_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    with Store.open(path) as writer:
        writer.record_sightings(sightings(3))
        for name in (path, f"{path}-wal", f"{path}-shm"):
            os.chmod(name, 0o644)
        Store.open(path).close()
        for name in (path, f"{path}-wal", f"{path}-shm"):
            assert mode(name) == 0o600


def test_wal_normal_sync_and_busy_timeout(tmp_path: Path) -> None:
    with Store.open(tmp_path / DB_FILENAME) as store:
        conn = store._db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        busy_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        assert busy_ms == int(store_module.BUSY_TIMEOUT_SECONDS * 1000)


def test_read_only_open_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "never"
    with pytest.raises(StoreError, match="no store here") as excinfo:
        Store.open(state / DB_FILENAME, read_only=True)
    assert str(state / DB_FILENAME) in str(excinfo.value)
    assert not state.exists()


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    Store.open(path).close()
    with Store.open(path, read_only=True) as store, pytest.raises(StoreError, match="read-only"):
        store.record_sightings(sightings(1))


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    path.write_text("these are my notes, not a database\n" * 200)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="not a SQLite database") as excinfo:
            Store.open(path, read_only=read_only)
        assert str(path) in str(excinfo.value)
    assert path.read_text().startswith("these are my notes")


def test_a_directory_at_the_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).mkdir()
    with pytest.raises(StoreError, match="not a regular file"):
        Store.open(tmp_path / DB_FILENAME)


def test_a_state_dir_that_is_a_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    with pytest.raises(StoreError, match="cannot create"):
        Store.open(tmp_path / "state" / DB_FILENAME)


def test_full_disk_fails_the_batch_and_keeps_earlier_rows(tmp_path: Path) -> None:
    with Store.open(tmp_path / DB_FILENAME) as store:
        store.record_sightings(sightings(50))
        store.add_own_key(Tek(b"k" * 16, 100), created=1.0)
        before = store.sighting_buckets()
        conn = store._db.conn
        # The database may not grow by a single page: the next big batch hits SQLITE_FULL.
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

        with pytest.raises(StoreError, match="disk is full") as excinfo:
            store.record_sightings(sightings(20_000, t0=5_000.0))
        assert str(store.path) in str(excinfo.value)
        assert "recording sightings" in str(excinfo.value)
        assert store.sighting_buckets() == before
        assert len(store.own_keys()) == 1

        conn.execute("PRAGMA max_page_count = 1073741823")
        assert store.record_sightings(sightings(5, t0=9_000.0)) == 5


def test_a_locked_database_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_SECONDS", 0.05)
    path = tmp_path / DB_FILENAME
    with Store.open(path) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="locked"):
                store.record_sightings(sightings(1))
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert store.record_sightings(sightings(1)) == 1


def test_bucket_width_is_fixed_when_the_store_is_created(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    Store.open(path, bucket_seconds=30).close()
    with pytest.raises(StoreError, match="30-second buckets"):
        Store.open(path)
    with Store.open(path, read_only=True) as store:
        assert store.bucket_seconds == 30
    with Store.open(path, bucket_seconds=30) as store:
        store.record_sightings([Sighting(1_000_029.0, b"r" * 16, b"aemx", -50)])
        assert [b.bucket for b in store.sighting_buckets()] == [1_000_020]


@pytest.mark.parametrize("width", [0, -10, 7, 601])
def test_bucket_width_must_tile_an_interval(tmp_path: Path, width: int) -> None:
    with pytest.raises(InvalidInput, match="divisor of 600"):
        Store.open(tmp_path / DB_FILENAME, bucket_seconds=width)
    assert not (tmp_path / DB_FILENAME).exists()


def test_a_one_second_bucket_is_a_divisor_too(tmp_path: Path) -> None:
    with Store.open(tmp_path / DB_FILENAME, bucket_seconds=1) as store:
        store.record_sightings([Sighting(1_000_029.5, b"r" * 16, b"aemx", -50)])
        assert [b.bucket for b in store.sighting_buckets()] == [1_000_029]


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("loose", [0o601, 0o602, 0o604, 0o610, 0o620, 0o640, 0o700])
def test_any_group_or_other_bit_is_taken_away(tmp_path: Path, loose: int) -> None:
    path = tmp_path / DB_FILENAME
    Store.open(path).close()
    os.chmod(path, loose)
    Store.open(path).close()
    assert mode(path) == 0o600 if loose & 0o077 else mode(path) == loose


def test_sqlite_read_only_errors_are_translated(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    Store.open(path).close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as excinfo:
            conn.execute("INSERT INTO store_meta VALUES ('x', 'y')")
    finally:
        conn.close()
    error = store_module._store_error(path, "writing", excinfo.value)
    assert str(error).startswith(f"{path}: writing failed: the database is read-only")


def test_storage_bytes_counts_tables_and_indexes(tmp_path: Path) -> None:
    with Store.open(tmp_path / DB_FILENAME) as store:
        store.record_sightings(sightings(100))
        sizes = store.storage_bytes()
    if sizes is None:
        pytest.skip("this SQLite has no dbstat")
    assert sizes["sightings"] > 0
    assert sizes["sightings_bucket"] > 0
