"""The pure aggregator: the store's fold, closing by time, batching and bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluezoned.ble.aggregator import Aggregator
from bluezoned.errors import InvalidInput
from bluezoned.models import Sighting, SightingBucket
from bluezoned.store import fold_sightings


def _s(t: float, rpi: int = 1, rssi: int = -60, aem: int = 0) -> Sighting:
    return Sighting(t, bytes([rpi]) * 16, bytes([aem]) * 4, rssi)


class _Sink:
    def __init__(self) -> None:
        self.batches: list[list[SightingBucket]] = []

    def __call__(self, batch: list[SightingBucket]) -> None:
        self.batches.append(batch)

    @property
    def rows(self) -> list[SightingBucket]:
        return [b for batch in self.batches for b in batch]


def test_folds_like_the_store() -> None:
    sink = _Sink()
    agg = Aggregator(sink, bucket_seconds=10)
    sightings = [_s(100.5, rssi=-70, aem=1), _s(101.0, rssi=-50, aem=2), _s(100.2, rssi=-60, aem=3)]
    agg.add_many(sightings)
    agg.flush()
    assert sink.rows == fold_sightings(sightings, 10)
    (row,) = sink.rows
    assert (row.count, row.rssi_max, row.rssi_sum, row.first_seen, row.last_seen) == (
        3,
        -50,
        -180,
        100.2,
        101.0,
    )
    assert row.aem == bytes([2]) * 4


def test_tick_closes_only_ended_buckets_after_grace() -> None:
    sink = _Sink()
    agg = Aggregator(sink, bucket_seconds=10, grace_seconds=2)
    agg.add(_s(100.0))
    agg.add(_s(115.0))
    assert agg.tick(111.9) == 0
    assert agg.tick(112.0) == 1
    assert [b.bucket for b in sink.rows] == [100]
    assert agg.open_buckets == 1
    assert agg.flush() == 1
    assert agg.open_buckets == 0


def test_batches_respect_batch_size() -> None:
    sink = _Sink()
    agg = Aggregator(sink, batch_size=3)
    agg.add_many(_s(100.0, rpi=i) for i in range(7))
    agg.flush()
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert agg.stats.batches == 3
    assert agg.stats.buckets_written == 7


def test_memory_is_bounded_by_forced_flushes() -> None:
    sink = _Sink()
    agg = Aggregator(sink, max_open_buckets=100, bucket_seconds=10)
    for i in range(1_000):
        agg.add(Sighting(100.0 + i, i.to_bytes(16, "big"), bytes(4), -60))
        assert agg.open_buckets <= 100
    assert agg.stats.forced_flushes > 0
    agg.flush()
    assert sum(b.count for b in sink.rows) == 1_000


def test_malformed_sightings_are_counted_and_dropped() -> None:
    sink = _Sink()
    agg = Aggregator(sink)
    agg.add(Sighting(1.0, b"short", bytes(4), -60))
    agg.add(Sighting(float("nan"), bytes(16), bytes(4), -60))
    agg.flush()
    assert agg.stats.invalid == 2
    assert sink.rows == []


_sightings = st.lists(
    st.builds(
        Sighting,
        st.floats(0, 200, allow_nan=False),
        st.sampled_from([bytes([i]) * 16 for i in range(3)]),
        st.sampled_from([bytes([i]) * 4 for i in range(3)]),
        st.integers(-127, 0),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(_sightings, st.integers(1, 10))
def test_merged_output_equals_fold_sightings(sightings: list[Sighting], max_open: int) -> None:
    # Forced flushes split rows; merging them as the store's upsert does gives the fold.
    sink = _Sink()
    agg = Aggregator(sink, bucket_seconds=10, max_open_buckets=max_open)
    agg.add_many(sightings)
    agg.flush()
    merged: dict[tuple[bytes, int], SightingBucket] = {}
    for b in sink.rows:
        old = merged.get((b.rpi, b.bucket))
        if old is not None:
            later = b if b.last_seen >= old.last_seen else old
            b = SightingBucket(
                b.rpi,
                b.bucket,
                old.count + b.count,
                min(old.first_seen, b.first_seen),
                max(old.last_seen, b.last_seen),
                max(old.rssi_max, b.rssi_max),
                old.rssi_sum + b.rssi_sum,
                later.aem,
            )
        merged[(b.rpi, b.bucket)] = b
    expected = {(b.rpi, b.bucket): b for b in fold_sightings(sightings, 10)}
    assert {
        k: (v.count, v.rssi_sum, v.rssi_max, v.first_seen, v.last_seen) for k, v in merged.items()
    } == {
        k: (v.count, v.rssi_sum, v.rssi_max, v.first_seen, v.last_seen) for k, v in expected.items()
    }


def test_aggregator_and_supervision_are_pure() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; import bluezoned.ble.aggregator, bluezoned.ble.supervision; "
        "print(json.dumps([m for m in ('asyncio', 'bleak', 'dbus_fast', 'sqlite3') "
        "if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_forced_flush_starts_one_bucket_past_the_bound_and_halves_memory() -> None:
    sink = _Sink()
    agg = Aggregator(sink, max_open_buckets=4, bucket_seconds=10)
    for i in range(4):
        agg.add(_s(100.0 + 10 * i))
    assert (agg.open_buckets, agg.stats.forced_flushes) == (4, 0)
    agg.add(_s(140.0))
    assert agg.stats.forced_flushes == 1
    assert agg.open_buckets == 2  # the oldest written until at most half the bound is open
    assert [b.bucket for b in sink.rows] == [100, 110, 120]


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"max_open_buckets": 1, "batch_size": 1, "grace_seconds": 0.0}, True),
        ({"max_open_buckets": 0}, False),
        ({"batch_size": 0}, False),
        ({"grace_seconds": -0.5}, False),
        ({"bucket_seconds": 0}, False),
        ({"bucket_seconds": 7}, False),
    ],
)
def test_aggregator_settings_at_their_limits(kwargs: dict[str, float], ok: bool) -> None:
    if ok:
        Aggregator(_Sink(), **kwargs)  # type: ignore[arg-type]
    else:
        with pytest.raises(InvalidInput):
            Aggregator(_Sink(), **kwargs)  # type: ignore[arg-type]
