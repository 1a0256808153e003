"""Fast paths: every derivation backend equals ``cryptography``; prefix filter and pools stay exact."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bluezoned.errors import InvalidInput
from bluezoned.exposure import bulk
from bluezoned.exposure import keys as schedule
from bluezoned.exposure.benchdata import planted_day
from bluezoned.exposure.matcher import (
    KeyArrays,
    MatchConfig,
    MatchResult,
    SightingArrays,
    match,
    match_parallel,
)
from bluezoned.models import Tek
from tests.exposure.test_keys import VECTOR_ENIN, VECTOR_RPIK, VECTOR_TEK, VECTORS

BACKENDS = bulk.available_backends()
FAST = [b for b in BACKENDS if b != bulk.BACKEND_CRYPTOGRAPHY]

runs = st.lists(
    st.tuples(
        st.binary(min_size=16, max_size=16),
        st.integers(0, 2**32 - 200),
        st.integers(0, 144),
    ),
    min_size=1,
    max_size=6,
)


def reference(teks: list[bytes], first: list[int], count: list[int]) -> bytes:
    """What ``keys`` (HKDF and AES of ``cryptography``) derives, run by run."""
    return b"".join(
        schedule.derive_rpis(schedule.derive_rpik(t), f, c)
        for t, f, c in zip(teks, first, count, strict=True)
        if c
    )


def test_rpik_fast_matches_the_official_vector() -> None:
    assert bulk.rpik_fast(VECTOR_TEK) == VECTOR_RPIK


@given(st.binary(min_size=16, max_size=16))
def test_rpik_fast_equals_hkdf(tek: bytes) -> None:
    assert bulk.rpik_fast(tek) == schedule.derive_rpik(tek)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_reproduces_all_144_official_rpis(backend: str) -> None:
    rpis = bulk.derive_rpis_bulk([VECTOR_TEK], [VECTOR_ENIN], [144], backend=backend)
    assert [row.tobytes() for row in rpis] == [rpi for _, _, rpi, _ in VECTORS]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs)
def test_every_backend_equals_cryptography_on_random_runs(
    backend: str, rows: list[tuple[bytes, int, int]]
) -> None:
    teks, first, count = (list(c) for c in zip(*rows, strict=True))
    expected = reference(teks, first, count)
    assert bulk.derive_rpis_bulk(teks, first, count, backend=backend).tobytes() == expected
    as_array = np.frombuffer(b"".join(teks), dtype=np.uint8).reshape(-1, 16)
    assert bulk.derive_rpis_bulk(as_array, first, count, backend=backend).tobytes() == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_prefix_candidates_is_a_superset_filter(backend: str) -> None:
    rng = np.random.default_rng(5)
    teks = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    first, count = np.full(40, 2_900_016), np.full(40, 144)
    every = bulk.derive_rpis_bulk(teks, first, count, backend=backend)
    wanted = np.sort(rng.choice(every.shape[0], 30, replace=False))
    table, shift = bulk.prefix_table(every[wanted], 14)
    positions, rpis = bulk.prefix_candidates(teks, first, count, table, shift, backend=backend)
    assert set(wanted.tolist()) <= set(positions.tolist())
    assert np.array_equal(rpis, every[positions])
    slots = every.view("<u8")[:, 0] >> np.uint64(shift)
    marked = set((every[wanted].view("<u8")[:, 0] >> np.uint64(shift)).tolist())
    assert positions.tolist() == [i for i, s in enumerate(slots.tolist()) if s in marked]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput):
        bulk.derive_rpis_bulk([b"short"], [0], [1])
    with pytest.raises(InvalidInput):
        bulk.derive_rpis_bulk([bytes(16)], [0, 1], [1])
    with pytest.raises(InvalidInput):
        bulk.derive_rpis_bulk([bytes(16)], [2**32 - 1], [2])
    with pytest.raises(InvalidInput):
        bulk.derive_rpis_bulk([bytes(16)], [0], [1], backend="guesswork")
    with pytest.raises(InvalidInput):
        bulk.prefix_candidates([bytes(16)], [0], [1], np.zeros(3, np.uint8), 60)


def test_empty_runs() -> None:
    assert bulk.derive_rpis_bulk([bytes(16)], [5], [0]).shape == (0, 16)
    assert bulk.derive_rpis_bulk([], [], []).shape == (0, 16)


# --- Exactness of the join -------------------------------------------------------------

KEY = Tek(bytes(range(16, 32)), 2_900_016, 144)


def _sightings(rpis: list[bytes], times: list[float], aems: list[bytes]) -> SightingArrays:
    return SightingArrays(
        rpi=np.frombuffer(b"".join(rpis), np.uint8).reshape(-1, 16).copy(),
        t=np.asarray(times, dtype=np.float64),
        aem=np.frombuffer(b"".join(aems), np.uint8).reshape(-1, 4).copy(),
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_rpis_sharing_the_8_byte_prefix_do_not_match(backend: str) -> None:
    enin = KEY.rolling_start + 40
    rpi = schedule.derive_rpis(schedule.derive_rpik(KEY.key_data), enin, 1)
    aem = schedule.encrypt_aem(schedule.derive_aemk(KEY.key_data), rpi, bytes([0x50, 0xF0, 0, 0]))
    impostors = [rpi[:8] + bytes([b]) * 8 for b in range(3)] + [rpi[:15] + bytes([rpi[15] ^ 1])]
    t = enin * 600.0 + 1
    sightings = _sightings([*impostors, rpi], [t] * 5, [aem] * 5)
    result = match(KeyArrays.from_keys([KEY]), sightings, MatchConfig(backend=backend))
    assert result.sighting_index.tolist() == [4]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=60), st.integers(0, 2**31)
)
def test_random_sightings_never_match(rpis: list[bytes], seed: int) -> None:
    rng = np.random.default_rng(seed)
    keys = KeyArrays.from_columns(rng.integers(0, 256, (50, 16), dtype=np.uint8), KEY.rolling_start)
    times = (KEY.rolling_start * 600 + rng.uniform(0, 86_400, len(rpis))).tolist()
    result = match(keys, _sightings(rpis, times, [bytes(4)] * len(rpis)))
    assert len(result) == 0
    assert result.replay_sighting_index.size == 0
    assert result.rejected_sighting_index.size == 0


# --- Backends, chunking and pools give one answer --------------------------------------


def assert_same(a: MatchResult, b: MatchResult) -> None:
    for name in (
        "key_index",
        "offsets",
        "sighting_index",
        "rpi_interval",
        "tx_power",
        "calibration_confidence",
        "replay_key_index",
        "rejected_key_index",
    ):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert sorted(a.replay_sighting_index.tolist()) == sorted(b.replay_sighting_index.tolist())
    assert (a.keys_derived, a.rpis_derived) == (b.keys_derived, b.rpis_derived)


@pytest.fixture(scope="module")
def day() -> tuple[KeyArrays, SightingArrays, np.ndarray]:
    planted = planted_day(1_200, n_planted=9, seed=11, background=3_000)
    published = np.full(len(planted.keys), np.nan)
    # The last planted key (in the last key range of a split match) was published
    # mid-contact: some of its sightings are replays.
    replayed = int(planted.planted[-1])
    contact_times = np.sort(planted.sightings.t[-12:])
    published[replayed] = float(contact_times[6])
    keys = KeyArrays.from_columns(
        planted.keys.key_data, planted.keys.rolling_start, planted.keys.rolling_period, published
    )
    return keys, planted.sightings, planted.planted


@pytest.mark.parametrize("backend", FAST)
def test_fast_backends_match_like_the_reference(
    day: tuple[KeyArrays, SightingArrays, np.ndarray], backend: str
) -> None:
    keys, sightings, planted = day
    reference_result = match(keys, sightings, MatchConfig(backend="cryptography"))
    assert np.array_equal(reference_result.key_index, planted)
    assert reference_result.replay_sighting_index.size == 6
    assert_same(match(keys, sightings, MatchConfig(backend=backend)), reference_result)


def test_chunking_does_not_change_the_result(
    day: tuple[KeyArrays, SightingArrays, np.ndarray],
) -> None:
    keys, sightings, _ = day
    assert_same(match(keys, sightings, MatchConfig(chunk_rpis=1)), match(keys, sightings))


def test_process_pool_equals_one_process(day: tuple[KeyArrays, SightingArrays, np.ndarray]) -> None:
    keys, sightings, _ = day
    single = match(keys, sightings)
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = match_parallel(keys, sightings, executor=pool, tasks=5, min_keys=0)
    assert_same(pooled, single)


def test_thread_pool_equals_one_process(day: tuple[KeyArrays, SightingArrays, np.ndarray]) -> None:
    keys, sightings, _ = day
    with ThreadPoolExecutor(max_workers=2) as pool:
        pooled = match_parallel(keys, sightings, executor=pool, tasks=3, min_keys=0)
    assert_same(pooled, match(keys, sightings))


def test_small_inputs_stay_in_one_process(
    day: tuple[KeyArrays, SightingArrays, np.ndarray],
) -> None:
    keys, sightings, _ = day

    class Refusing(ThreadPoolExecutor):
        def submit(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
            raise AssertionError("small inputs must not be sent to the pool")

    with Refusing() as pool:
        assert_same(match_parallel(keys, sightings, executor=pool, tasks=4), match(keys, sightings))
    assert_same(match_parallel(keys, sightings, executor=None, tasks=4), match(keys, sightings))


def test_a_fresh_process_compiles_numba_only_for_a_national_size_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[int] = []

    def stand_in() -> tuple[object, None, None]:
        built.append(1)
        return (object(), None, None)

    monkeypatch.setattr(bulk, "_numba_state", [])
    monkeypatch.setattr(bulk, "_build_numba_kernel", stand_in)
    assert not bulk.numba_compiled()
    assert bulk.choose_backend(50_000) != bulk.BACKEND_NUMBA
    assert built == []  # deciding did not compile
    assert bulk.choose_backend(bulk.NUMBA_COLD_MIN_KEYS) == bulk.BACKEND_NUMBA
    assert built == [1]
    assert bulk.numba_compiled()
    # compiled: numba from NUMBA_MIN_KEYS on
    assert bulk.choose_backend(bulk.NUMBA_MIN_KEYS) == bulk.BACKEND_NUMBA
    assert bulk.choose_backend(bulk.NUMBA_MIN_KEYS - 1) != bulk.BACKEND_NUMBA
    monkeypatch.setattr(bulk, "_numba_state", [None])  # numba missing: never chosen
    assert bulk.choose_backend(10**7) != bulk.BACKEND_NUMBA


def test_a_fast_backend_whose_library_is_here_passes_its_self_test() -> None:
    # A backend failing its official-vector self-test is silently left out (the exact slow
    # path takes over), so a broken kernel would only show as lost speed: here it fails.
    if importlib.util.find_spec("numba") is not None:
        assert bulk.BACKEND_NUMBA in BACKENDS
    if next(bulk._loadable_libcryptos(), None) is not None:
        assert bulk.BACKEND_OPENSSL in BACKENDS
