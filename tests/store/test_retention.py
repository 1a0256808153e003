"""Retention: exactly the old rows go, in bounded chunks, resumably."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bluezoned.const import SECONDS_PER_INTERVAL
from bluezoned.errors import InvalidInput, StoreError
from bluezoned.models import DiagnosisKey, SightingBucket, Tek
from bluezoned.store import (
    DB_FILENAME,
    ExposureRecord,
    ProcessedFile,
    PurgeResult,
    Store,
    StoredDiagnosisKey,
)

CUTOFF_INTERVAL = 2_900_000
CUTOFF = float(CUTOFF_INTERVAL * SECONDS_PER_INTERVAL)
RPIS = (b"A" * 16, b"B" * 16)
EXPECTED = {
    "sightings": 40,
    "own_keys": 2,
    "diagnosis_keys": 26,
    "exposures": 12,
    "processed_files": 4,
}


def sha(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store with rows on both sides of CUTOFF, including ones ending exactly at it."""
    with Store.open(tmp_path / DB_FILENAME) as s:
        c, i = int(CUTOFF), CUTOFF_INTERVAL
        # Buckets start at c-200 .. c+90: those ending at or before c (start <= c-10) are old.
        s.add_buckets(
            SightingBucket(rpi, b, 1, b + 1.0, b + 2.0, -50, -50, b"aemx")
            for rpi in RPIS
            for b in range(c - 200, c + 100, 10)
        )
        for n, start in enumerate((i - 288, i - 144, i - 143, i)):  # ends: old, =cutoff, new, new
            s.add_own_key(Tek(bytes([n]) * 16, start), created=1.0)
        old_keys = [DiagnosisKey(n.to_bytes(16, "big"), i - 144) for n in range(25)]
        old_keys.append(DiagnosisKey(b"p" * 16, i - 1, rolling_period=1))  # ends at the cutoff
        new_keys = [DiagnosisKey((100 + n).to_bytes(16, "big"), i - 100) for n in range(5)]
        s.complete_matching(
            [],
            [StoredDiagnosisKey(k, "cwa", sha(0), CUTOFF - 10) for k in old_keys + new_keys],
            [],
            CUTOFF - 10,
        )
        for n in range(15):
            end = CUTOFF - 1 - n if n < 12 else CUTOFF + n - 12  # 12 end before, 3 at/after
            s.add_exposure(ExposureRecord(b"k" * 16, i, end - 60, end, 60.0, 3, created=end))
        for n in range(6):
            at = CUTOFF - 1 if n < 4 else CUTOFF
            s.add_pending_key_file(ProcessedFile(sha(n), "cwa", f"{n}.zip", 10, 0, at), b"zip")
            s.complete_matching([sha(n)], [], [], at)
        yield s


def counts(store: Store) -> dict[str, int]:
    summary = store.summary(now=CUTOFF)
    return {
        "sightings": summary.sighting_buckets,
        "own_keys": summary.own_keys,
        "diagnosis_keys": summary.diagnosis_keys,
        "exposures": summary.exposures,
        "processed_files": summary.processed_files,
    }


def test_purge_deletes_exactly_the_old_rows_in_chunks(store: Store) -> None:
    before = counts(store)
    statements: list[str] = []
    store._db.conn.set_trace_callback(statements.append)

    result = store.purge(CUTOFF, chunk_rows=7)

    store._db.conn.set_trace_callback(None)
    # sightings 40 -> 6 chunks, own keys 1, diagnosis keys 26 -> 4, exposures 12 -> 2, files 1
    assert result == PurgeResult(**EXPECTED, chunks=14, finished=True)
    assert result.total == sum(EXPECTED.values()) + result.pending_key_files
    # Each DELETE is its own transaction.
    writes = [s.split()[0] for s in statements if s.startswith(("BEGIN", "DELETE", "COMMIT"))]
    assert writes == ["BEGIN", "DELETE", "COMMIT"] * (len(writes) // 3)
    assert writes.count("DELETE") == result.chunks + 1  # + the empty probe of pending_key_files
    assert counts(store) == {name: before[name] - EXPECTED[name] for name in EXPECTED}

    assert {b.bucket for b in store.sighting_buckets()} == set(
        range(int(CUTOFF), int(CUTOFF) + 100, 10)
    )
    assert [k.tek.rolling_start for k in store.own_keys()] == [
        CUTOFF_INTERVAL - 143,
        CUTOFF_INTERVAL,
    ]
    assert {k.key.rolling_start for k in store.diagnosis_keys()} == {CUTOFF_INTERVAL - 100}
    assert sorted(e.end for e in store.exposures()) == [CUTOFF, CUTOFF + 1, CUTOFF + 2]
    assert store.is_file_processed(sha(4))
    assert not store.is_file_processed(sha(3))


def test_max_chunks_bounds_each_call_and_purging_resumes(store: Store) -> None:
    first = store.purge(CUTOFF, chunk_rows=7, max_chunks=4)
    assert (first.chunks, first.finished, first.total) == (4, False, 28)
    assert first.sightings == 28

    results = [first]
    while not results[-1].finished:
        results.append(store.purge(CUTOFF, chunk_rows=7, max_chunks=4))
        assert results[-1].chunks <= 4
    assert len(results) == 4
    totals = {name: sum(getattr(r, name) for r in results) for name in EXPECTED}
    assert totals == EXPECTED

    assert store.purge(CUTOFF, chunk_rows=7, max_chunks=1) == PurgeResult(0, 0, 0, 0, 0, 0, True)


def test_purge_with_a_non_aligned_cutoff(store: Store) -> None:
    # Halfway into a bucket: that bucket has not ended, so it stays.
    result = store.purge(CUTOFF - 15)
    assert result.sightings == 2 * 18  # buckets c-200 .. c-30 end by c-20 <= c-15
    assert result.finished


def test_purge_arguments_and_read_only(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        store.purge(CUTOFF, chunk_rows=0)
    with pytest.raises(InvalidInput):
        store.purge(CUTOFF, max_chunks=0)
    with Store.open(store.path, read_only=True) as reader, pytest.raises(StoreError):
        reader.purge(CUTOFF)
