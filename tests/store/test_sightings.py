"""Sighting aggregation: folding per (RPI, bucket) and merging batches into stored rows."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluezoned.errors import InvalidInput
from bluezoned.models import Sighting, SightingBucket
from bluezoned.store import DB_FILENAME, Store, bucket_start, fold_sightings

A = b"A" * 16
B = b"B" * 16


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / DB_FILENAME) as opened:
        yield opened


def key(b: SightingBucket) -> tuple[int, bytes]:
    return (b.bucket, b.rpi)


def test_bucket_start_floors_to_the_width() -> None:
    assert bucket_start(1009.999) == 1000
    assert bucket_start(1010.0) == 1010
    assert bucket_start(1010.0, 30) == 990


def test_fold_groups_by_rpi_and_bucket() -> None:
    folded = fold_sightings(
        [
            Sighting(1003.0, A, b"aem1", -70),
            Sighting(1001.0, A, b"aem2", -50),
            Sighting(1009.5, A, b"aem3", -60),
            Sighting(1010.0, A, b"aem4", -80),
            Sighting(1002.0, B, b"aemB", -90),
        ]
    )
    assert sorted(folded, key=key) == [
        SightingBucket(A, 1000, 3, 1001.0, 1009.5, -50, -180, b"aem3"),
        SightingBucket(B, 1000, 1, 1002.0, 1002.0, -90, -90, b"aemB"),
        SightingBucket(A, 1010, 1, 1010.0, 1010.0, -80, -80, b"aem4"),
    ]
    assert folded[0].rssi_mean == -60.0


def test_batches_merge_into_one_row(store: Store) -> None:
    assert store.record_sightings([Sighting(1004.0, A, b"old1", -70)]) == 1
    assert store.record_sightings([Sighting(1008.0, A, b"new1", -40)]) == 1
    # An older sighting arriving late must not replace the latest AEM.
    assert store.record_sightings([Sighting(1001.0, A, b"late", -90)]) == 1
    assert store.sighting_buckets() == [
        SightingBucket(A, 1000, 3, 1001.0, 1008.0, -40, -200, b"new1")
    ]


def test_equal_last_seen_keeps_the_aem_of_the_later_batch(store: Store) -> None:
    first = [Sighting(1005.0, A, b"aem1", -60)]
    second = [Sighting(1005.0, A, b"aem2", -60)]
    store.record_sightings(first)
    store.record_sightings(second)
    assert [b.aem for b in store.sighting_buckets()] == [b"aem2"]
    assert [b.aem for b in fold_sightings(first + second)] == [b"aem2"]


def test_add_buckets_merges_like_record_sightings(store: Store) -> None:
    store.record_sightings([Sighting(1002.0, A, b"aem1", -60), Sighting(1003.0, A, b"aem1", -62)])
    assert store.add_buckets([SightingBucket(A, 1000, 4, 1000.5, 1009.0, -55, -240, b"aem2")]) == 1
    assert store.sighting_buckets() == [
        SightingBucket(A, 1000, 6, 1000.5, 1009.0, -55, -362, b"aem2")
    ]


def test_empty_batches_write_nothing(store: Store) -> None:
    assert store.record_sightings([]) == 0
    assert store.add_buckets([]) == 0
    assert store.sighting_buckets() == []


@pytest.mark.parametrize(
    ("bucket", "match"),
    [
        (SightingBucket(A, 1005, 1, 1005.0, 1005.0, -60, -60, b"aemx"), "multiple of 10"),
        (SightingBucket(A[:15], 1000, 1, 1005.0, 1005.0, -60, -60, b"aemx"), "15-byte RPI"),
        (SightingBucket(A, 1000, 1, 1005.0, 1005.0, -60, -60, b"aem"), "3-byte AEM"),
        (SightingBucket(A, 1000, 0, 1005.0, 1005.0, -60, -60, b"aemx"), "inconsistent"),
        (SightingBucket(A, 1000, 2, 1006.0, 1005.0, -60, -60, b"aemx"), "inconsistent"),
        (SightingBucket(A, 1000, 2, 1005.0, 1010.0, -60, -60, b"aemx"), "inconsistent"),
    ],
)
def test_add_buckets_refuses_malformed_buckets_and_writes_nothing(
    store: Store, bucket: SightingBucket, match: str
) -> None:
    good = SightingBucket(B, 1000, 1, 1001.0, 1001.0, -50, -50, b"aemx")
    with pytest.raises(InvalidInput, match=match):
        store.add_buckets([good, bucket])
    assert store.sighting_buckets() == []


@pytest.mark.parametrize(
    "bad",
    [
        Sighting(1000.0, A[:8], b"aemx", -50),
        Sighting(1000.0, A, b"aemxx", -50),
        Sighting(float("nan"), A, b"aemx", -50),
    ],
)
def test_record_sightings_refuses_malformed_sightings(store: Store, bad: Sighting) -> None:
    with pytest.raises(InvalidInput):
        store.record_sightings([Sighting(1000.0, B, b"aemx", -50), bad])
    assert store.sighting_buckets() == []


def test_sighting_buckets_window(store: Store) -> None:
    store.record_sightings([Sighting(float(t), A, b"aemx", -50) for t in range(1000, 1050, 5)])
    assert [b.bucket for b in store.sighting_buckets(since=1010, before=1040)] == [1010, 1020, 1030]
    assert [b.bucket for b in store.sighting_buckets(since=1040)] == [1040]


sighting_lists = st.lists(
    st.builds(
        Sighting,
        # Half-second steps over three buckets make equal times (the AEM tie-break) common.
        t=st.integers(min_value=0, max_value=59).map(lambda half: 1000 + half / 2),
        rpi=st.sampled_from([A, B]),
        aem=st.sampled_from([b"aem1", b"aem2", b"aem3"]),
        rssi=st.integers(min_value=-127, max_value=126),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(sightings=sighting_lists, cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=4))
def test_any_split_into_batches_stores_the_fold_of_everything(
    sightings: list[Sighting], cuts: list[int]
) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(sightings)), len(sightings)]
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / DB_FILENAME) as store:
        for start, end in itertools.pairwise(bounds):
            store.record_sightings(sightings[start:end])
        stored = store.sighting_buckets()
    assert stored == sorted(fold_sightings(sightings), key=key)
