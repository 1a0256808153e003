"""Key schedule: the official test vectors bit for bit, and the properties around them."""

from __future__ import annotations

import csv

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from bluezoned.errors import InvalidInput
from bluezoned.exposure import keys
from bluezoned.models import Tek
from tests.conftest import TEST_DATA

VECTOR_TEK = bytes.fromhex("75c734c6dd1a782de7a965da5eb93125")
VECTOR_RPIK = bytes.fromhex("185ad91db69ec7dd048960f1f3ba6175")
VECTOR_AEMK = bytes.fromhex("d57c46af7a1d83965b9bed8bd152936a")
VECTOR_METADATA = bytes.fromhex("40080000")
VECTOR_TIME = 1585785600
VECTOR_ENIN = 2642976


def _vector_rows() -> list[tuple[int, int, bytes, bytes]]:
    with (TEST_DATA / "en_test_vectors.csv").open() as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [
        (int(r["i"]), int(r["enin"]), bytes.fromhex(r["rpi"]), bytes.fromhex(r["aem"]))
        for r in csv.DictReader(lines)
    ]


VECTORS = _vector_rows()


def test_vector_table_is_complete() -> None:
    assert [row[0] for row in VECTORS] == list(range(144))
    assert [row[1] for row in VECTORS] == list(range(VECTOR_ENIN, VECTOR_ENIN + 144))


def test_interval_number_of_vector_time() -> None:
    assert keys.interval_number(VECTOR_TIME) == VECTOR_ENIN
    assert keys.interval_number(VECTOR_TIME + 599.999) == VECTOR_ENIN
    assert keys.interval_number(VECTOR_TIME + 600) == VECTOR_ENIN + 1
    # The last time an interval number can name, in uint32.
    assert keys.interval_number(600 * 2**32 - 0.5) == 2**32 - 1
    assert keys.interval_start(VECTOR_ENIN) == VECTOR_TIME


def test_vector_key_is_aligned_on_midnight() -> None:
    assert keys.aligned_rolling_start(VECTOR_ENIN + 77) == VECTOR_ENIN
    tek = keys.new_tek(VECTOR_TEK, VECTOR_ENIN)
    assert tek == Tek(VECTOR_TEK, VECTOR_ENIN, 144)


def test_rpik_and_aemk_match_vectors() -> None:
    assert keys.derive_rpik(VECTOR_TEK) == VECTOR_RPIK
    assert keys.derive_aemk(VECTOR_TEK) == VECTOR_AEMK


@pytest.mark.parametrize(
    ("index", "enin", "rpi", "aem"), VECTORS, ids=[f"i{r[0]}" for r in VECTORS]
)
def test_every_interval_matches_the_official_vector(
    index: int, enin: int, rpi: bytes, aem: bytes
) -> None:
    assert keys.rpi_for(VECTOR_RPIK, enin) == rpi
    assert keys.encrypt_aem(VECTOR_AEMK, rpi, VECTOR_METADATA) == aem
    assert keys.decrypt_aem(VECTOR_AEMK, rpi, aem) == VECTOR_METADATA
    assert keys.rpi_interval(VECTOR_RPIK, rpi) == enin


def test_batched_derivation_equals_per_interval_and_vectors() -> None:
    block = keys.derive_rpis(VECTOR_RPIK, VECTOR_ENIN, 144)
    assert len(block) == 144 * 16
    assert keys.split_rpis(block) == [row[2] for row in VECTORS]
    assert keys.rpis_of(Tek(VECTOR_TEK, VECTOR_ENIN, 144)) == [row[2] for row in VECTORS]


def test_beacon_for_vector_interval() -> None:
    tek = Tek(VECTOR_TEK, VECTOR_ENIN, 144)
    assert keys.beacon_for(tek, VECTOR_ENIN + 1, VECTOR_METADATA) == (VECTORS[1][2], VECTORS[1][3])
    with pytest.raises(InvalidInput, match="outside the key"):
        keys.beacon_for(tek, VECTOR_ENIN + 144, VECTOR_METADATA)


def test_partial_day_key_covers_until_midnight() -> None:
    tek = keys.new_tek(bytes(16), VECTOR_ENIN + 100)
    assert (tek.rolling_start, tek.rolling_period, tek.rolling_end) == (
        VECTOR_ENIN + 100,
        44,
        VECTOR_ENIN + 144,
    )
    assert not keys.needs_new_tek(tek, VECTOR_ENIN + 100)
    assert not keys.needs_new_tek(tek, VECTOR_ENIN + 143)
    assert keys.needs_new_tek(tek, VECTOR_ENIN + 144)
    assert keys.needs_new_tek(tek, VECTOR_ENIN + 99)


def test_wrong_interval_does_not_decrypt() -> None:
    other_rpik = keys.derive_rpik(bytes(16))
    assert keys.rpi_interval(other_rpik, VECTORS[0][2]) is None


def test_metadata_vector_unpacks() -> None:
    meta = keys.unpack_metadata(VECTOR_METADATA)
    assert meta == keys.Metadata(tx_power=8, minor_version=0, calibration_confidence=0)
    assert keys.pack_metadata(meta) == VECTOR_METADATA
    assert keys.pack_metadata(keys.Metadata(tx_power=-15)) == bytes.fromhex("50f10000")
    assert keys.pack_metadata(
        keys.Metadata(tx_power=-15, calibration_confidence=3)
    ) == bytes.fromhex("5cf10000")
    # Versions are 2 bits each: 3.3 is the largest that packs.
    assert keys.pack_metadata(keys.Metadata(0, minor_version=3, major_version=3))[0] == 0xF0
    for major, minor in ((4, 0), (0, 4), (-1, 0)):
        with pytest.raises(InvalidInput, match="2\\+2 bits"):
            keys.pack_metadata(keys.Metadata(0, minor_version=minor, major_version=major))


@given(
    tx=st.integers(-127, 127),
    minor=st.integers(0, 3),
    confidence=st.integers(0, 3),
)
def test_metadata_round_trip(tx: int, minor: int, confidence: int) -> None:
    meta = keys.Metadata(tx_power=tx, minor_version=minor, calibration_confidence=confidence)
    packed = keys.pack_metadata(meta)
    assert len(packed) == 4
    assert packed[2:] == b"\x00\x00"
    assert keys.unpack_metadata(packed) == meta
    assert meta.tx_power_plausible() == (-50 <= tx <= 20)


@given(st.binary(min_size=4, max_size=4))
def test_unpack_metadata_accepts_only_major_version_1(data: bytes) -> None:
    if data[0] >> 6 == 1:
        assert keys.unpack_metadata(data).major_version == 1
    else:
        with pytest.raises(InvalidInput, match="major version"):
            keys.unpack_metadata(data)


@pytest.mark.parametrize(
    "meta",
    [
        keys.Metadata(tx_power=128),
        keys.Metadata(tx_power=-128),
        keys.Metadata(tx_power=0, calibration_confidence=4),
        keys.Metadata(tx_power=0, minor_version=4),
    ],
)
def test_pack_metadata_refuses_out_of_range(meta: keys.Metadata) -> None:
    with pytest.raises(InvalidInput):
        keys.pack_metadata(meta)


@given(
    tek=st.binary(min_size=16, max_size=16),
    start=st.integers(0, 2**32 - 200),
    count=st.integers(1, 144),
)
def test_fast_paths_agree_with_reference_constructions(tek: bytes, start: int, count: int) -> None:
    reference_rpik = HKDF(
        algorithm=hashes.SHA256(), length=16, salt=bytes(32), info=b"EN-RPIK"
    ).derive(tek)
    assert keys.derive_rpik(tek) == reference_rpik
    block = keys.derive_rpis(reference_rpik, start, count)
    one_by_one = b"".join(
        Cipher(algorithms.AES(reference_rpik), modes.ECB())
        .encryptor()
        .update(b"EN-RPI" + bytes(6) + (start + i).to_bytes(4, "little"))
        for i in range(count)
    )
    assert block == one_by_one


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: keys.derive_rpik(bytes(15)), "TEK must be 16 bytes"),
        (lambda: keys.rpi_for(bytes(8), 1), "RPIK must be 16 bytes"),
        (lambda: keys.derive_rpis(bytes(16), 5, 0), "bad interval run"),
        (lambda: keys.derive_rpis(bytes(16), 2**32 - 1, 2), "bad interval run"),
        (lambda: keys.rpi_for(bytes(16), -1), "outside 0..2"),
        (lambda: keys.encrypt_aem(bytes(16), bytes(16), bytes(3)), "metadata must be 4 bytes"),
        (lambda: keys.decrypt_aem(bytes(16), bytes(16), bytes(5)), "AEM must be 4 bytes"),
        (lambda: keys.interval_number(-1), "before 1970"),
        (lambda: keys.interval_number(600 * 2**32), "uint32"),
        (lambda: keys.new_tek(bytes(10), 0), "TEK must be 16 bytes"),
        (lambda: keys.derive_rpik("00" * 16), "TEK must be 16 bytes"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_raise_invalid_input(call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()  # type: ignore[operator]
