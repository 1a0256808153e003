"""Resumable matching in the store: pending files with their bytes, one transaction to finish, migration 0004."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_utils import Database

from bluezoned.errors import StoreError
from bluezoned.models import DiagnosisKey
from bluezoned.store import DB_FILENAME, ExposureRecord, ProcessedFile, Store, StoredDiagnosisKey
from bluezoned.store.migrations import MIGRATIONS

SHA_A = hashlib.sha256(b"a").digest()
SHA_B = hashlib.sha256(b"b").digest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / DB_FILENAME) as opened:
        yield opened


def file(sha: bytes, name: str = "a.zip", at: float = 100.0) -> ProcessedFile:
    return ProcessedFile(sha, "cwa", name, size=3, keys=2, processed_at=at)


def key(n: int) -> DiagnosisKey:
    return DiagnosisKey(n.to_bytes(16, "big"), 2_900_000)


def exposure(n: int) -> ExposureRecord:
    return ExposureRecord(key(n).key_data, 2_900_000, 10.0, 70.0, 60.0, 6, 200.0, 60, 2, 12.5)


def test_a_pending_file_is_recorded_with_its_bytes_once(store: Store) -> None:
    assert store.add_pending_key_file(file(SHA_A), b"zip")
    assert not store.add_pending_key_file(file(SHA_A, "copy.zip"), b"zip")
    assert store.unmatched_files() == [file(SHA_A)]
    assert store.pending_key_file_data(SHA_A) == b"zip"
    assert store.is_file_processed(SHA_A)  # so the worker never downloads it again
    assert store.processed_file_names("cwa") == {"a.zip"}
    assert store.processed_files() == [file(SHA_A)]
    assert store.processed_files("other") == []


def test_complete_matching_stores_all_and_marks_in_one_go(store: Store) -> None:
    store.add_pending_key_file(file(SHA_A), b"zip a")
    store.add_pending_key_file(file(SHA_B, "b.zip", 150.0), b"zip b")
    ids = store.complete_matching(
        [SHA_A, SHA_B], [StoredDiagnosisKey(key(1), "cwa", SHA_A, 300.0)], [exposure(1)], 300.0
    )
    assert [e.id for e in store.exposures()] == ids
    assert store.exposures()[0].risk_level == 2
    assert store.exposures()[0].risk_score == 12.5
    assert store.unmatched_files() == []
    assert store.pending_key_file_data(SHA_A) is None
    assert [f.matched_at for f in store.processed_files()] == [300.0, 300.0]
    assert [k.key for k in store.diagnosis_keys()] == [key(1)]
    # Matching again updates the exposure instead of duplicating it.
    assert store.complete_matching([], [], [exposure(1)], 400.0) == ids


def test_a_failed_completion_leaves_the_file_pending(store: Store) -> None:
    store.add_pending_key_file(file(SHA_A), b"zip")
    conn = store._db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    many = [StoredDiagnosisKey(key(n), "cwa", SHA_A, 1.0) for n in range(20_000)]
    with pytest.raises(StoreError, match="disk is full"):
        store.complete_matching([SHA_A], many, [exposure(1)], 300.0)
    assert store.unmatched_files() == [file(SHA_A)]
    assert store.pending_key_file_data(SHA_A) == b"zip"
    assert store.exposures() == []
    assert store.diagnosis_keys() == []


def test_purge_drops_old_pending_bytes_with_their_file(store: Store) -> None:
    store.add_pending_key_file(file(SHA_A, at=100.0), b"old")
    store.add_pending_key_file(file(SHA_B, "b.zip", at=900.0), b"new")
    result = store.purge(before=500.0)
    assert (result.pending_key_files, result.processed_files) == (1, 1)
    assert store.pending_key_file_data(SHA_A) is None
    assert store.pending_key_file_data(SHA_B) == b"new"
    assert [f.sha256 for f in store.unmatched_files()] == [SHA_B]


def test_migration_0004_marks_old_files_matched_and_drops_unmatched_keys(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    db = Database(path, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before="0004_resumable_matching")
    db.execute("INSERT INTO store_meta VALUES ('bucket_seconds', '10')")
    db.execute(
        "INSERT INTO processed_files (sha256, source, name, size, keys, processed_at)"
        " VALUES (?, 'cwa', 'a.zip', 3, 2, 100.0)",
        (SHA_A,),
    )
    for n in (1, 2):
        db.execute(
            "INSERT INTO diagnosis_keys (key_data, rolling_start, rolling_period, source,"
            " file_sha256, added_at) VALUES (?, 2900000, 144, 'cwa', ?, 100.0)",
            (key(n).key_data, SHA_A),
        )
    db.execute(
        "INSERT INTO exposures (key_data, rolling_start, start_time, end_time,"
        " duration_seconds, sightings, created) VALUES (?, 2900000, 1.0, 2.0, 1.0, 1, 100.0)",
        (key(1).key_data,),
    )
    db.conn.commit()
    db.close()
    with Store.open(path) as store:
        (old,) = store.processed_files()
        assert old.matched_at == 100.0
        assert store.unmatched_files() == []
        assert [k.key for k in store.diagnosis_keys()] == [key(1)]  # it backs an exposure
