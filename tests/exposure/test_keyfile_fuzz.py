"""Property tests: write -> read round trips, and hostile bytes only ever raise KeyFileRejected."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bluezoned.const import EXPORT_HEADER
from bluezoned.errors import KeyFileRejected
from bluezoned.exposure.keyfile import (
    SignerInfo,
    parse_export_bin,
    read_export_archive,
    read_export_archive_unverified,
    verify_export,
    write_export_archive,
)
from bluezoned.models import DiagnosisKey, ReportType
from tests.exposure.test_keyfile import OTHER, SIGNER, members, rezip, sign_sig, trust, write

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

diagnosis_keys = st.builds(
    DiagnosisKey,
    key_data=st.binary(min_size=16, max_size=16),
    rolling_start=st.integers(0, 2**31 - 1),
    rolling_period=st.integers(1, 144),
    transmission_risk_level=st.none() | st.integers(0, 8),
    report_type=st.none() | st.sampled_from(ReportType),
    days_since_onset=st.none() | st.integers(-14, 14),
)


def ordered(keys: Sequence[DiagnosisKey]) -> list[DiagnosisKey]:
    """Keys in a canonical order (the writer sorts by key bytes only)."""
    return sorted(keys, key=repr)


@SETTINGS
@given(
    keys=st.lists(diagnosis_keys, max_size=20),
    revised=st.lists(diagnosis_keys, max_size=5),
    region=st.text(max_size=8),
    start=st.integers(0, 2**64 - 1),
    duration=st.integers(0, 10**6),
    batch=st.integers(1, 5).flatmap(lambda size: st.tuples(st.integers(1, size), st.just(size))),
    cosign=st.booleans(),
)
def test_write_read_round_trip(
    keys: list[DiagnosisKey],
    revised: list[DiagnosisKey],
    region: str,
    start: int,
    duration: int,
    batch: tuple[int, int],
    cosign: bool,
) -> None:
    end = min(start + duration, 2**64 - 1)
    signers = [SIGNER, OTHER] if cosign else [SIGNER]
    archive = write_export_archive(
        keys,
        region=region,
        start_timestamp=start,
        end_timestamp=end,
        signers=signers,
        batch_num=batch[0],
        batch_size=batch[1],
        revised_keys=revised,
    )
    result = read_export_archive(archive, [trust(SIGNER, "310", "v1")])
    export = result.export
    assert ordered(export.keys) == ordered(keys)
    assert ordered(export.revised_keys) == ordered(revised)
    assert [key.key_data for key in export.keys] == sorted(key.key_data for key in keys)
    assert (export.region, export.start_timestamp, export.end_timestamp) == (region, start, end)
    assert (export.batch_num, export.batch_size) == batch
    assert result.signer == SignerInfo("310", "v1", "1.2.840.10045.4.3.2")
    assert read_export_archive_unverified(archive) == export
    parts = members(archive)
    assert verify_export(parts["export.bin"], parts["export.sig"], [trust(SIGNER)]).export == export


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_only_raise_key_file_rejected(data: bytes) -> None:
    for call in (
        lambda: read_export_archive(data, [trust(SIGNER)]),
        lambda: read_export_archive_unverified(data),
        lambda: parse_export_bin(data),
        lambda: parse_export_bin(EXPORT_HEADER + data),
        lambda: verify_export(EXPORT_HEADER + data, data, [trust(SIGNER)]),
    ):
        with contextlib.suppress(KeyFileRejected):
            call()


VALID = write()
VALID_BIN = members(VALID)["export.bin"]
VALID_STORED = rezip(list(members(VALID).items()), zipfile.ZIP_STORED)

mutations = st.lists(
    st.tuples(
        st.integers(0, 10**6), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, edits: list[tuple[int, int, str]]) -> bytes:
    """Apply byte edits at positions taken modulo the current length."""
    buffer = bytearray(data)
    for position, value, kind in edits:
        index = position % (len(buffer) + 1)
        if kind == "insert":
            buffer.insert(index, value)
        elif index < len(buffer):
            if kind == "set":
                buffer[index] = value
            else:
                del buffer[index]
    return bytes(buffer)


@SETTINGS
@given(edits=mutations, stored=st.booleans())
def test_mutated_archive_is_refused_or_carries_the_signed_bytes(
    edits: list[tuple[int, int, str]], stored: bool
) -> None:
    data = mutate(VALID_STORED if stored else VALID, edits)
    try:
        result = read_export_archive(data, [trust(SIGNER, "310", "v1")])
    except KeyFileRejected:
        return
    # Zip metadata (timestamps, attributes) may change harmlessly; the signed content may not.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("export.bin") == VALID_BIN
    assert result.export == read_export_archive_unverified(VALID)


@SETTINGS
@given(edits=mutations)
def test_mutated_export_bin_parses_or_is_refused(edits: list[tuple[int, int, str]]) -> None:
    # Re-signed after mutation, so the parser and key validation see the hostile bytes.
    data = mutate(VALID_BIN, edits)
    archive = write_raw_signed(data)
    for call in (
        lambda: read_export_archive(archive, [trust(SIGNER)]),
        lambda: parse_export_bin(data),
    ):
        with contextlib.suppress(KeyFileRejected):
            call()


def write_raw_signed(export_bin: bytes) -> bytes:
    """An archive around ``export_bin`` with a valid signature by SIGNER."""
    return rezip([("export.bin", export_bin), ("export.sig", sign_sig(export_bin, [SIGNER]))])
