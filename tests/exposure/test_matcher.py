"""Matcher: official vectors, the ±12-interval window, short keys, AEM checks, replays, skipping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bluezoned.const import SECONDS_PER_INTERVAL, TEK_ROLLING_PERIOD
from bluezoned.errors import InvalidInput
from bluezoned.exposure import keys as schedule
from bluezoned.exposure.benchdata import planted_day
from bluezoned.exposure.matcher import (
    KeyArrays,
    MatchConfig,
    SightingArrays,
    match,
    select_keys,
    window_sightings,
)
from bluezoned.models import DiagnosisKey, Sighting, SightingBucket, Tek
from bluezoned.store import DB_FILENAME, Store
from tests.exposure.test_keys import VECTOR_ENIN, VECTOR_TEK, VECTORS

META_V10_PLUS8 = bytes.fromhex("40080000")


def beacon(tek: Tek, enin: int, tx_power: int = -20, version: int = 0x50) -> tuple[bytes, bytes]:
    """(RPI, AEM) of ``tek`` at ``enin``, with raw control of the metadata bytes."""
    rpi = schedule.derive_rpis(schedule.derive_rpik(tek.key_data), enin, 1)
    metadata = bytes([version, tx_power & 0xFF, 0, 0])
    return rpi, schedule.encrypt_aem(schedule.derive_aemk(tek.key_data), rpi, metadata)


def sightings_of(rows: list[tuple[bytes, bytes, float]]) -> SightingArrays:
    """Sightings from (rpi, aem, t) rows."""
    return SightingArrays.from_sightings([Sighting(t, rpi, aem, -60) for rpi, aem, t in rows])


def at(enin: int, offset: float = 300.0) -> float:
    """A unix time inside interval ``enin``."""
    return enin * SECONDS_PER_INTERVAL + offset


KEY = Tek(bytes(range(16)), 2_900_016, TEK_ROLLING_PERIOD)


def test_official_vector_key_matches_its_published_rpis() -> None:
    rows = [(rpi, aem, at(enin)) for i, enin, rpi, aem in VECTORS if i % 10 == 0]
    noise = [(bytes([i] * 16), bytes(4), at(VECTOR_ENIN + i)) for i in range(20)]
    sightings = sightings_of(noise + rows)
    result = match(KeyArrays.from_keys([Tek(VECTOR_TEK, VECTOR_ENIN, 144)]), sightings)
    assert result.key_index.tolist() == [0]
    (contact,) = result.contacts()
    assert contact.sighting_index.tolist() == list(range(20, 20 + len(rows)))
    assert contact.rpi_interval.tolist() == [VECTOR_ENIN + i for i in range(0, 144, 10)]
    assert contact.tx_power.tolist() == [8] * len(rows)
    assert contact.calibration_confidence.tolist() == [0] * len(rows)
    assert result.keys_derived == 1


@pytest.mark.parametrize(
    ("shift_seconds", "matches"),
    [
        (12 * SECONDS_PER_INTERVAL, True),
        (12 * SECONDS_PER_INTERVAL + SECONDS_PER_INTERVAL - 0.001, True),
        (13 * SECONDS_PER_INTERVAL, False),
        (-12 * SECONDS_PER_INTERVAL, True),
        (-12 * SECONDS_PER_INTERVAL - 0.001, False),
        (-13 * SECONDS_PER_INTERVAL, False),
    ],
)
def test_tolerance_is_12_intervals_inclusive_both_sides(
    shift_seconds: float, matches: bool
) -> None:
    enin = KEY.rolling_start + 70
    rpi, aem = beacon(KEY, enin)
    sightings = sightings_of([(rpi, aem, enin * SECONDS_PER_INTERVAL + shift_seconds)])
    result = match(KeyArrays.from_keys([KEY]), sightings)
    assert len(result) == (1 if matches else 0)


def test_tolerance_reaches_past_the_keys_own_validity() -> None:
    last = KEY.rolling_end - 1
    rpi, aem = beacon(KEY, last)
    sightings = sightings_of([(rpi, aem, at(last + 12))])
    assert len(match(KEYS_ONE, sightings)) == 1


KEYS_ONE = KeyArrays.from_keys([KEY])


def test_short_rolling_period_matches_only_its_own_intervals() -> None:
    short = Tek(KEY.key_data, KEY.rolling_start + 30, 5)
    rows = [
        (*beacon(short, enin), at(enin))
        for enin in range(short.rolling_start, short.rolling_end + 3)
    ]
    result = match(KeyArrays.from_keys([short]), sightings_of(rows))
    (contact,) = result.contacts()
    assert contact.sighting_index.tolist() == [0, 1, 2, 3, 4]
    assert contact.rpi_interval.tolist() == list(range(short.rolling_start, short.rolling_end))
    assert result.rpis_derived == 5


def test_rpi_matched_against_its_own_interval_not_the_keys_start() -> None:
    rpi, aem = beacon(KEY, KEY.rolling_start + 100)
    early = sightings_of([(rpi, aem, at(KEY.rolling_start + 50))])
    assert len(match(KEYS_ONE, early)) == 0


@pytest.mark.parametrize(
    ("tx_power", "version", "accepted"),
    [(-50, 0x50, True), (20, 0x40, True), (-51, 0x50, False), (21, 0x50, False), (0, 0x90, False)],
)
def test_aem_tx_power_window_and_version(tx_power: int, version: int, accepted: bool) -> None:
    enin = KEY.rolling_start + 10
    rpi, aem = beacon(KEY, enin, tx_power, version)
    result = match(KEYS_ONE, sightings_of([(rpi, aem, at(enin))]))
    assert len(result) == (1 if accepted else 0)
    if accepted:
        assert result.tx_power.tolist() == [tx_power]
    else:
        assert result.rejected_key_index.tolist() == [0]
        assert result.rejected_sighting_index.tolist() == [0]


@pytest.mark.parametrize("confidence", [0, 1, 2, 3])
def test_calibration_confidence_is_decoded(confidence: int) -> None:
    enin = KEY.rolling_start + 10
    rpi, aem = beacon(KEY, enin, -10, 0x50 | (confidence << 2))
    result = match(KEYS_ONE, sightings_of([(rpi, aem, at(enin))]))
    assert result.calibration_confidence.tolist() == [confidence]


def test_sightings_at_or_after_publication_are_replays() -> None:
    enin = KEY.rolling_start + 10
    rpi, aem = beacon(KEY, enin)
    published = at(enin, 200)
    rows = [(rpi, aem, at(enin, 100)), (rpi, aem, published), (rpi, aem, at(enin, 500))]
    keys = KeyArrays.from_keys([KEY], published_at=published)
    result = match(keys, sightings_of(rows))
    assert result.sighting_index.tolist() == [0]
    assert sorted(result.replay_sighting_index.tolist()) == [1, 2]
    assert result.replay_key_index.tolist() == [0, 0]


def test_only_replays_make_no_contact() -> None:
    enin = KEY.rolling_start + 10
    rpi, aem = beacon(KEY, enin)
    keys = KeyArrays.from_keys([KEY], published_at=at(enin, 0))
    result = match(keys, sightings_of([(rpi, aem, at(enin, 100))]))
    assert len(result) == 0
    assert result.replay_sighting_index.tolist() == [0]


def test_one_contact_across_rotations_sorted_by_time() -> None:
    other = Tek(bytes(16), KEY.rolling_start, 144)
    rows = []
    for step in (5, 3, 4):
        enin = KEY.rolling_start + step
        rows.append((*beacon(KEY, enin), at(enin, 10)))
        rows.append((*beacon(other, enin), at(enin, 20)))
    result = match(KeyArrays.from_keys([other, KEY]), sightings_of(rows))
    assert result.key_index.tolist() == [0, 1]
    first, second = result.contacts()
    assert first.sighting_index.tolist() == [3, 5, 1]
    assert second.sighting_index.tolist() == [2, 4, 0]
    assert result.hit_key_index.tolist() == [0, 0, 0, 1, 1, 1]


def test_every_bucket_of_a_matched_rpi_is_returned() -> None:
    enin = KEY.rolling_start + 1
    rpi, aem = beacon(KEY, enin)
    base = at(enin, 0)
    buckets = [
        SightingBucket(
            rpi, int(base) + 10 * j, 3, base + 10 * j + 1, base + 10 * j + 2, -50, -160, aem
        )
        for j in range(6)
    ]
    result = match(KEYS_ONE, SightingArrays.from_buckets(buckets[::-1]))
    assert result.sighting_index.tolist() == [5, 4, 3, 2, 1, 0]


def test_keys_ending_before_the_oldest_sighting_get_no_crypto() -> None:
    old = Tek(bytes([7] * 16), KEY.rolling_start - 144, 144)
    rpi, aem = beacon(KEY, KEY.rolling_start + 20)
    sightings = sightings_of([(rpi, aem, at(KEY.rolling_start + 20))])
    result = match(KeyArrays.from_keys([old, KEY]), sightings)
    assert result.keys_derived == 1
    assert result.key_index.tolist() == [1]
    # Only the intervals within ±12 of a sighting are derived.
    assert result.rpis_derived == 25


def test_key_just_inside_the_tolerance_of_the_oldest_sighting_is_kept() -> None:
    old = Tek(bytes([7] * 16), KEY.rolling_start - 144, 144)
    rpi, aem = beacon(old, old.rolling_end - 1)
    sightings = sightings_of([(rpi, aem, at(old.rolling_end - 1 + 12))])
    assert match(KeyArrays.from_keys([old]), sightings).key_index.tolist() == [0]


def test_select_keys_retention_oldest_sighting_and_known() -> None:
    now = KEY.rolling_start + 100
    keys = KeyArrays.from_keys(
        [
            Tek(bytes([1] * 16), now - 15 * 144, 144),  # outside retention
            Tek(bytes([2] * 16), now - 14 * 144, 144),  # oldest retained day
            Tek(bytes([3] * 16), now - 3 * 144, 144),  # ended before the oldest sighting
            Tek(bytes([4] * 16), now - 144, 144),
            Tek(bytes([5] * 16), now - 100, 144),  # known already
        ]
    )
    oldest = now - 2 * 144 + 12  # key 3 ends at now - 2*144 - 1; +12 tolerance falls one short
    mask = select_keys(
        keys, now_interval=now, oldest_sighting_interval=oldest, known={bytes([5] * 16)}
    )
    assert mask.tolist() == [False, False, False, True, False]
    mask = select_keys(keys, now_interval=now, oldest_sighting_interval=oldest - 1)
    assert mask.tolist() == [False, False, True, True, True]
    assert not select_keys(keys, now_interval=now, oldest_sighting_interval=None).any()


def test_empty_inputs() -> None:
    empty_sightings = sightings_of([])
    assert len(match(KEYS_ONE, empty_sightings)) == 0
    rpi, aem = beacon(KEY, KEY.rolling_start)
    assert (
        len(match(KeyArrays.from_keys([]), sightings_of([(rpi, aem, at(KEY.rolling_start))]))) == 0
    )


def test_from_keys_and_columns_agree() -> None:
    keys = [DiagnosisKey(bytes([i] * 16), 2_900_016 + i, 144 - i) for i in range(4)]
    a = KeyArrays.from_keys(keys, published_at=5.0)
    b = KeyArrays.from_columns(
        a.key_data, np.arange(4) + 2_900_016, 144 - np.arange(4), published_at=5.0
    )
    for name in ("key_data", "rolling_start", "rolling_period", "published_at"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert len(a.subset(np.array([1, 3]))) == 2


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        KeyArrays(
            np.zeros((2, 15), np.uint8), np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2)
        )
    with pytest.raises(InvalidInput):
        SightingArrays(np.zeros((2, 16), np.uint8), np.zeros(3), np.zeros((2, 4), np.uint8))
    with pytest.raises(InvalidInput):
        SightingArrays.from_sightings([Sighting(0.0, b"short", bytes(4), -50)])
    with pytest.raises(InvalidInput):
        match(KEYS_ONE, sightings_of([(bytes(16), bytes(4), float("nan"))]))


@pytest.mark.parametrize("backend", ["openssl", "cryptography"])
def test_planted_day_matches_exactly_the_planted_keys(backend: str) -> None:
    from bluezoned.exposure.bulk import available_backends

    if backend not in available_backends():
        pytest.skip(f"{backend} backend unavailable here")
    day = planted_day(600, n_planted=7, seed=3, background=5_000)
    result = match(day.keys, day.sightings, MatchConfig(backend=backend, chunk_rpis=20_000))
    assert np.array_equal(result.key_index, day.planted)
    assert int(result.offsets[-1]) == 7 * 12


# --- Windowing -------------------------------------------------------------------------


def test_windows_split_on_key_and_aligned_boundary() -> None:
    times = np.array([0.0, 1799.0, 1800.0, 100.0, 5000.0])
    key_index = np.array([0, 0, 0, 1, 1], dtype=np.int64)
    windows = window_sightings(times, key_index, window_seconds=1800)
    assert windows.offsets.tolist() == [0, 2, 3, 4, 5]
    assert windows.key_index.tolist() == [0, 0, 1, 1]
    assert windows.start.tolist() == [0.0, 1800.0, 0.0, 3600.0]
    assert windows.order.tolist() == [0, 1, 2, 3, 4]


def test_windows_of_unsorted_input_equal_sorted() -> None:
    rng = np.random.default_rng(1)
    times = rng.uniform(0, 20_000, 500)
    key_index = rng.integers(0, 5, 500).astype(np.int64)
    shuffled = window_sightings(times, key_index)
    order = np.lexsort((times, key_index))
    ordered = window_sightings(times[order], key_index[order])
    assert np.array_equal(shuffled.offsets, ordered.offsets)
    assert np.array_equal(shuffled.key_index, ordered.key_index)
    assert np.array_equal(order[ordered.order], shuffled.order)


def test_windows_empty_and_bad_width() -> None:
    empty = window_sightings(np.empty(0), np.empty(0, dtype=np.int64))
    assert len(empty) == 0
    assert empty.offsets.tolist() == [0]
    with pytest.raises(InvalidInput):
        window_sightings(np.zeros(2), np.zeros(2, dtype=np.int64), window_seconds=0)


def test_matcher_output_feeds_windowing_directly() -> None:
    day = planted_day(300, n_planted=4, seed=9, background=500)
    result = match(day.keys, day.sightings)
    windows = window_sightings(day.sightings.t[result.sighting_index], result.hit_key_index)
    assert np.array_equal(windows.order, np.arange(int(result.offsets[-1])))
    assert set(windows.key_index.tolist()) == set(result.key_index.tolist())


def test_matcher_modules_import_no_edge() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; import bluezoned.exposure.matcher, bluezoned.exposure.bulk, "
        "bluezoned.exposure.benchdata; print(json.dumps([m for m in "
        "['asyncio', 'sqlite3', 'sqlite_utils', 'click', 'bleak', 'dbus_fast', 'numba', "
        "'bluezoned.store', 'bluezoned.ble'] if sys.modules.get(m) is not None]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_store_rows_to_contacts(tmp_path: Path) -> None:
    """The daemon's glue: sightings recorded in the store come back as one contact per key."""

    enin = KEY.rolling_start + 60
    rpi_a, aem_a = beacon(KEY, enin, -12)
    rpi_b, aem_b = beacon(KEY, enin + 1, -12)
    raw = [Sighting(at(enin, s), rpi_a, aem_a, -55) for s in (1.0, 2.0, 25.0)]
    raw += [Sighting(at(enin + 1, s), rpi_b, aem_b, -60) for s in (3.0, 4.0)]
    raw += [Sighting(at(enin, 9.0), bytes(16), bytes(4), -70)]
    with Store.open(tmp_path / DB_FILENAME) as store:
        store.record_sightings(raw)
        buckets = store.sighting_buckets()
    sightings = SightingArrays.from_buckets(buckets)
    result = match(KeyArrays.from_keys([DiagnosisKey(KEY.key_data, KEY.rolling_start)]), sightings)
    (contact,) = result.contacts()
    assert [buckets[i].rpi for i in contact.sighting_index] == [rpi_a, rpi_a, rpi_b]
    assert sum(buckets[i].count for i in contact.sighting_index) == 5
    assert contact.tx_power.tolist() == [-12, -12, -12]
