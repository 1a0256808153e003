"""Own keys (durable), downloaded keys and key files, exposures and sync state."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bluezoned.errors import InvalidInput, StoreError
from bluezoned.models import DiagnosisKey, ReportType, Sighting, SightingBucket, Tek
from bluezoned.store import (
    DB_FILENAME,
    ExposureRecord,
    OwnKey,
    ProcessedFile,
    Store,
    StoredDiagnosisKey,
    SyncState,
)

FILE_A = hashlib.sha256(b"file a").digest()
FILE_B = hashlib.sha256(b"file b").digest()
FULL, NORMAL = 2, 1  # PRAGMA synchronous levels


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / DB_FILENAME) as opened:
        yield opened


def sync_levels_seen(store: Store, table: str, event: str) -> None:
    """Record PRAGMA synchronous as it is *inside* each later write to ``table``."""
    conn = store._db.conn
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (level INTEGER)")
    conn.execute(
        f"CREATE TEMP TRIGGER seen_{table}_{event} AFTER {event} ON main.{table}"
        " BEGIN INSERT INTO seen SELECT synchronous FROM pragma_synchronous; END"
    )


def levels(store: Store) -> list[int]:
    return [level for (level,) in store._db.conn.execute("SELECT level FROM seen")]


def key(
    n: int,
    start: int = 2_900_000,
    *,
    transmission_risk_level: int | None = None,
    report_type: ReportType | None = None,
    days_since_onset: int | None = None,
) -> DiagnosisKey:
    return DiagnosisKey(
        bytes([n]) * 16, start, 144, transmission_risk_level, report_type, days_since_onset
    )


# --- own keys ------------------------------------------------------------------------------


def test_own_key_is_written_with_synchronous_full(store: Store) -> None:
    sync_levels_seen(store, "own_keys", "INSERT")
    sync_levels_seen(store, "sightings", "INSERT")
    store.add_own_key(Tek(b"k" * 16, 2_900_000), created=1.0)
    store.record_sightings([Sighting(1000.0, b"r" * 16, b"aemx", -50)])
    assert levels(store) == [FULL, NORMAL]
    assert store._db.conn.execute("PRAGMA synchronous").fetchone() == (NORMAL,)


def test_marking_reported_is_durable_too(store: Store) -> None:
    store.add_own_key(Tek(b"k" * 16, 2_900_000), created=1.0)
    sync_levels_seen(store, "own_keys", "UPDATE")
    assert store.mark_reported([b"k" * 16], at=50.0) == 1
    assert levels(store) == [FULL]


def test_synchronous_is_restored_after_a_failed_durable_write(store: Store) -> None:
    store.add_own_key(Tek(b"k" * 16, 2_900_000), created=1.0)
    with pytest.raises(InvalidInput, match="another schedule"):
        store.add_own_key(Tek(b"k" * 16, 2_900_144), created=2.0)
    assert store._db.conn.execute("PRAGMA synchronous").fetchone() == (NORMAL,)
    assert not store._db.conn.in_transaction


def test_own_keys_round_trip_and_are_idempotent(store: Store) -> None:
    old, new = Tek(b"o" * 16, 2_900_000), Tek(b"n" * 16, 2_900_144, 72)
    assert store.add_own_key(new, created=20.0)
    assert store.add_own_key(old, created=10.0)
    assert not store.add_own_key(old, created=99.0)
    assert store.own_keys() == [OwnKey(old, 10.0), OwnKey(new, 20.0)]
    assert store.own_keys(since_interval=2_900_144) == [OwnKey(new, 20.0)]
    assert store.own_keys(since_interval=2_900_144 + 72) == []

    assert store.mark_reported([old.key_data, new.key_data], at=30.0) == 2
    assert store.mark_reported([old.key_data], at=40.0) == 0
    assert [k.reported_at for k in store.own_keys()] == [30.0, 30.0]
    assert all(k.reported for k in store.own_keys())


@pytest.mark.parametrize(
    ("tek", "match"),
    [
        (Tek(b"short", 1), "5 bytes"),
        (Tek(b"k" * 16, -1), "negative"),
        (Tek(b"k" * 16, 1, 0), "rolling period"),
        (Tek(b"k" * 16, 1, 145), "rolling period"),
    ],
)
def test_malformed_own_keys_are_refused(store: Store, tek: Tek, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        store.add_own_key(tek, created=1.0)
    assert store.own_keys() == []


# --- diagnosis keys and key files ----------------------------------------------------------


def store_keys(store: Store, keys: list[DiagnosisKey], source: str, sha: bytes, now: float) -> None:
    """Keys as the matcher stores them: with their provenance, no file to mark."""
    store.complete_matching([], [StoredDiagnosisKey(k, source, sha, now) for k in keys], [], now)


def test_diagnosis_keys_keep_their_fields_and_provenance(store: Store) -> None:
    keys = [
        key(1, transmission_risk_level=6, report_type=ReportType.CONFIRMED_TEST),
        key(2, days_since_onset=-3),
    ]
    store_keys(store, keys, "cwa", FILE_A, now=100.0)
    assert store.diagnosis_keys() == [StoredDiagnosisKey(k, "cwa", FILE_A, 100.0) for k in keys]


def test_adding_the_same_keys_again_changes_nothing(store: Store) -> None:
    keys = [key(1), key(2)]
    store_keys(store, keys, "cwa", FILE_A, now=100.0)
    store_keys(store, keys, "efgs", FILE_B, now=200.0)
    assert [(k.source, k.added_at) for k in store.diagnosis_keys()] == [("cwa", 100.0)] * 2


def test_a_revised_key_replaces_its_metadata(store: Store) -> None:
    store_keys(store, [key(1, report_type=ReportType.CONFIRMED_TEST)], "cwa", FILE_A, 1.0)
    revoked = key(1, report_type=ReportType.REVOKED)
    store_keys(store, [revoked], "cwa", FILE_B, 2.0)
    assert store.diagnosis_keys() == [StoredDiagnosisKey(revoked, "cwa", FILE_B, 2.0)]


def test_diagnosis_keys_since_interval(store: Store) -> None:
    store_keys(store, [key(1, 1000), key(2, 2000)], "cwa", FILE_A, 1.0)
    assert [k.key.rolling_start for k in store.diagnosis_keys(since_interval=1144)] == [2000]


@pytest.mark.parametrize(
    ("keys", "source", "sha", "match"),
    [
        ([DiagnosisKey(b"x" * 15, 1)], "cwa", FILE_A, "15 bytes"),
        ([key(1)], "cwa", b"\x00" * 31, "SHA-256"),
        ([key(1)], "", FILE_A, "source"),
    ],
)
def test_malformed_diagnosis_keys_are_refused(
    store: Store, keys: list[DiagnosisKey], source: str, sha: bytes, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        store_keys(store, [key(9), *keys], source, sha, now=1.0)
    assert store.diagnosis_keys() == []


def test_matched_keys_are_never_half_stored(store: Store) -> None:
    file = ProcessedFile(FILE_A, "cwa", "big.zip", size=3, keys=20_000, processed_at=5.0)
    assert store.add_pending_key_file(file, b"zip")
    conn = store._db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    many = [
        StoredDiagnosisKey(DiagnosisKey(i.to_bytes(16, "big"), 2_900_000), "cwa", FILE_A, 6.0)
        for i in range(20_000)
    ]
    with pytest.raises(StoreError, match="disk is full"):
        store.complete_matching([FILE_A], many, [], at=6.0)
    assert store.diagnosis_keys() == []
    assert store.unmatched_files() == [file]
    assert store.pending_key_file_data(FILE_A) == b"zip"


# --- exposures and sync state ---------------------------------------------------------------


def exposure(
    start: float,
    end: float,
    *,
    min_attenuation: int | None = None,
    risk_level: int | None = None,
    risk_score: float | None = None,
) -> ExposureRecord:
    return ExposureRecord(
        b"k" * 16,
        2_900_000,
        start,
        end,
        end - start,
        sightings=4,
        created=9.0,
        min_attenuation=min_attenuation,
        risk_level=risk_level,
        risk_score=risk_score,
    )


def test_exposures_add_update_and_alert(store: Store) -> None:
    first = store.add_exposure(exposure(100.0, 400.0, min_attenuation=55, risk_level=3))
    second = store.add_exposure(exposure(900.0, 960.0))
    assert store.mark_alerted([first], at=1000.0) == 1
    assert store.mark_alerted([first], at=2000.0) == 0
    # Re-matching the same key and start updates the row and keeps its alert.
    assert store.add_exposure(exposure(100.0, 700.0, risk_score=0.5)) == first
    stored = store.exposures()
    assert [(e.id, e.end, e.duration_seconds, e.alerted_at) for e in stored] == [
        (first, 700.0, 600.0, 1000.0),
        (second, 960.0, 60.0, None),
    ]
    assert stored[0].risk_score == 0.5
    assert [e.id for e in store.exposures(unalerted_only=True)] == [second]
    summary = store.summary(now=2000.0)
    assert (summary.exposures, summary.exposures_alerted, summary.exposures_unalerted) == (2, 1, 1)


def test_malformed_exposures_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="ends before"):
        store.add_exposure(exposure(500.0, 400.0))
    with pytest.raises(InvalidInput, match="15 bytes"):
        store.add_exposure(ExposureRecord(b"k" * 15, 1, 1.0, 2.0, 1.0, 1, 1.0))


def test_sync_state_round_trip(store: Store) -> None:
    assert store.sync_state("cwa") is None
    state = SyncState("cwa", etag='"abc"', last_attempt=10.0, consecutive_failures=2)
    store.put_sync_state(state)
    assert store.sync_state("cwa") == state
    newer = SyncState("cwa", last_success=20.0, next_due=80.0)
    store.put_sync_state(newer)
    assert store.sync_state("cwa") == newer
    with pytest.raises(InvalidInput):
        store.put_sync_state(SyncState(""))


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"end": 100.0}, None),  # a single sighting: the exposure ends as it starts
        ({"end": 99.9}, "ends before"),
        ({"close_score": 0.0}, None),
        ({"close_score": 1.0}, None),
        ({"close_score": -0.01}, "not a probability"),
        ({"close_score": 1.01}, "not a probability"),
        ({"distance_m": 0.01}, None),
        ({"distance_m": 0.0}, "not positive"),
    ],
)
def test_exposure_checks_at_their_boundaries(
    store: Store, change: dict[str, Any], refused: str | None
) -> None:
    record = replace(exposure(100.0, 400.0), **change)
    if refused is None:
        store.add_exposure(record)
        assert len(store.exposures()) == 1
    else:
        with pytest.raises(InvalidInput, match=refused):
            store.add_exposure(record)
        assert store.exposures() == []


def test_key_and_file_checks_at_their_boundaries(store: Store) -> None:
    assert store.add_own_key(Tek(b"k" * 16, 0), created=1.0)
    with pytest.raises(InvalidInput, match="negative"):
        store.add_own_key(Tek(b"n" * 16, -1), created=1.0)
    empty = ProcessedFile(FILE_A, "cwa", "empty.zip", 0, 0, 5.0)
    assert store.add_pending_key_file(empty, b"")
    for size, keys in ((-1, 0), (0, -1)):
        bad = ProcessedFile(FILE_B, "cwa", "bad.zip", size, keys, 5.0)
        with pytest.raises(InvalidInput, match="cannot be negative"):
            store.add_pending_key_file(bad, b"")
    assert not store.is_file_processed(FILE_B)


@pytest.mark.parametrize(
    ("first", "last", "count", "refused"),
    [
        (1000.0, 1009.99, 1, False),  # first and last inside the 10-s bucket from 1000
        (999.99, 1005.0, 1, True),
        (1000.0, 1010.0, 1, True),
        (1005.0, 1004.0, 2, True),
        (1000.0, 1000.0, 0, True),
    ],
)
def test_sighting_bucket_checks_at_their_boundaries(
    store: Store, first: float, last: float, count: int, refused: bool
) -> None:
    bucket = SightingBucket(b"r" * 16, 1000, count, first, last, -50, -50 * count, b"aemx")
    if refused:
        with pytest.raises(InvalidInput, match="inconsistent bucket"):
            store.add_buckets([bucket])
        assert store.sighting_buckets() == []
    else:
        store.add_buckets([bucket])
        assert store.sighting_buckets() == [bucket]
